package store

import (
	"context"
	"time"

	"github.com/quikly/webhooks/internal/webhook"
)

// DeliveryReader holds the queries of SPEC §10 that read deliveries, their attempts and events. Every
// one is bounded by an index; see migration 00004 of each driver.
type DeliveryReader interface {
	// DeliveryList returns one page of a webhook's deliveries, newest first (by created_at, then
	// seq), each with the outcome of its last attempt. Bodies are not read.
	DeliveryList(ctx context.Context, p *DeliveryListParams) ([]*DeliveryInfo, error)
	// DeliveryInfoGet returns one of a webhook's deliveries with the outcome of its last attempt.
	DeliveryInfoGet(ctx context.Context, p *DeliveryRef) (*DeliveryInfo, error)
	// AttemptListByDelivery returns a delivery's attempts, newest first, at most limit.
	AttemptListByDelivery(ctx context.Context, p *DeliveryRef, limit int) ([]*webhook.Attempt, error)
	// DeliveryCountRecoverable counts the deliveries DeliveryRecover would make pending with p.
	DeliveryCountRecoverable(ctx context.Context, p *DeliveryRecoverParams) (int, error)
	// WebhookStatsGet returns a webhook's delivery counts. It does not check the account: callers
	// have found the webhook in it first.
	WebhookStatsGet(ctx context.Context, webhookID string, since time.Time) (*WebhookStats, error)
	// EventList returns one page of an account's events but test events, newest first (by
	// timestamp, then seq).
	EventList(ctx context.Context, p *EventListParams) ([]*webhook.Event, error)
	// EventGet returns one of an account's events.
	EventGet(ctx context.Context, accountID, id string) (*webhook.Event, error)
	// DeliveryListByEvent returns an event's deliveries, oldest first, without bodies.
	DeliveryListByEvent(ctx context.Context, accountID, eventID string) ([]*webhook.Delivery, error)
}

// DeliveryRecoverer is the write of recover (SPEC §10).
type DeliveryRecoverer interface {
	// DeliveryRecover makes the failed deliveries of p's webhook whose event's timestamp is in
	// [Since, Until), at most Limit of them (0: all), due at Now with a fresh schedule (held when the
	// webhook is paused), with set-based statements, and returns how many.
	DeliveryRecover(ctx context.Context, p *DeliveryRecoverParams) (int, error)
}

// DeliveryRef names one delivery of one webhook of one account.
type DeliveryRef struct {
	AccountID string
	WebhookID string
	ID        string
}

// DeliveryInfo is a delivery as SPEC §10 shows it: the delivery (Body unset) and its last attempt.
type DeliveryInfo struct {
	webhook.Delivery
	// LastAttemptAt is zero, LastStatusCode 0 and LastError "" when nothing was attempted.
	LastAttemptAt  time.Time
	LastStatusCode int
	LastError      string
}

// DeliveryListParams selects one page of a webhook's deliveries.
type DeliveryListParams struct {
	ListParams
	WebhookID string
	State     webhook.DeliveryState // "": all
	EventType string                // "": all
	// Since and Until bound created_at to [Since, Until); zero: unbounded.
	Since, Until time.Time
}

// DeliveryRecoverParams says which failed deliveries to recover.
type DeliveryRecoverParams struct {
	AccountID string
	WebhookID string
	// Since and Until bound the event's timestamp to [Since, Until); a zero Until is unbounded.
	Since, Until time.Time
	Now          time.Time
	// Limit bounds how many one call recovers; 0 is no bound.
	Limit int
}

// WebhookStats counts a webhook's deliveries (SPEC §10 stats).
type WebhookStats struct {
	Pending, Held int64
	// Succeeded and Failed count the deliveries that ended so since the time asked for.
	Succeeded, Failed int64
	// LastSuccessAt and LastFailureAt are when a delivery last ended so; zero when never (or
	// pruned).
	LastSuccessAt, LastFailureAt time.Time
}

// EventListParams selects one page of an account's events.
type EventListParams struct {
	ListParams
	Type string // "": all
	// Since and Until bound the timestamp to [Since, Until); zero: unbounded.
	Since, Until time.Time
}

// DeliveryRecoverBatch is how many deliveries one transaction of a recover moves (the Limit of
// DeliveryRecoverParams that app.RecoverDeliveries uses). Each batch is one set-based statement and
// commits on its own, so a recover of 100,000 never holds SQLite's one writer (and the dispatcher's
// outcomes behind it) for the whole set. A recover cut short leaves the rest failed; running it again
// recovers them. It lives here so the store benchmark recovers exactly as the app does.
const DeliveryRecoverBatch = 5000
