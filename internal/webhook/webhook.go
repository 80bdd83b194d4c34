// Package webhook holds the webhook domain: webhooks, the event catalogue, events, deliveries,
// attempts, validation, secrets and the request signer. It imports nothing else of ours but leaf
// helpers.
package webhook

import (
	"time"
)

// Webhook is a customer's endpoint and the events it subscribes to.
type Webhook struct {
	ID        string
	AccountID string
	Name      string
	URL       string
	Events    []string
	IsActive  bool
	// Secret is the current signing secret in clear ("whsec_…"); stores encrypt it at rest.
	Secret string
	// PreviousSecret, until PreviousSecretExpiresAt, also signs the webhook-signature header.
	PreviousSecret          string
	PreviousSecretExpiresAt time.Time
	// Format is how bodies are written: FormatJSON (also when empty), FormatSlack or FormatDiscord.
	Format string
	// Headers are extra request headers sent on every attempt, in clear; stores encrypt them at
	// rest, and everything shown to people masks their values (MaskedHeaders).
	Headers map[string]string
	// RateLimit is the most attempts started per second, across every process; 0 means none.
	RateLimit int
	CreatedAt time.Time
	UpdatedAt time.Time
	Health
}

// Subscribes reports whether the webhook subscribes to eventType.
func (w *Webhook) Subscribes(eventType string) bool {
	for _, e := range w.Events {
		if e == eventType {
			return true
		}
	}
	return false
}

// SigningSecrets returns the secrets that sign the webhook-signature header at now: the current one,
// and the previous one during its overlap.
func (w *Webhook) SigningSecrets(now time.Time) []string {
	if w.PreviousSecret != "" && now.Before(w.PreviousSecretExpiresAt) {
		return []string{w.Secret, w.PreviousSecret}
	}
	return []string{w.Secret}
}

// SecretOverlap is how long the previous secret keeps signing after a rotation.
const SecretOverlap = 24 * time.Hour

// Event is something that happened in an account. Its deliveries carry the body sent to each webhook.
type Event struct {
	ID         string // "evt_…", the webhook-id header
	AccountID  string
	Type       string
	OccurredAt time.Time
	// Test marks an event of the test operation: it goes to one webhook, is never retried and is
	// not listed with the account's events.
	Test bool
	// Data is the event's data as JSON, the same bytes every delivery's body carries under "data".
	Data []byte
}

// The errors logged for deliveries failed without being attempted.
const (
	// ErrorExpiredWhilePaused fails a delivery held for longer than the log retention (SPEC §5).
	ErrorExpiredWhilePaused = "expired while paused"
	// ErrorTestInterrupted fails a test whose sender died during the attempt: tests are never
	// retried (SPEC §13).
	ErrorTestInterrupted = "interrupted: test events are not retried"
)

// DeliveryState is where a delivery stands in the queue.
type DeliveryState string

// Delivery states. Pending deliveries are due at NextAttemptAt; held ones wait for their paused
// webhook to resume; the other three are final.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryHeld      DeliveryState = "held"
	DeliverySucceeded DeliveryState = "succeeded"
	DeliveryFailed    DeliveryState = "failed"
	DeliveryCancelled DeliveryState = "cancelled"
)

// Delivery is one event bound for one webhook, with the exact bytes that every attempt sends.
type Delivery struct {
	ID        string // "dlv_…"
	AccountID string
	WebhookID string
	EventID   string
	EventType string
	Body      []byte
	State     DeliveryState
	// Attempts counts every attempt made; Retries counts the failed attempts since the schedule last
	// started (a resend starts it afresh while Attempts goes on counting).
	Attempts      int
	Retries       int
	NextAttemptAt time.Time
	// LockedUntil is the end of the lease of the process attempting it; zero when not leased.
	LockedUntil time.Time
	CreatedAt   time.Time
	// Test marks the delivery of a test event: its sender attempts it once; no dispatcher claims it.
	Test bool
}

// Attempt is one HTTP request made for a delivery, as the logs show it.
type Attempt struct {
	ID             string // "att_…"
	DeliveryID     string
	WebhookID      string
	AccountID      string
	EventID        string
	EventType      string
	Number         int
	Succeeded      bool
	StatusCode     int    // 0 when no response arrived
	Error          string // empty on success
	ResponseBody   string
	ResponseTime   time.Duration
	RequestHeaders map[string]string
	Payload        []byte
	CreatedAt      time.Time
	NextAttemptAt  time.Time // zero unless a failed attempt will be retried
}
