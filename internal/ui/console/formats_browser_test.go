package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/render/chatcheck"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/ui/browsertest"
	"github.com/quikly/webhooks/internal/webhook"
)

// TestConsoleFormatsInBrowser walks SPEC §12 and §13 in a real browser: pick the Slack format (the
// live preview follows the choice), add a custom header and a rate limit, create; the webhook's page
// shows the header's name but never its value; send a proposal.accepted test event from the picker
// and check what the receiver got; edit with the value left empty (kept), then remove it; read the
// event catalogue. Every page is axe-clean; the preview and the catalogue are screenshots.
func TestConsoleFormatsInBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	rcv := testenv.NewReceiver(t)
	b := browsertest.New(t, env.URL)
	ctx := context.Background()
	acct, err := env.Service.App.Authenticate(ctx, env.Key)
	require.NoError(t, err)
	const token = "Bearer crm-token-5be21f"

	b.Open("/", "#api_key")
	b.Do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.Click("#signin", "#create-webhook")
	b.Click("#create-webhook", "#name")

	// Without a choice made, JSON is picked and only its preview shows; choosing Slack swaps it.
	require.Equal(t, 1, b.Count("input[name=format]:checked"))
	require.Equal(t, "json", b.Value("input[name=format]:checked"))
	require.Equal(t, 1, b.Count("[data-format-preview]:not([hidden])"))
	b.Do(chromedp.Click(chromedp.CSS("#format-slack")))
	require.Equal(t, "slack", b.Attr("[data-format-preview]:not([hidden])", "data-format-preview"))
	require.Contains(t, b.Text("#preview-slack-message"), "accepted")
	b.Shot("format-preview")
	b.CheckA11y("format-preview")

	b.Do(chromedp.SendKeys(chromedp.CSS("#name"), "Sales channel"), chromedp.SendKeys(chromedp.CSS("#url"), rcv.URL),
		chromedp.Click(chromedp.CSS(`input[value="proposal.accepted"]`)),
		chromedp.SendKeys(chromedp.CSS("#header-name-0"), "Authorization"),
		chromedp.SendKeys(chromedp.CSS("#header-value-0"), token),
		chromedp.SendKeys(chromedp.CSS("#rate_limit"), "5"))
	b.Click("#save", "#secret")
	id := strings.TrimSuffix(strings.TrimPrefix(b.Path(), "/webhooks/"), "/secret")
	secret := b.Value("#secret")
	wh, err := env.Service.App.GetWebhook(ctx, acct.ID, id)
	require.NoError(t, err)
	require.Equal(t, webhook.FormatSlack, wh.Format)
	require.Equal(t, map[string]string{"Authorization": token}, wh.Headers)
	require.Equal(t, 5, wh.RateLimit)

	b.Open("/webhooks/"+id, "#send-test")
	require.Equal(t, "slack", b.Text("#webhook-format"))
	require.Equal(t, "5 per second", b.Text("#webhook-rate-limit"))
	require.Equal(t, "Authorization: ********", b.Text("#webhook-headers"))
	html := b.Text("html")
	require.NotContains(t, html, "crm-token")

	// A typed test event from the picker, in the webhook's format, with the custom header.
	b.Do(chromedp.SetValue(chromedp.CSS("#test-event"), webhook.ProposalAccepted))
	b.Click("#send-test", "#test-result")
	require.Contains(t, b.Text("#test-result-title"), webhook.ProposalAccepted)
	got := rcv.Next(t)
	require.Equal(t, webhook.ProposalAccepted, got.Header.Get("X-Quikly-Event"))
	require.Equal(t, "true", got.Header.Get("X-Quikly-Test"))
	require.Equal(t, token, got.Header.Get("Authorization"))
	require.Equal(t, signature(secret, got.Body), got.Header.Get("X-Quikly-Signature"))
	require.NoError(t, chatcheck.Slack(got.Body), "%s", got.Body)
	b.CheckA11y("webhook-formats")

	// Edit: the stored value is never shown; left empty it is kept; ticked, it is removed.
	b.Click("#edit", "#name")
	require.NotContains(t, b.Text("html"), "crm-token")
	require.Equal(t, "slack", b.Value("input[name=format]:checked"))
	require.Equal(t, "5", b.Value("#rate_limit"))
	b.CheckA11y("edit-formats")
	b.Do(chromedp.Clear(chromedp.CSS("#rate_limit")))
	b.Click("#save", "#notice")
	wh, err = env.Service.App.GetWebhook(ctx, acct.ID, id)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Authorization": token}, wh.Headers, "kept")
	require.Zero(t, wh.RateLimit, "emptied: no limit")
	b.Click("#edit", "#name")
	b.Do(chromedp.Click(chromedp.CSS("#header-remove-0")))
	b.Click("#save", "#notice")
	wh, err = env.Service.App.GetWebhook(ctx, acct.ID, id)
	require.NoError(t, err)
	require.Empty(t, wh.Headers, "removed")

	// The event catalogue: every event with its description, example and schema.
	b.Open("/webhook-events", "#event-proposal\\.accepted")
	require.Equal(t, len(webhook.Catalogue), b.Count(".catalogue-entry"))
	require.Contains(t, b.Text("#event-proposal\\.accepted"), "Website redesign")
	b.Shot("catalogue")
	b.CheckA11y("catalogue")
}
