package ui_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// consoleWaitFor polls cond, for outcomes written after a receipt that nothing signals.
func consoleWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome we cannot be signalled about; not a timing assertion
	}
}

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
	stats := func() (pending, held, failed, succeeded int64) {
		s, err := env.Service.App.WebhookStats(ctx, acct.ID, wh.ID)
		require.NoError(t, err)
		return s.Pending, s.Held, s.Failed, s.Succeeded
	}
	consoleWaitFor(t, "three failed deliveries", func() bool { _, _, f, _ := stats(); return f == 3 })
	first := map[string][]byte{} // the body each event was first sent with
	for range 3 {
		rec := rcv.Next(t)
		first[rec.Header.Get("webhook-id")] = rec.Body
	}

	b := consoleNewBrowser(t, env.URL)
	b.open("/signin", "#api_key")
	b.do(chromedp.SendKeys(chromedp.CSS("#api_key"), env.Key))
	b.click("#signin", "#create-webhook")

	// The paused webhook says that it holds an event.
	b.open("/webhooks/"+paused.ID, "#held-note")
	require.Contains(t, b.text("#held-note"), "Paused with 1 held event")
	require.Equal(t, "1", b.text("#count-held"))

	b.open("/webhooks/"+wh.ID, "#delivery-counts")
	b.click("#deliveries", "#deliveries-table")
	require.Equal(t, 3, b.count("#deliveries-table tbody tr"))
	require.Equal(t, 3, b.count(`#deliveries-table tr[data-status="failed"]`))
	require.Contains(t, b.text("#deliveries-table tbody tr [data-last-outcome]"), "HTTP 500 Internal Server Error")
	require.Contains(t, b.text("#deliveries-table tbody tr td.primary"), "UTC")
	require.Contains(t, b.text("#deliveries-table tbody tr td.primary"), "just now")
	require.Equal(t, "3", b.text("#count-failed"))
	b.shot("deliveries")

	// Retry now, on the newest delivery: the receiver gets that event again, same body.
	rcv.Respond(http.StatusOK)
	b.click("#deliveries-table tbody tr td.primary a", "#retry-now")
	require.Equal(t, 1, b.count("#attempts-table tbody tr"))
	b.shot("delivery")
	b.click("#retry-now", "#notice")
	require.Contains(t, b.text("#notice"), "Retry queued")
	require.True(t, strings.HasPrefix(b.path(), "/webhooks/"+wh.ID+"/deliveries/dlv_"), b.path())
	rec := rcv.Next(t)
	retried := rec.Header.Get("webhook-id")
	require.Equal(t, evs[2], retried, "the newest event's delivery was retried")
	require.Equal(t, first[retried], rec.Body)

	// Recover the rest: the confirmation counts them before anything happens.
	b.open("/webhooks/"+wh.ID+"/deliveries", "#recover")
	b.click("#recover", "#since")
	require.NotEmpty(t, b.value("#since"), "since defaults to a day ago")
	b.click("#count", "#recover-count")
	require.Equal(t, "2 failed deliveries will be sent again.", b.text("#recover-count"))
	require.Len(t, rcv.All(), 4, "counting sends nothing")
	b.shot("recover-confirm")
	b.click("#confirm", "#notice")
	require.Contains(t, b.text("#notice"), "Failed deliveries recovered")
	require.Equal(t, "/webhooks/"+wh.ID+"/deliveries", b.path())
	got := []string{rcv.Next(t).Header.Get("webhook-id"), rcv.Next(t).Header.Get("webhook-id")}
	require.ElementsMatch(t, evs[:2], got)
	consoleWaitFor(t, "every delivery succeeded", func() bool { _, _, _, s := stats(); return s == 3 })
	b.open("/webhooks/"+wh.ID+"/deliveries", "#deliveries-table")
	require.Equal(t, 3, b.count(`#deliveries-table tr[data-status="succeeded"]`))
	require.Len(t, rcv.All(), 6, "nothing sent twice")

	// An event looked up by id, from the Events page.
	b.click("#nav-events", "#event-id")
	require.Equal(t, 4, b.count("#events-table tbody tr"))
	b.do(chromedp.SendKeys(chromedp.CSS("#event-id"), evs[0]))
	b.click("#lookup-button", "#event-data")
	require.Equal(t, "/events/"+evs[0], b.path())
	require.Equal(t, "proposal.created", b.text("#event-type"))
	require.Contains(t, b.text("#event-data"), "Website redesign")
	require.Equal(t, 1, b.count("#event-deliveries tbody tr"))
}
