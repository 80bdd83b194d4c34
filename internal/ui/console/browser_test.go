package console_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
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
	"github.com/quikly/webhooks/internal/webhook"
)

// consoleChromium is Debian's chromium, which .ci/install-chromium.sh installs.
const consoleChromium = "/usr/bin/chromium"

// consoleScreenshotsEnv names the directory the browser tests write screenshots to, when set.
const consoleScreenshotsEnv = "QUIKLY_SCREENSHOTS"

// consoleBrowser drives one headless Chromium tab for one test.
type consoleBrowser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots; "" writes none
}

// consoleNewBrowser starts a fresh Chromium (own profile, loopback only) for the test. Without
// chromium it skips locally, but fails in CI so a missing browser cannot pass as green.
func consoleNewBrowser(t *testing.T, base string) *consoleBrowser {
	t.Helper()
	if _, err := os.Stat(consoleChromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s (run .ci/install-chromium.sh): %v", consoleChromium, err)
		}
		t.Skipf("skipping browser test: %s is missing; run `bash .ci/install-chromium.sh` to install it", consoleChromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(consoleChromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // the tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		// Only loopback is reachable: no proxy, and every host name but localhost fails to resolve.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Do starts the browser and binds it to ctx, so it runs without the test's deadline.
	require.NoError(t, chromedp.Do(ctx))
	// A hang guard, not a timing assertion: every wait below is on a selector or a condition.
	tctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	b := &consoleBrowser{t: t, ctx: tctx, base: base, dir: os.Getenv(consoleScreenshotsEnv)}
	b.do(chromedp.EmulateViewport(1280, 800))
	if b.dir != "" {
		require.NoError(t, os.MkdirAll(b.dir, 0o755))
	}
	return b
}

func (b *consoleBrowser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, steps...))
}

// open navigates to path and waits for sel.
func (b *consoleBrowser) open(path, sel string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks sel and waits for next, a selector found only once the click has taken effect.
func (b *consoleBrowser) click(sel, next string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(next)))
}

func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return s
}

func (b *consoleBrowser) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return s
}

func (b *consoleBrowser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+consoleJSString(sel)+`).length`))
	require.NoError(b.t, err)
	return n
}

func (b *consoleBrowser) path() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(b.t, err)
	u, err := url.Parse(loc)
	require.NoError(b.t, err)
	return u.Path
}

func consoleJSString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// shot writes name-desktop.png (1280×800) and name-phone.png (390×844, 2× pixels) of the whole page
// when QUIKLY_SCREENSHOTS is set, then goes back to the desktop viewport.
func (b *consoleBrowser) shot(name string) {
	b.t.Helper()
	if b.dir == "" {
		return
	}
	for _, vp := range []struct {
		suffix string
		opts   []chromedp.EmulateViewportOption
		w, h   int64
	}{
		{"desktop", nil, 1280, 800},
		{"phone", []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}, 390, 844},
	} {
		b.do(chromedp.EmulateViewport(vp.w, vp.h, vp.opts...))
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		require.NoError(b.t, err)
		require.NoError(b.t, os.WriteFile(filepath.Join(b.dir, name+"-"+vp.suffix+".png"), png, 0o644))
	}
	b.do(chromedp.EmulateViewport(1280, 800))
}

// signature is X-Quikly-Signature: hex HMAC-SHA256 of the body keyed by the whole secret.
func signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// TestConsoleInBrowser walks a person through the whole console in a real browser: sign in, create a
// webhook for a loopback receiver, copy its secret, test, pause and resume, edit, read the logs,
// resend, regenerate, delete and sign out. It checks what the page shows and what the receiver got.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"received":true,"crm_id":42}`))
	})
	b := consoleNewBrowser(t, env.URL)
	ctx := context.Background()
	acct, err := env.Service.App.Authenticate(ctx, env.Key)
	require.NoError(t, err)
	getWebhook := func(id string) *webhook.Webhook {
		t.Helper()
		wh, err := env.Service.App.GetWebhook(ctx, acct.ID, id)
		require.NoError(t, err)
		return wh
	}

	// Signed out, the console sends the browser to sign in.
	b.open("/", "#api_key")
	require.Equal(t, "/signin", b.path())
	b.shot("signin")
	b.do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.click("#signin", "#create-webhook")
	require.Equal(t, "/webhooks", b.path())
	require.Contains(t, b.text("#empty"), "No webhooks yet")
	require.Equal(t, "acme", b.text(".account-name"))

	// Create, first with mistakes: the errors show next to their fields and typed values stay.
	b.click("#create-webhook", "#name")
	b.do(chromedp.SendKeys(chromedp.CSS("#name"), "CRM sync"), chromedp.SendKeys(chromedp.CSS("#url"), "not a url"))
	b.click("#save", "#url-error")
	require.Equal(t, "URL must be an absolute URL.", b.text("#url-error"))
	require.Equal(t, "Events must list at least one event.", b.text("#events-error"))
	require.Equal(t, "CRM sync", b.value("#name"))
	b.shot("create-errors")

	b.do(chromedp.Clear(chromedp.CSS("#url")), chromedp.SendKeys(chromedp.CSS("#url"), rcv.URL))
	b.do(chromedp.Click(chromedp.CSS("#select-all-events")))
	require.Equal(t, len(webhook.Catalogue), b.count("input[name=events]:checked"), "select all ticks every event")
	b.do(chromedp.Click(chromedp.CSS(`input[value="lead_session.updated"]`)))
	require.Equal(t, len(webhook.Catalogue)-1, b.count("input[name=events]:checked"))
	b.click("#save", "#secret")

	// The secret is shown once, with a warning and a Copy button.
	secret := b.value("#secret")
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	require.Contains(t, b.text("#secret-warning"), "will not be shown again")
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(b.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted, Origin: env.URL})
		require.NoError(t, err)
	}
	b.do(chromedp.Click(chromedp.CSS("#copy-secret")))
	_, err = chromedp.Run(b.ctx, chromedp.Poll[bool](`document.querySelector("#copy-secret").textContent === "Copied"`,
		chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err)
	require.Equal(t, "Secret copied to the clipboard.", b.text("#copy-status"))
	clip, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, secret, clip, "the Copy button copies exactly the secret shown")
	b.shot("secret")

	b.click("#continue", "#send-test")
	id := strings.TrimPrefix(b.path(), "/webhooks/")
	require.True(t, strings.HasPrefix(id, "wh_"), id)
	require.Equal(t, "CRM sync", b.text("#webhook-name"))
	require.Equal(t, secret, getWebhook(id).Secret)

	// Send a test event: the result shows inline, and the receiver got a request signed with the
	// secret the page showed — so the secret shown is the real one.
	b.click("#send-test", "#test-result")
	require.Contains(t, b.text("#test-result"), "Succeeded")
	require.Equal(t, "200", b.text("#test-status-code"))
	first := rcv.Next(t)
	require.Equal(t, webhook.TestEvent, first.Header.Get("X-Quikly-Event"))
	require.Equal(t, id, first.Header.Get("X-Quikly-Webhook-Id"))
	require.Equal(t, signature(secret, first.Body), first.Header.Get("X-Quikly-Signature"))
	b.shot("webhook")

	// Pause and resume with the live switch; a reload shows the state was stored.
	toggle := "#toggle-" + id
	b.click(toggle, toggle+`[aria-checked="false"]`)
	require.Equal(t, "Paused", b.text(toggle+" [data-toggle-label]"))
	b.do(chromedp.WaitVisible(chromedp.CSS(`[data-paused-note]`)))
	require.False(t, getWebhook(id).IsActive)
	b.open("/webhooks/"+id, toggle+`[aria-checked="false"]`)
	b.click(toggle, toggle+`[aria-checked="true"]`)
	require.Equal(t, "Active", b.text(toggle+" [data-toggle-label]"))
	require.True(t, getWebhook(id).IsActive)

	// The list shows the webhook with its switch and recent-success indicator.
	b.open("/webhooks", `[data-webhook="`+id+`"]`)
	row := b.text(`[data-webhook="` + id + `"]`)
	require.Contains(t, row, "CRM sync")
	require.Contains(t, row, rcv.URL)
	require.Contains(t, row, "1 of 1 recent attempts succeeded")
	require.Equal(t, 1, b.count(`[data-webhook="`+id+`"] [role=switch][aria-checked="true"]`))
	b.shot("webhooks")

	// Edit events.
	b.open("/webhooks/"+id, "#edit")
	b.click("#edit", `input[value="proposal.created"]`)
	b.do(chromedp.Click(chromedp.CSS(`input[value="proposal.created"]`)), chromedp.Click(chromedp.CSS(`input[value="lead_session.updated"]`)))
	b.click("#save", "#notice")
	require.Equal(t, "Webhook saved.", b.text("#notice"))
	events := b.text("#webhook-events")
	require.Contains(t, events, webhook.LeadSessionUpdated)
	require.NotContains(t, events, webhook.ProposalCreated)
	require.Contains(t, getWebhook(id).Events, webhook.LeadSessionUpdated)
	require.NotContains(t, getWebhook(id).Events, webhook.ProposalCreated)

	// Logs: the test attempt, and opening it shows the payload, the headers sent and the response.
	b.click("#logs", "#logs-table")
	require.Equal(t, 1, b.count("#logs-table tbody tr"))
	logRow := b.text("#logs-table tbody tr")
	require.Contains(t, logRow, "test")
	require.Contains(t, logRow, "200")
	b.click("#logs-table tbody tr a", "#payload")
	payload := b.text("#payload")
	require.Contains(t, payload, "\n  \"event\": \"test\"", "pretty-printed")
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, []byte(payload)))
	require.Equal(t, string(first.Body), compact.String(), "the payload is exactly the body sent")
	require.Contains(t, b.text("#request-headers"), first.Header.Get("X-Quikly-Signature"))
	require.Contains(t, b.text("#response-body"), `"crm_id": 42`)
	require.Contains(t, b.text("#log-status"), "succeeded · HTTP 200")
	b.shot("log")

	// Resend: the same body and event id arrive again, and the logs gain an attempt.
	logPath := b.path()
	b.click("#resend", "#notice")
	require.Contains(t, b.text("#notice"), "Delivery queued again")
	again := rcv.Next(t)
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, first.Header.Get("webhook-id"), again.Header.Get("webhook-id"))
	require.Eventually(t, func() bool {
		p, err := env.Service.App.ListLogs(ctx, acct.ID, id, app.LogFilter{}, 10, "")
		return err == nil && len(p.Items) == 2
	}, 30*time.Second, 10*time.Millisecond, "the resent attempt is logged")
	b.open(strings.TrimSuffix(logPath, "/"+filepath.Base(logPath)), "#logs-table")
	require.Equal(t, 2, b.count("#logs-table tbody tr"))
	require.Contains(t, b.text("#logs-table tbody tr:first-child"), "#2", "newest first")

	// A failing endpoint: the test result says so, and the filters separate the outcomes.
	rcv.Respond(http.StatusInternalServerError)
	b.open("/webhooks/"+id, "#send-test")
	b.click("#send-test", "#test-result")
	require.Contains(t, b.text("#test-result"), "Failed")
	require.Equal(t, "500", b.text("#test-status-code"))
	rcv.Next(t)
	b.open("/webhooks/"+id+"/logs", "#logs-table")
	require.Equal(t, 3, b.count("#logs-table tbody tr"))
	b.click("#filter-failed", `#filter-failed[aria-current="page"]`)
	require.Equal(t, 1, b.count("#logs-table tbody tr"))
	require.Contains(t, b.text("#logs-table tbody tr"), "500")
	b.click("#filter-succeeded", `#filter-succeeded[aria-current="page"]`)
	require.Equal(t, 2, b.count("#logs-table tbody tr"))
	b.click("#filter-all", `#filter-all[aria-current="page"]`)
	b.shot("logs")
	rcv.Respond(http.StatusOK)

	// Regenerate: a new secret, shown once, signs the next delivery.
	b.open("/webhooks/"+id, "#regenerate")
	b.click("#regenerate", "#confirm")
	b.click("#confirm", "#secret")
	newSecret := b.value("#secret")
	require.True(t, strings.HasPrefix(newSecret, "whsec_"))
	require.NotEqual(t, secret, newSecret)
	require.Contains(t, b.text("#secret-warning"), "will not be shown again")
	b.click("#continue", "#send-test")
	b.click("#send-test", "#test-result")
	require.Equal(t, "200", b.text("#test-status-code"))
	rotated := rcv.Next(t)
	require.Equal(t, signature(newSecret, rotated.Body), rotated.Header.Get("X-Quikly-Signature"))
	require.Len(t, strings.Fields(rotated.Header.Get("webhook-signature")), 2, "old and new secret during the overlap")

	// Delete, after a confirmation page.
	b.click("#delete", "#confirm")
	require.Equal(t, "Delete webhook", b.text("#confirm"))
	b.click("#confirm", "#empty")
	require.Contains(t, b.text("#notice"), "Webhook deleted")
	_, err = env.Service.App.GetWebhook(ctx, acct.ID, id)
	require.Equal(t, errs.NotFound, errs.CodeOf(err))

	// Sign out: back to the sign-in page, and the console is closed until the next sign-in.
	b.click("#signout", "#api_key")
	require.Equal(t, "You have signed out.", b.text("#notice"))
	b.open("/webhooks", "#api_key")
	require.Equal(t, "/signin", b.path())
}

// TestConsoleInBrowserWrongKey checks that a wrong API key shows an error and opens nothing.
func TestConsoleInBrowserWrongKey(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	b := consoleNewBrowser(t, env.URL)

	b.open("/signin", "#api_key")
	b.do(chromedp.SendKeys(chromedp.CSS("#api_key"), "qk_"+strings.Repeat("0", 32)))
	b.click("#signin", "#api_key-error")
	require.Equal(t, "That API key is not valid.", b.text("#api_key-error"))
	require.Equal(t, "true", b.attr("#api_key", "aria-invalid"))
	b.shot("signin-error")

	b.open("/webhooks", "#api_key")
	require.Equal(t, "/signin", b.path(), "still signed out")
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
	b := consoleNewBrowser(t, env.URL)
	_, err = chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	require.NoError(t, err)

	b.open("/signin", "#api_key")
	b.do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.click("#signin", "#create-webhook")

	toggle := "#toggle-" + wh.ID
	b.click(toggle, "#notice")
	require.Equal(t, "Webhook paused. New events are held until you resume it.", b.text("#notice"))
	require.Equal(t, "/webhooks", b.path())
	require.Equal(t, "false", b.attr(toggle, "aria-checked"))
	got, err := env.Service.App.GetWebhook(ctx, acct.ID, wh.ID)
	require.NoError(t, err)
	require.False(t, got.IsActive)

	b.open("/webhooks/new", "#name")
	b.do(chromedp.WaitNotVisible(chromedp.CSS("#select-all-events")))
	require.Equal(t, 0, b.count(".select-all:not([hidden])"), "select all needs script, so it stays hidden")
}

func (b *consoleBrowser) attr(sel, name string) string {
	b.t.Helper()
	res, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	require.NoError(b.t, err)
	return res.Value
}
