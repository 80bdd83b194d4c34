package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/ui/browsertest"
	"github.com/quikly/webhooks/internal/webhook"
)

// The deliveries view after an outage: failed deliveries listed with their last error, Retry now on
// one, then Recover failed deliveries for the rest, with the receiver checked at each step.
func TestConsoleDeliveriesInBrowser(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{}})
	rcv := testenv.NewReceiver(t)
	rcv.Respond(http.StatusInternalServerError)
	ctx := context.Background()
	acct, err := env.Service.App.Authenticate(ctx, env.Key)
	require.NoError(t, err)
	wh, err := env.Service.App.CreateWebhook(ctx, acct.ID, app.WebhookInput{Name: new("CRM sync"),
		URL: new(rcv.URL), Events: &[]string{webhook.ProposalCreated}})
	require.NoError(t, err)
	paused, err := env.Service.App.CreateWebhook(ctx, acct.ID, app.WebhookInput{Name: new("Slack"),
		URL: new(rcv.URL), Events: &[]string{webhook.LeadSessionCreated}, IsActive: new(false)})
	require.NoError(t, err)
	var evs []string
	for i := range 3 {
		evs = append(evs, env.Publish(env.Key, webhook.ProposalCreated, map[string]any{"proposal_id": i, "name": "Website redesign"}).ID)
	}
	env.Publish(env.Key, webhook.LeadSessionCreated, map[string]any{"lead_session_id": "l1"})
	// counts reads the webhook's stats; polled below, so it reports an error instead of failing the
	// test from the poller's goroutine.
	counts := func() (*store.WebhookStats, error) { return env.Service.App.WebhookStats(ctx, acct.ID, wh.ID) }
	require.Eventually(t, func() bool { s, err := counts(); return err == nil && s.Failed == 3 },
		30*time.Second, 10*time.Millisecond, "three failed deliveries")
	first := map[string][]byte{} // the body each event was first sent with
	for range 3 {
		rec := rcv.Next(t)
		first[rec.Header.Get("webhook-id")] = rec.Body
	}

	b := browsertest.New(t, env.URL)
	// page takes the screenshot of the page as it is (when asked for) and checks it with axe-core.
	page := func(name string) {
		t.Helper()
		b.Shot(name)
		b.CheckA11y(name)
	}
	b.Open("/signin", "#api_key")
	b.Do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.Click("#signin", "#create-webhook")

	// The paused webhook says that it holds an event.
	b.Open("/webhooks/"+paused.ID, "#held-note")
	require.Contains(t, b.Text("#held-note"), "Paused with 1 held event")
	require.Equal(t, "1", b.Text("#count-held"))
	page("webhook-held")

	b.Open("/webhooks/"+wh.ID, "#delivery-counts")
	b.Click("#deliveries", "#deliveries-table")
	require.Equal(t, 3, b.Count("#deliveries-table tbody tr"))
	require.Equal(t, 3, b.Count(`#deliveries-table tr[data-status="failed"]`))
	require.Contains(t, b.Text("#deliveries-table tbody tr [data-last-outcome]"), "HTTP 500 Internal Server Error")
	require.Contains(t, b.Text("#deliveries-table tbody tr td.primary"), "UTC")
	require.Contains(t, b.Text("#deliveries-table tbody tr td.primary"), "just now")
	require.Equal(t, "3", b.Text("#count-failed"))
	page("deliveries")

	// Retry now, on the newest delivery: the receiver gets that event again, same body.
	rcv.Respond(http.StatusOK)
	b.Click("#deliveries-table tbody tr td.primary a", "#retry-now")
	require.Equal(t, 1, b.Count("#attempts-table tbody tr"))
	page("delivery")
	b.Click("#retry-now", "#notice")
	require.Contains(t, b.Text("#notice"), "Retry queued")
	page("delivery-retried")
	require.True(t, strings.HasPrefix(b.Path(), "/webhooks/"+wh.ID+"/deliveries/dlv_"), b.Path())
	rec := rcv.Next(t)
	retried := rec.Header.Get("webhook-id")
	require.Equal(t, evs[2], retried, "the newest event's delivery was retried")
	require.Equal(t, first[retried], rec.Body)

	// Recover the rest: the confirmation counts them before anything happens.
	b.Open("/webhooks/"+wh.ID+"/deliveries", "#recover")
	b.Click("#recover", "#since")
	require.NotEmpty(t, b.Value("#since"), "since defaults to a day ago")
	page("recover")
	b.Click("#count", "#recover-count")
	require.Equal(t, "2 failed deliveries will be sent again.", b.Text("#recover-count"))
	require.Len(t, rcv.All(), 4, "counting sends nothing")
	page("recover-confirm")
	b.Click("#confirm", "#notice")
	require.Contains(t, b.Text("#notice"), "Failed deliveries recovered")
	require.Equal(t, "/webhooks/"+wh.ID+"/deliveries", b.Path())
	got := []string{rcv.Next(t).Header.Get("webhook-id"), rcv.Next(t).Header.Get("webhook-id")}
	require.ElementsMatch(t, evs[:2], got)
	require.Eventually(t, func() bool { s, err := counts(); return err == nil && s.Succeeded == 3 },
		30*time.Second, 10*time.Millisecond, "every delivery succeeded")
	b.Open("/webhooks/"+wh.ID+"/deliveries", "#deliveries-table")
	require.Equal(t, 3, b.Count(`#deliveries-table tr[data-status="succeeded"]`))
	require.Len(t, rcv.All(), 6, "nothing sent twice")

	// An event looked up by id, from the Events page.
	b.Click("#nav-events", "#event-id")
	require.Equal(t, 4, b.Count("#events-table tbody tr"))
	require.Equal(t, "page", b.Attr("#nav-events", "aria-current"), "the top navigation marks Events")
	require.Equal(t, 1, b.Count(".topnav [aria-current]"), "and only Events")
	page("events")
	b.Do(chromedp.SendKeys(chromedp.CSS("#event-id"), evs[0]))
	b.Click("#lookup-button", "#event-data")
	require.Equal(t, "/events/"+evs[0], b.Path())
	require.Equal(t, "proposal.created", b.Text("#event-type"))
	require.Contains(t, b.Text("#event-data"), "Website redesign")
	require.Equal(t, 1, b.Count("#event-deliveries tbody tr"))
	require.Equal(t, "page", b.Attr("#nav-events", "aria-current"))
	page("event")
}
