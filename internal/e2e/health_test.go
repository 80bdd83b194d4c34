package e2e_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
	"github.com/quikly/webhooks/internal/webhook/catalogtest"
)

// hungReceiver returns a receiver that never answers until the test ends.
func hungReceiver(t *testing.T) *testenv.Receiver {
	r := testenv.NewReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	r.Handle(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	return r
}

// TestHungAccountDoesNotDelayOthers is SPEC §11's isolation rule: one account points 50 webhooks at
// an endpoint that never answers, each with a backlog. Every delivery of another account, and of the
// same account's healthy webhook, arrives before the first hung attempt's timeout fires. The relation
// is checked by the order of events, not by the clock: when the last healthy delivery is in, no hung
// attempt has ended (none has an outcome). The timeout is far longer than any plausible drain, so it
// cannot fire first on a loaded machine (a 30 s timeout did: the drain once took 48 s under load).
func TestHungAccountDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	const timeout = 10 * time.Minute
	e := testenv.Start(t, testenv.Options{DeliveryTimeout: timeout, RetrySchedule: []time.Duration{time.Hour}})
	evil := e.NewKey("evil")
	hung := hungReceiver(t)
	const hooks, backlog = 50, 20
	for range hooks {
		createWebhook(t, e, evil, hung.URL, "proposal.created")
	}
	siblingRcv := testenv.NewReceiver(t)
	createWebhook(t, e, evil, siblingRcv.URL, "lead_session.created")
	for i := range backlog {
		e.Publish(evil, webhook.ProposalCreated, map[string]any{"i": i})
	}
	hung.Next(t)

	healthy := testenv.NewReceiver(t)
	createWebhook(t, e, e.Key, healthy.URL, "lead_session.created")
	const events = 20
	for i := range events {
		e.Publish(e.Key, webhook.LeadSessionCreated, map[string]any{"i": i})
		e.Publish(evil, webhook.LeadSessionCreated, map[string]any{"i": i})
	}
	for range events {
		healthy.Next(t)
		siblingRcv.Next(t)
	}
	require.Zero(t, e.Metric(`quikly_deliveries_total{outcome="retrying"}`)+e.Metric(`quikly_deliveries_total{outcome="failed"}`),
		"no hung attempt had ended when the other account's and the healthy sibling's deliveries were all in")
	// The hung endpoint holds at most PerWebhook attempts per webhook: sockets, not slots.
	require.LessOrEqual(t, len(hung.All()), hooks*16)
}

// concurrency wraps a receiver's answer and tracks how many requests it holds at once.
type concurrency struct {
	mu       sync.Mutex
	now, max int
	status   int
}

func (c *concurrency) handler(hold time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.now++
		c.max = max(c.max, c.now)
		status := c.status
		c.mu.Unlock()
		time.Sleep(hold) // the endpoint's own slowness, so overlapping attempts overlap here
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
		w.WriteHeader(status)
	}
}

// reset sets the status to answer and forgets the maximum seen.
func (c *concurrency) reset(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.max = status, c.now
}

func (c *concurrency) maxSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// TestCircuitBreakerOneAttemptInFlight is SPEC §11's breaker: after 5 consecutive failures the
// webhook gets one attempt in flight at a time, nothing is skipped, and a success closes it again.
func TestCircuitBreakerOneAttemptInFlight(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour}})
	rcv := testenv.NewReceiver(t)
	c := &concurrency{status: http.StatusInternalServerError}
	rcv.Handle(c.handler(20 * time.Millisecond))
	id := createWebhook(t, e, e.Key, rcv.URL)["id"].(string)

	for i := range webhook.BreakerThreshold {
		e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i})
	}
	waitLogs(t, e, e.Key, id, webhook.BreakerThreshold) // five failures written: the breaker is open
	c.reset(http.StatusInternalServerError)
	const burst = 30
	for i := range burst {
		e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i})
	}
	waitLogs(t, e, e.Key, id, webhook.BreakerThreshold+burst) // every delivery attempted: none skipped
	require.Equal(t, 1, c.maxSeen(), "one attempt in flight while the breaker is open")

	// A success closes the breaker; then the webhook gets its whole cap again.
	c.reset(http.StatusOK)
	e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"probe": true})
	waitLogs(t, e, e.Key, id, webhook.BreakerThreshold+burst+1)
	c.reset(http.StatusOK)
	for i := range burst {
		e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i})
	}
	waitLogs(t, e, e.Key, id, webhook.BreakerThreshold+2*burst+1)
	require.Greater(t, c.maxSeen(), 1, "attempts overlap again once one succeeded")
}

// TestAutoDisableAndResume is SPEC §11's auto-disable: a webhook that only fails, past
// --disable-after and 10 failures, is disabled with a reason; the account's other webhooks that
// subscribe get webhook.disabled (the disabled one never does); its deliveries are held; resuming
// clears the reason and releases them, oldest first.
func TestAutoDisableAndResume(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RetrySchedule: []time.Duration{time.Hour},
		DisableAfter: time.Millisecond, MaintenanceInterval: 20 * time.Millisecond})
	failing := testenv.NewReceiver(t)
	failing.Respond(http.StatusServiceUnavailable)
	w := createWebhook(t, e, e.Key, failing.URL, "proposal.created", "webhook.disabled")
	id := w["id"].(string)
	require.Nil(t, w["disabled_reason"])
	require.Nil(t, w["disabled_at"])
	watcher := testenv.NewReceiver(t)
	createWebhook(t, e, e.Key, watcher.URL, "webhook.disabled")

	for i := range webhook.DisableMinFailures {
		e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"i": i})
	}
	got := watcher.Next(t)
	require.Equal(t, webhook.WebhookDisabled, got.Header.Get("X-Quikly-Event"))
	e.CheckDelivery(webhook.WebhookDisabled, got) // as the OpenAPI document describes it
	var body struct {
		WebhookID string `json:"webhook_id"`
		Data      struct {
			WebhookID    string `json:"webhook_id"`
			Name         string `json:"name"`
			URL          string `json:"url"`
			FailingSince string `json:"failing_since"`
			LastError    string `json:"last_error"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &body))
	catalogtest.RequireBody(t, got.Body)
	require.Equal(t, id, body.Data.WebhookID)
	require.Equal(t, failing.URL, body.Data.URL)
	require.Equal(t, "CRM sync", body.Data.Name)
	require.Equal(t, "HTTP 503", body.Data.LastError)
	_, err := time.Parse(time.RFC3339, body.Data.FailingSince)
	require.NoError(t, err)

	res := e.Do(e.Key, "GET", "/webhooks/"+id, nil)
	require.Equal(t, http.StatusOK, res.Status)
	w = res.JSON(t)
	require.Equal(t, false, w["is_active"])
	require.Equal(t, "failing", w["disabled_reason"])
	require.NotNil(t, w["disabled_at"])

	// Held while disabled, released by the resume.
	held := e.Publish(e.Key, webhook.ProposalCreated, map[string]any{"held": true})
	failing.Respond(http.StatusOK)
	res = e.Do(e.Key, "PUT", "/webhooks/"+id, map[string]any{"is_active": true})
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	w = res.JSON(t)
	require.Equal(t, true, w["is_active"])
	require.Nil(t, w["disabled_reason"])
	require.Nil(t, w["disabled_at"])
	for rec := failing.Next(t); rec.Header.Get("webhook-id") != held.ID; rec = failing.Next(t) {
		require.Equal(t, webhook.ProposalCreated, rec.Header.Get("X-Quikly-Event")) // the ten that failed
	}
	for _, rec := range failing.All() {
		require.NotEqual(t, webhook.WebhookDisabled, rec.Header.Get("X-Quikly-Event"), "the disabled webhook is never told of itself")
	}
}
