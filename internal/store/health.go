package store

import (
	"time"
)

// DueWebhook is a webhook with deliveries due now, as a fair claim sees it.
type DueWebhook struct {
	WebhookID string
	AccountID string
	// BreakerOpen reports whether the webhook's circuit breaker is open: one attempt in flight at a
	// time, across every process, until one succeeds.
	BreakerOpen bool
	// Failing reports whether its latest attempt failed (ConsecutiveFailures > 0).
	Failing bool
	// Rate is the webhook's rate limit and how much of it is spent, as the listing read it; the
	// claim reads it again, locked, and decides.
	Rate Rate
}

// DeliveryDueWebhooksParams selects the webhooks with due deliveries.
type DeliveryDueWebhooksParams struct {
	Now time.Time
	// Limit caps how many webhooks are listed.
	Limit int
	// WebhookIDs, when set, are the only webhooks looked at (those a publish in this process just
	// gave deliveries): a look-up of each instead of a walk of every webhook with pending deliveries.
	WebhookIDs []string
}

// ClaimAllotment is how many due deliveries of one webhook a claim may lease.
type ClaimAllotment struct {
	WebhookID string
	Limit     int
	// Probe claims the webhook's single probe slot first (its breaker is open): nothing is claimed
	// while another claim, in any process, holds it.
	Probe bool
	// RateLimited says the webhook had a rate limit when listed: the claim then locks its row, reads
	// its Rate, leases no more than Rate.Allowed and advances it by what it leased. (A limit set
	// after the listing applies from the next claim on.)
	RateLimited bool
}

// WebhookListFailingParams selects webhooks to disable: active ones whose every attempt has failed
// since before FailingSince, at least MinFailures of them.
type WebhookListFailingParams struct {
	FailingSince time.Time
	MinFailures  int
	Limit        int
}
