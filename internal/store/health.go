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
}

// DeliveryDueWebhooksParams selects the webhooks with due deliveries.
type DeliveryDueWebhooksParams struct {
	Now time.Time
	// Limit caps how many webhooks are listed.
	Limit int
}

// ClaimAllotment is how many due deliveries of one webhook a claim may lease.
type ClaimAllotment struct {
	WebhookID string
	Limit     int
	// Probe claims the webhook's single probe slot first (its breaker is open): nothing is claimed
	// while another claim, in any process, holds it.
	Probe bool
}

// WebhookListFailingParams selects webhooks to disable: active ones whose every attempt has failed
// since before FailingSince, at least MinFailures of them.
type WebhookListFailingParams struct {
	FailingSince time.Time
	MinFailures  int
	Limit        int
}
