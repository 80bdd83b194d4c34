package delivery

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Tester sends test events synchronously: the one way in for "send test event" (API and console).
// Safe for concurrent use.
type Tester struct {
	// Store holds the event, its delivery and the attempt's log entry.
	Store store.Store
	// Sender makes the attempt; its timeout also sizes the delivery's lease.
	Sender *Sender
	// Metrics counts the attempt alongside the dispatcher's; nil counts nothing.
	Metrics *Metrics
	// Clock is the time of the event and of the outcome; nil means the real clock.
	Clock clock.Clock
}

// TestSendParams says which webhook gets a test event and what it carries.
type TestSendParams struct {
	AccountID string
	WebhookID string
	// EventType is the event's type: "test" (also when empty) or a catalogue event (SPEC §13).
	EventType string
	// Data returns the event's data, given the time of the event.
	Data func(now time.Time) any
}

// LeaseUntil returns the end of the lease a test delivery attempted at now takes, as the
// dispatcher's leases.
func (t *Tester) LeaseUntil(now time.Time) time.Time {
	return leaseUntil(now, t.Sender.Timeout())
}

// Send publishes a test event to one webhook (paused or not), sends it at once and returns the
// attempt's log entry. A non-2xx answer is an attempt that failed, not an error. The attempt is never
// retried. Under the webhook's rate limit it first waits for its turn (WaitTurn). Its delivery is
// then leased to this call until the attempt is recorded, so the dispatcher never sends it too; if
// the process dies first, the maintainer fails it (tests are never retried).
func (t *Tester) Send(ctx context.Context, p *TestSendParams) (*webhook.Attempt, error) {
	if t.Store == nil || t.Sender == nil {
		return nil, errors.New("test send: Tester needs a Store and a Sender")
	}
	w, err := t.Store.WebhookGet(ctx, p.AccountID, p.WebhookID)
	if err != nil {
		return nil, err
	}
	if err := t.WaitTurn(ctx, w); err != nil {
		return nil, err
	}
	now := clock.Now(t.Clock)
	lease := t.LeaseUntil(now)
	var d *webhook.Delivery
	err = t.Store.Tx(ctx, func(tx store.Tx) error {
		var err error
		if w, err = tx.WebhookGet(ctx, p.AccountID, p.WebhookID); err != nil {
			return err
		}
		d, err = publishTest(ctx, tx, w, cmp.Or(p.EventType, webhook.TestEvent), p.Data(now), now, lease)
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := t.Attempt(ctx, &TestAttemptParams{Webhook: w, Delivery: d, Now: now, LeaseUntil: lease})
	if err != nil {
		return nil, err
	}
	return t.Store.AttemptGet(ctx, &store.AttemptGetParams{AccountID: p.AccountID, WebhookID: p.WebhookID, ID: out.Attempt.ID})
}

// TestAttemptParams name a test delivery that the caller has just leased (inserted by Send, or made
// due again by a resend) until LeaseUntil, at Now.
type TestAttemptParams struct {
	Webhook    *webhook.Webhook
	Delivery   *webhook.Delivery
	Now        time.Time
	LeaseUntil time.Time
}

// Attempt sends a leased test delivery once and records the attempt; a failure is final, as tests
// are never retried. It returns the outcome written. The caller has had its turn under the
// webhook's rate limit (WaitTurn) before it leased the delivery.
func (t *Tester) Attempt(ctx context.Context, p *TestAttemptParams) (*store.DeliveryOutcome, error) {
	c := claimed(p.Webhook, p.Delivery, p.Now, p.LeaseUntil)
	res := t.Sender.Send(ctx, requestFor(c))
	out := Outcome(c, res, RetryPolicy{}, clock.Now(t.Clock))
	t.Metrics.Observe(out, res.Duration)
	// The attempt happened: record it even if the caller has gone away meanwhile, within a limit.
	done, cancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeoutDefault)
	defer cancel()
	if err := t.Store.Tx(done, func(tx store.Tx) error {
		return tx.DeliveryComplete(done, []*store.DeliveryOutcome{out}, nil) // a test says nothing of health
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitTurn waits, for as long as ctx lasts, until w's rate limit lets one more attempt start, and
// takes that turn; without a limit it returns at once. A webhook's rate limit counts test attempts
// too (SPEC §12: the most attempts started per second), and a test waits for its turn as deliveries
// do. Callers wait before they lease the test delivery, so that the lease runs from the attempt's
// start: a test queued behind others (dozens at once to a webhook limited to 1 a second) is never
// failed by the maintainer for a lease that ended while it waited.
func (t *Tester) WaitTurn(ctx context.Context, w *webhook.Webhook) error {
	if w.RateLimit <= 0 {
		return nil
	}
	for {
		now := clock.Now(t.Clock)
		var next time.Time
		err := t.Store.Tx(store.WithLeasesOnly(ctx), func(tx store.Tx) error {
			var err error
			next, err = tx.WebhookRateTake(ctx, w.ID, now)
			return err
		})
		if err != nil || next.IsZero() {
			return err
		}
		wait := time.NewTimer(next.Sub(now))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		}
	}
}
