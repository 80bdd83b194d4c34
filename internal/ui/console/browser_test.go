package console_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/ui/browsertest"
	"github.com/quikly/webhooks/internal/webhook"
)

// signature is X-Quikly-Signature: hex HMAC-SHA256 of the body keyed by the whole secret.
func signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// TestConsoleInBrowser walks a person through the whole console in a real browser: sign in, create a
// webhook for a loopback receiver, copy its secret, test, pause and resume, edit, read the logs,
// resend, regenerate, delete and sign out. It checks what the page shows and what the receiver got,
// that reloading after create, test and regenerate repeats nothing (post/redirect/get, SPEC §15), and
// that every page it visits has no serious or critical axe-core violation.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"received":true,"crm_id":42}`))
	})
	b := browsertest.New(t, env.URL)
	ctx := context.Background()
	acct, err := env.Service.App.Authenticate(ctx, env.Key)
	require.NoError(t, err)
	getWebhook := func(id string) *webhook.Webhook {
		t.Helper()
		wh, err := env.Service.App.GetWebhook(ctx, acct.ID, id)
		require.NoError(t, err)
		return wh
	}
	webhookCount := func() int {
		t.Helper()
		p, err := env.Service.App.ListWebhooks(ctx, acct.ID, 0, "")
		require.NoError(t, err)
		return len(p.Items)
	}
	attemptCount := func(id string) int {
		t.Helper()
		p, err := env.Service.App.ListLogs(ctx, acct.ID, id, app.LogFilter{}, 100, "")
		require.NoError(t, err)
		return len(p.Items)
	}
	// page takes the screenshot of the page as it is (when asked for) and checks it with axe-core.
	page := func(name string) {
		t.Helper()
		b.Shot(name)
		b.CheckA11y(name)
	}

	// Signed out, the console sends the browser to sign in.
	b.Open("/", "#api_key")
	require.Equal(t, "/signin", b.Path())
	page("signin")
	b.Do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.Click("#signin", "#create-webhook")
	require.Equal(t, "/webhooks", b.Path())
	require.Contains(t, b.Text("#empty"), "No webhooks yet")
	require.Equal(t, "acme", b.Text(".account-name"))
	page("webhooks-empty")

	// Create, first with mistakes: the errors show next to their fields and typed values stay.
	b.Click("#create-webhook", "#name")
	page("create")
	b.Do(chromedp.SendKeys(chromedp.CSS("#name"), "CRM sync"), chromedp.SendKeys(chromedp.CSS("#url"), "not a url"))
	b.Click("#save", "#url-error")
	require.Equal(t, "URL must be an absolute URL.", b.Text("#url-error"))
	require.Equal(t, "Events must list at least one event.", b.Text("#events-error"))
	require.Equal(t, "CRM sync", b.Value("#name"))
	page("create-errors")

	b.Do(chromedp.Clear(chromedp.CSS("#url")), chromedp.SendKeys(chromedp.CSS("#url"), rcv.URL))
	b.Do(chromedp.Click(chromedp.CSS("#select-all-events")))
	require.Equal(t, len(webhook.Catalogue), b.Count("input[name=events]:checked"), "select all ticks every event")
	b.Do(chromedp.Click(chromedp.CSS(`input[value="lead_session.updated"]`)))
	require.Equal(t, len(webhook.Catalogue)-1, b.Count("input[name=events]:checked"))
	b.Click("#save", "#secret")

	// The create answered with a redirect to the secret's page; the secret is not in the URL.
	id := strings.TrimSuffix(strings.TrimPrefix(b.Path(), "/webhooks/"), "/secret")
	require.True(t, strings.HasPrefix(id, "wh_"), id)
	require.Equal(t, "/webhooks/"+id+"/secret", b.Path())

	// The secret is shown once, with a warning and a Copy button.
	secret := b.Value("#secret")
	require.NotContains(t, b.URL().String(), secret)
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	require.Contains(t, b.Text("#secret-warning"), "will not be shown again")
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(b.Ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted, Origin: env.URL})
		require.NoError(t, err)
	}
	b.Do(chromedp.Click(chromedp.CSS("#copy-secret")))
	_, err = chromedp.Run(b.Ctx, chromedp.Poll[bool](`document.querySelector("#copy-secret").textContent === "Copied"`,
		chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err)
	require.Equal(t, "Secret copied to the clipboard.", b.Text("#copy-status"))
	clip, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, secret, clip, "the Copy button copies exactly the secret shown")
	page("secret")

	// Reload: still one webhook, and the secret is not shown again; the page says so.
	b.Reload("#notice")
	require.Equal(t, "/webhooks/"+id, b.Path())
	require.Contains(t, b.Text("#notice"), "shown only once")
	require.Equal(t, 0, b.Count("#secret"))
	require.Equal(t, 1, webhookCount(), "a reload after create creates nothing")
	page("webhook-secret-shown")

	b.Open("/webhooks/"+id+"/secret", "#send-test")
	require.Equal(t, "/webhooks/"+id, b.Path(), "the secret's page shows it once")
	require.Equal(t, "CRM sync", b.Text("#webhook-name"))
	require.Equal(t, secret, getWebhook(id).Secret)

	// Send a test event: the result shows inline, and the receiver got a request signed with the
	// secret the page showed — so the secret shown is the real one.
	b.Click("#send-test", "#test-result")
	require.Contains(t, b.Text("#test-result"), "Succeeded")
	require.Equal(t, "200", b.Text("#test-status-code"))
	first := rcv.Next(t)
	require.Equal(t, webhook.TestEvent, first.Header.Get("X-Quikly-Event"))
	require.Equal(t, id, first.Header.Get("X-Quikly-Webhook-Id"))
	require.Equal(t, signature(secret, first.Body), first.Header.Get("X-Quikly-Signature"))
	page("webhook")

	// The test answered with a redirect: a reload shows the same result and sends nothing. The send
	// happens within the POST, so once the reloaded page is here any second send would have arrived.
	require.Equal(t, "/webhooks/"+id, b.Path())
	b.Reload("#test-result")
	require.Equal(t, "200", b.Text("#test-status-code"))
	require.Len(t, rcv.All(), 1, "a reload after a test sends nothing")
	require.Equal(t, 1, attemptCount(id))

	// Pause and resume with the live switch; a reload shows the state was stored.
	toggle := "#toggle-" + id
	b.Click(toggle, toggle+`[aria-checked="false"]`)
	require.Equal(t, "Paused", b.Text(toggle+" [data-toggle-label]"))
	b.Do(chromedp.WaitVisible(chromedp.CSS(`[data-paused-note]`)))
	page("webhook-paused")
	require.False(t, getWebhook(id).IsActive)
	b.Open("/webhooks/"+id, toggle+`[aria-checked="false"]`)
	b.Click(toggle, toggle+`[aria-checked="true"]`)
	require.Equal(t, "Active", b.Text(toggle+" [data-toggle-label]"))
	require.True(t, getWebhook(id).IsActive)

	// The list shows the webhook with its switch and recent-success indicator.
	b.Open("/webhooks", `[data-webhook="`+id+`"]`)
	row := b.Text(`[data-webhook="` + id + `"]`)
	require.Contains(t, row, "CRM sync")
	require.Contains(t, row, rcv.URL)
	require.Contains(t, row, "1 of 1 recent attempts succeeded")
	require.Equal(t, 1, b.Count(`[data-webhook="`+id+`"] [role=switch][aria-checked="true"]`))
	page("webhooks")

	// Edit events.
	b.Open("/webhooks/"+id, "#edit")
	b.Click("#edit", `input[value="proposal.created"]`)
	page("edit")
	b.Do(chromedp.Click(chromedp.CSS(`input[value="proposal.created"]`)), chromedp.Click(chromedp.CSS(`input[value="lead_session.updated"]`)))
	b.Click("#save", "#notice")
	require.Equal(t, "Webhook saved.", b.Text("#notice"))
	page("webhook-saved")
	events := b.Text("#webhook-events")
	require.Contains(t, events, webhook.LeadSessionUpdated)
	require.NotContains(t, events, webhook.ProposalCreated)
	require.Contains(t, getWebhook(id).Events, webhook.LeadSessionUpdated)
	require.NotContains(t, getWebhook(id).Events, webhook.ProposalCreated)

	// Logs: the test attempt, and opening it shows the payload, the headers sent and the response.
	b.Click("#logs", "#logs-table")
	require.Equal(t, 1, b.Count("#logs-table tbody tr"))
	logRow := b.Text("#logs-table tbody tr")
	require.Contains(t, logRow, "test")
	require.Contains(t, logRow, "200")
	b.Click("#logs-table tbody tr a", "#payload")
	payload := b.Text("#payload")
	require.Contains(t, payload, "\n  \"event\": \"test\"", "pretty-printed")
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, []byte(payload)))
	require.Equal(t, string(first.Body), compact.String(), "the payload is exactly the body sent")
	require.Contains(t, b.Text("#request-headers"), first.Header.Get("X-Quikly-Signature"))
	require.Contains(t, b.Text("#response-body"), `"crm_id": 42`)
	require.Contains(t, b.Text("#log-status"), "succeeded · HTTP 200")
	page("log")

	// Resend: the same body and event id arrive again, and the logs gain an attempt.
	logPath := b.Path()
	b.Click("#resend", "#notice")
	require.Contains(t, b.Text("#notice"), "Delivery queued again")
	page("log-resent")
	again := rcv.Next(t)
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, first.Header.Get("webhook-id"), again.Header.Get("webhook-id"))
	require.Eventually(t, func() bool {
		p, err := env.Service.App.ListLogs(ctx, acct.ID, id, app.LogFilter{}, 10, "")
		return err == nil && len(p.Items) == 2
	}, 30*time.Second, 10*time.Millisecond, "the resent attempt is logged")
	b.Open(strings.TrimSuffix(logPath, "/"+filepath.Base(logPath)), "#logs-table")
	require.Equal(t, 2, b.Count("#logs-table tbody tr"))
	require.Contains(t, b.Text("#logs-table tbody tr:first-child"), "#2", "newest first")

	// A failing endpoint: the test result says so, and the filters separate the outcomes.
	rcv.Respond(http.StatusInternalServerError)
	b.Open("/webhooks/"+id, "#send-test")
	b.Click("#send-test", "#test-result")
	require.Contains(t, b.Text("#test-result"), "Failed")
	require.Equal(t, "500", b.Text("#test-status-code"))
	rcv.Next(t)
	page("webhook-test-failed")
	b.Open("/webhooks/"+id+"/logs", "#logs-table")
	require.Equal(t, 3, b.Count("#logs-table tbody tr"))
	b.Click("#filter-failed", `#filter-failed[aria-current="page"]`)
	require.Equal(t, 1, b.Count("#logs-table tbody tr"))
	require.Contains(t, b.Text("#logs-table tbody tr"), "500")
	page("logs-failed")
	b.Click("#filter-succeeded", `#filter-succeeded[aria-current="page"]`)
	require.Equal(t, 2, b.Count("#logs-table tbody tr"))
	b.Click("#filter-all", `#filter-all[aria-current="page"]`)
	page("logs")
	rcv.Respond(http.StatusOK)

	// Regenerate: a new secret, shown once, signs the next delivery — also after a reload of the
	// page that showed it, which rotates nothing.
	b.Open("/webhooks/"+id, "#regenerate")
	b.Click("#regenerate", "#confirm")
	page("regenerate-confirm")
	b.Click("#confirm", "#secret")
	require.Equal(t, "/webhooks/"+id+"/secret", b.Path())
	newSecret := b.Value("#secret")
	require.True(t, strings.HasPrefix(newSecret, "whsec_"))
	require.NotEqual(t, secret, newSecret)
	require.Contains(t, b.Text("#secret-warning"), "will not be shown again")
	page("secret-regenerated")
	b.Reload("#notice")
	require.Contains(t, b.Text("#notice"), "shown only once")
	require.Equal(t, newSecret, getWebhook(id).Secret, "a reload after regenerate rotates nothing")
	b.Click("#send-test", "#test-result")
	require.Equal(t, "200", b.Text("#test-status-code"))
	rotated := rcv.Next(t)
	require.Equal(t, signature(newSecret, rotated.Body), rotated.Header.Get("X-Quikly-Signature"))
	require.Len(t, strings.Fields(rotated.Header.Get("webhook-signature")), 2, "old and new secret during the overlap")

	// Delete, after a confirmation page.
	b.Click("#delete", "#confirm")
	require.Equal(t, "Delete webhook", b.Text("#confirm"))
	page("delete-confirm")
	b.Click("#confirm", "#empty")
	require.Contains(t, b.Text("#notice"), "Webhook deleted")
	_, err = env.Service.App.GetWebhook(ctx, acct.ID, id)
	require.Equal(t, errs.NotFound, errs.CodeOf(err))

	// Sign out: back to the sign-in page, and the console is closed until the next sign-in.
	b.Open("/webhooks/"+id, "h1")
	require.Equal(t, "Not found", b.Text("h1"))
	page("not-found")
	b.Open("/no/such/page", "h1")
	page("not-found-path")

	b.Click("#signout", "#api_key")
	require.Equal(t, "You have signed out.", b.Text("#notice"))
	page("signed-out")
	b.Open("/webhooks", "#api_key")
	require.Equal(t, "/signin", b.Path())
}

// TestConsoleInBrowserWrongKey checks that a wrong API key shows an error and opens nothing, and
// that the signed-out pages have no serious or critical axe-core violation.
func TestConsoleInBrowserWrongKey(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	b := browsertest.New(t, env.URL)

	b.Open("/signin", "#api_key")
	b.Do(chromedp.SendKeys(chromedp.CSS("#api_key"), "qk_"+strings.Repeat("0", 32)))
	b.Click("#signin", "#api_key-error")
	require.Equal(t, "That API key is not valid.", b.Text("#api_key-error"))
	require.Equal(t, "true", b.Attr("#api_key", "aria-invalid"))
	b.Shot("signin-error")
	b.CheckA11y("signin-error")
	// Signed out, a page that does not exist is the 404 page without the account's header.
	b.Open("/no/such/page", "h1")
	require.Equal(t, "Not found", b.Text("h1"))
	b.CheckA11y("not-found-signed-out")

	b.Open("/webhooks", "#api_key")
	require.Equal(t, "/signin", b.Path(), "still signed out")
}

// TestConsoleInBrowserWithoutScript checks that the console works with JavaScript off: the switch is
// a plain form that reloads the page, and script-only conveniences stay hidden.
func TestConsoleInBrowserWithoutScript(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	acct, err := env.Service.App.Authenticate(ctx, env.Key)
	require.NoError(t, err)
	wh, err := env.Service.App.CreateWebhook(ctx, acct.ID, app.WebhookInput{Name: new("Slack"),
		URL: new("https://example.com/hook"), Events: &[]string{webhook.ProposalAccepted}})
	require.NoError(t, err)
	b := browsertest.New(t, env.URL)
	_, err = chromedp.Call(b.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	require.NoError(t, err)

	b.Open("/signin", "#api_key")
	b.Do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.Click("#signin", "#create-webhook")

	toggle := "#toggle-" + wh.ID
	b.Click(toggle, "#notice")
	require.Equal(t, "Webhook paused. New events are held until you resume it.", b.Text("#notice"))
	require.Equal(t, "/webhooks", b.Path())
	require.Equal(t, "false", b.Attr(toggle, "aria-checked"))
	got, err := env.Service.App.GetWebhook(ctx, acct.ID, wh.ID)
	require.NoError(t, err)
	require.False(t, got.IsActive)

	b.Open("/webhooks/new", "#name")
	b.Do(chromedp.WaitNotVisible(chromedp.CSS("#select-all-events")))
	require.Equal(t, 0, b.Count(".select-all:not([hidden])"), "select all needs script, so it stays hidden")
}
