package delivery

import (
	"time"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// claimed returns d, just inserted with a lease until lease, as a claimed delivery of w.
func claimed(w *webhook.Webhook, d *webhook.Delivery, now, lease time.Time) *store.ClaimedDelivery {
	c := &store.ClaimedDelivery{Delivery: *d, URL: w.URL, Secret: w.Secret, LeaseUntil: lease}
	if s := w.SigningSecrets(now); len(s) > 1 {
		c.OldSecret = s[1]
	}
	return c
}

// requestFor returns the request that attempts c.
func requestFor(c *store.ClaimedDelivery) Request {
	return Request{URL: c.URL, Body: c.Body, EventType: c.EventType, EventID: c.EventID,
		WebhookID: c.WebhookID, Secret: c.Secret, OldSecret: c.OldSecret}
}

// Outcome turns the result of attempting c into its log entry and where it leaves the delivery: done,
// failed for good, or due again after the policy's next delay.
func Outcome(c *store.ClaimedDelivery, res Result, policy RetryPolicy, now time.Time) *store.DeliveryOutcome {
	a := &webhook.Attempt{
		ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: c.WebhookID, AccountID: c.AccountID,
		EventID: c.EventID, EventType: c.EventType, Number: c.Attempts + 1, Succeeded: res.Succeeded,
		StatusCode: res.StatusCode, Error: res.Error, ResponseBody: res.ResponseBody,
		ResponseTime: res.Duration, RequestHeaders: res.Headers, Payload: c.Body, CreatedAt: now,
	}
	o := &store.DeliveryOutcome{Attempt: a, LeaseUntil: c.LeaseUntil, Probe: c.Probe, Retries: c.Retries, NextAttemptAt: now}
	switch delay, ok := policy.Next(c.Retries, res.RetryAfter); {
	case res.Succeeded:
		o.State = webhook.DeliverySucceeded
	case ok:
		o.State, o.Retries = webhook.DeliveryPending, c.Retries+1
		// Delays count from the end of the failed attempt.
		o.NextAttemptAt = now.Add(delay)
		a.NextAttemptAt = o.NextAttemptAt
	default:
		o.State = webhook.DeliveryFailed
	}
	return o
}
