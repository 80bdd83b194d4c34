// Package store defines the persistence seam: one interface that every database driver implements
// and that the shared storetest suite checks. Method names start with the noun; methods that take
// several arguments take one Params struct so adding a field breaks no caller.
package store

import (
	"context"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/webhook"
)

// Store is a database. Reads outside a transaction go through the Reader methods; every write goes
// through Tx, so a domain change, its event and its deliveries commit together.
type Store interface {
	Reader
	// Tx runs fn in a write transaction and commits when fn returns nil. The commit is durable before
	// Tx returns. fn may run concurrently with other transactions' fns on some drivers but never
	// observes their uncommitted writes; fn must not call Tx.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Reader holds the queries that need no transaction.
type Reader interface {
	ProposalReader
	SessionReader
	DeliveryReader
	AccountGetByKeyHash(ctx context.Context, hash []byte) (*account.Account, error)
	WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error)
	WebhookList(ctx context.Context, p *ListParams) ([]*webhook.Webhook, error)
	AttemptGet(ctx context.Context, accountID, webhookID, id string) (*webhook.Attempt, error)
	AttemptList(ctx context.Context, p *AttemptListParams) ([]*webhook.Attempt, error)
	DeliveryGet(ctx context.Context, accountID, id string) (*webhook.Delivery, error)
	QueueStats(ctx context.Context) (*QueueStats, error)
}

// Tx is a write transaction. It also reads, seeing its own writes.
type Tx interface {
	Reader
	ProposalWriter
	SessionWriter
	DeliveryRecoverer
	AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error)
	APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error

	WebhookInsert(ctx context.Context, w *webhook.Webhook) error
	// WebhookUpdate stores every field of w. Pausing holds the webhook's pending deliveries; resuming
	// releases its held ones.
	WebhookUpdate(ctx context.Context, w *webhook.Webhook) error
	// WebhookDelete deletes the webhook and cancels its unfinished deliveries.
	WebhookDelete(ctx context.Context, accountID, id string, now time.Time) error
	// WebhookListSubscribed returns the account's webhooks, active or paused, that subscribe to
	// eventType.
	WebhookListSubscribed(ctx context.Context, accountID, eventType string) ([]*webhook.Webhook, error)

	EventInsert(ctx context.Context, e *webhook.Event) error
	// DeliveryInsert inserts deliveries; a delivery for a paused webhook should arrive held.
	DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error
	// DeliveryClaimDue leases up to Limit due deliveries, earliest due first, skipping the webhooks
	// in ExcludeWebhooks. A claimed delivery is not due again until its lease expires.
	DeliveryClaimDue(ctx context.Context, p *DeliveryClaimDueParams) ([]*ClaimedDelivery, error)
	// DeliveryRelease gives back claimed deliveries that will not be attempted now, due at now.
	DeliveryRelease(ctx context.Context, cs []*ClaimedDelivery, now time.Time) error
	// DeliveryComplete logs each outcome's attempt and moves its delivery on. An outcome whose lease
	// was lost (another process re-claimed the delivery, or it was cancelled) logs its attempt and
	// leaves the delivery alone.
	DeliveryComplete(ctx context.Context, outcomes []*DeliveryOutcome) error
	// DeliveryResend makes a finished delivery due at now with a fresh retry schedule. It answers
	// errs.Conflict while the delivery is pending or held.
	DeliveryResend(ctx context.Context, accountID, id string, now time.Time) error
	// DeliveryExpireHeld fails up to limit deliveries held since before olderThan, logging an
	// "expired while paused" attempt for each, and returns how many it failed.
	DeliveryExpireHeld(ctx context.Context, olderThan, now time.Time, limit int) (int, error)
	// AttemptPrune deletes up to limit attempts (and finished deliveries and events with no
	// attempts left) created before before, and returns how many attempts it deleted.
	AttemptPrune(ctx context.Context, before time.Time, limit int) (int, error)

	// SettingGet returns the value of a setting, or "" when unset; SettingSet sets it.
	SettingGet(ctx context.Context, name string) (string, error)
	SettingSet(ctx context.Context, name, value string) error
}

// Waker is implemented by stores that tell every process when deliveries may have become due, so idle
// dispatchers in other processes wake at once instead of at their next poll (PostgreSQL:
// LISTEN/NOTIFY, sent by the transactions that insert, resend or release deliveries).
type Waker interface {
	// DeliveriesDue receives a value soon after such a transaction commits, in any process.
	DeliveriesDue() <-chan struct{}
}

// ListParams selects one page of an account's objects, newest first. After is the id of the last
// object of the previous page ("" for the first page).
type ListParams struct {
	AccountID string
	Limit     int
	After     string
}

// AttemptListParams selects one page of a webhook's attempts, newest first.
type AttemptListParams struct {
	ListParams
	WebhookID string
	Succeeded *bool  // nil: both
	EventType string // "": all
}

// DeliveryClaimDueParams says what to claim.
type DeliveryClaimDueParams struct {
	Now             time.Time
	LeaseUntil      time.Time
	Limit           int
	ExcludeWebhooks []string
}

// ClaimedDelivery is a leased delivery with what sending it needs.
type ClaimedDelivery struct {
	webhook.Delivery
	URL string
	// Secret signs both headers; OldSecret ("" when none) also signs webhook-signature during the
	// rotation overlap.
	Secret     string
	OldSecret  string
	LeaseUntil time.Time
}

// DeliveryOutcome is the result of one attempt and where it leaves the delivery.
type DeliveryOutcome struct {
	Attempt *webhook.Attempt
	// LeaseUntil identifies the claim that made the attempt.
	LeaseUntil time.Time
	// State is succeeded, failed, or pending with NextAttemptAt and Retries set.
	State         webhook.DeliveryState
	NextAttemptAt time.Time
	Retries       int
}

// QueueStats describes the whole queue.
type QueueStats struct {
	// Depth counts pending and held deliveries.
	Depth int64
	// OldestPending is when the oldest pending or held delivery was created; zero when none.
	OldestPending time.Time
}
