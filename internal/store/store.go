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

// leasesOnlyKey marks a context with WithLeasesOnly.
type leasesOnlyKey struct{}

// WithLeasesOnly marks the transactions run with ctx as writing nothing but leases, attempts and
// outcomes (a claim, a release, an outcome write): a driver may commit them without waiting for the
// disk. What a crash can then take back is a lease, which never was, or an outcome, whose delivery is
// attempted again once its lease ends: at least once still holds. Accepted events are never written
// so.
func WithLeasesOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, leasesOnlyKey{}, true)
}

// LeasesOnly reports whether ctx was marked by WithLeasesOnly.
func LeasesOnly(ctx context.Context) bool {
	v, _ := ctx.Value(leasesOnlyKey{}).(bool)
	return v
}

// lowPriorityKey marks a context with WithLowPriority.
type lowPriorityKey struct{}

// WithLowPriority marks the transactions run with ctx as ones nobody is waiting on to answer a
// request or to start an attempt (an outcome write, a claim of retries): a driver whose writes take
// turns may run the others first, and stop between two low-priority transactions for writes that
// came in meanwhile. It counts for transactions also marked WithLeasesOnly.
func WithLowPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, lowPriorityKey{}, true)
}

// LowPriority reports whether ctx was marked by WithLowPriority.
func LowPriority(ctx context.Context) bool {
	v, _ := ctx.Value(lowPriorityKey{}).(bool)
	return v
}

// Store is a database. Reads outside a transaction go through the Reader methods; every write goes
// through Tx, so a domain change, its event and its deliveries commit together.
type Store interface {
	Reader
	// Tx runs fn in a write transaction and commits when fn returns nil. The commit is durable before
	// Tx returns. fn may run concurrently with other transactions' fns on some drivers but never
	// observes their uncommitted writes; fn must not call Tx.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// WebhookSealSecrets seals, in one transaction, every webhook secret and custom-header set stored in clear (written
	// before an encryption key was set) and returns how many webhooks it changed. Without a key it
	// does nothing. Afterwards no clear secret is left in the database's files, where the driver
	// controls that (SQLite: zeroed free space, an emptied write-ahead log).
	WebhookSealSecrets(ctx context.Context) (int, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Reader holds the queries that need no transaction.
type Reader interface {
	ProposalReader
	SessionReader
	DeliveryReader
	// AccountGetByName returns the account named name, or errs.ErrNotFound.
	AccountGetByName(ctx context.Context, name string) (*account.Account, error)
	// APIKeyGetByHash returns the live key whose SHA-256 is hash, with its account, or
	// errs.ErrNotFound (also for a revoked key).
	APIKeyGetByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeyList returns the account's live keys, oldest first.
	APIKeyList(ctx context.Context, accountID string) ([]*APIKey, error)
	WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error)
	WebhookList(ctx context.Context, p *ListParams) ([]*webhook.Webhook, error)
	// WebhookCount returns how many webhooks (not deleted) the account has.
	WebhookCount(ctx context.Context, accountID string) (int, error)
	// AttemptGet returns one attempt of the account's webhook, or errs.ErrNotFound.
	AttemptGet(ctx context.Context, p *AttemptGetParams) (*webhook.Attempt, error)
	AttemptList(ctx context.Context, p *AttemptListParams) ([]*webhook.Attempt, error)
	DeliveryGet(ctx context.Context, accountID, id string) (*webhook.Delivery, error)
	QueueStats(ctx context.Context) (*QueueStats, error)
	// DeliveryDueWebhooks lists the webhooks that have deliveries due at p.Now, at most p.Limit,
	// with what a fair claim needs to share slots between them. It is a read: a claim runs it before
	// its write transaction, so the one SQLite writer is not held while it walks the webhooks.
	DeliveryDueWebhooks(ctx context.Context, p *DeliveryDueWebhooksParams) ([]*DueWebhook, error)
}

// Tx is a write transaction. It also reads, seeing its own writes.
type Tx interface {
	Reader
	ProposalWriter
	SessionWriter
	DeliveryRecoverer
	AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error)
	APIKeyInsert(ctx context.Context, p *APIKeyInsertParams) error
	// APIKeyTouch records that key id was used at now.
	APIKeyTouch(ctx context.Context, id string, now time.Time) error
	// APIKeyRevoke deletes key id and the console sessions signed in with it, or answers
	// errs.ErrNotFound.
	APIKeyRevoke(ctx context.Context, id string) error

	// WebhookGetForUpdate is WebhookGet for a read-modify-write: it keeps concurrent transactions
	// from changing the webhook until this one ends (SELECT … FOR UPDATE on PostgreSQL; SQLite's
	// single writer already serialises writing transactions). Without it a pause and a secret
	// rotation racing each other could each write back the other's stale copy.
	WebhookGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Webhook, error)
	// WebhookCountForUpdate is WebhookCount that keeps other transactions calling it for the same
	// account waiting until this one ends, so a limit checked with it holds under concurrent inserts.
	WebhookCountForUpdate(ctx context.Context, accountID string) (int, error)
	WebhookInsert(ctx context.Context, w *webhook.Webhook) error
	// WebhookRateTake starts one attempt against the webhook's rate limit at now, shared with
	// every claim: when the limit allows one, it takes it and returns the zero time; otherwise it
	// takes nothing and returns when one may start. Without a limit it returns the zero time.
	WebhookRateTake(ctx context.Context, webhookID string, now time.Time) (time.Time, error)
	// WebhookUpdate stores every field of w. Pausing holds the webhook's pending deliveries (but
	// tests, which are never held); resuming releases its held ones.
	WebhookUpdate(ctx context.Context, w *webhook.Webhook) error
	// WebhookDelete deletes the webhook and cancels its unfinished deliveries.
	WebhookDelete(ctx context.Context, p *WebhookDeleteParams) error
	// WebhookListSubscribed returns the account's webhooks, active or paused, that subscribe to
	// eventType.
	WebhookListSubscribed(ctx context.Context, accountID, eventType string) ([]*webhook.Webhook, error)

	EventInsert(ctx context.Context, e *webhook.Event) error
	// DeliveryInsert inserts deliveries; a delivery for a paused webhook should arrive held.
	DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error
	// The dispatcher runs DeliveryClaimDue, DeliveryRelease and DeliveryComplete each in a
	// transaction of its own, marked WithLeasesOnly.
	//
	// DeliveryClaimDue leases, for each allotment, up to its Limit due deliveries of its webhook,
	// earliest due first. A claimed delivery is not due again until its lease expires. Test
	// deliveries are never claimed: their sender attempts them once.
	DeliveryClaimDue(ctx context.Context, p *DeliveryClaimDueParams) ([]*ClaimedDelivery, error)
	// DeliveryRelease gives back claimed deliveries that will not be attempted now, due at now (a
	// paused webhook's are held).
	DeliveryRelease(ctx context.Context, cs []*ClaimedDelivery, now time.Time) error
	// DeliveryComplete logs each outcome's attempt and moves its delivery on. An outcome whose lease
	// was lost (another process re-claimed the delivery, or it was cancelled) logs its attempt and
	// leaves the delivery alone. It also applies health, the outcomes' effect on their webhooks'
	// health (webhook.HealthChanges), and frees the probe slot of each outcome with Probe.
	DeliveryComplete(ctx context.Context, outcomes []*DeliveryOutcome, health []*webhook.HealthChange) error
	// WebhookListFailing returns, locked for update, the active webhooks that p says to disable.
	WebhookListFailing(ctx context.Context, p *WebhookListFailingParams) ([]*webhook.Webhook, error)
	// DeliveryGetForUpdate is DeliveryGet with the lock of WebhookGetForUpdate on the delivery.
	DeliveryGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Delivery, error)
	// DeliveryRetry makes a delivery due at p.Now (or leases it to the caller until p.LeaseUntil),
	// pending, or held when its webhook is paused. It reports false and changes nothing when the
	// delivery is leased at p.Now (an attempt is in flight: making it due would let a second claim
	// send it at the same time), is not pending, succeeded or failed, or is not p.AccountID's.
	// Which states may be retried, and what to answer otherwise, the caller decides.
	DeliveryRetry(ctx context.Context, p *DeliveryRetryParams) (bool, error)
	// DeliveryListHeld returns up to limit deliveries held since before createdBefore, oldest first.
	// On PostgreSQL they stay locked until the transaction ends, and rows another transaction holds
	// are skipped, so concurrent sweeps take disjoint rows.
	DeliveryListHeld(ctx context.Context, createdBefore time.Time, limit int) ([]*webhook.Delivery, error)
	// DeliveryListInterrupted returns up to limit test deliveries still pending whose lease ended at
	// or before now: their sender died during the attempt. Locked as DeliveryListHeld's.
	DeliveryListInterrupted(ctx context.Context, now time.Time, limit int) ([]*webhook.Delivery, error)
	// DeliveryFail logs each attempt and makes its delivery failed at now, with the attempt's number
	// as its attempts. A delivery that is no longer pending or held only gets the log entry.
	DeliveryFail(ctx context.Context, attempts []*webhook.Attempt, now time.Time) error
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

// AttemptGetParams names one attempt of an account's webhook.
type AttemptGetParams struct {
	AccountID string
	WebhookID string
	ID        string
}

// AttemptListParams selects one page of a webhook's attempts, newest first.
type AttemptListParams struct {
	ListParams
	WebhookID string
	Succeeded *bool  // nil: both
	EventType string // "": all
}

// APIKey is an API key as stored: never the key itself, only its hash, which only lookups use.
type APIKey struct {
	ID          string // "key_…"
	AccountID   string
	AccountName string
	CreatedAt   time.Time
	// LastUsedAt is when the key last authenticated a request, to within a minute; zero when never.
	LastUsedAt time.Time
}

// APIKeyInsertParams is a new API key.
type APIKeyInsertParams struct {
	ID        string
	AccountID string
	Hash      []byte // SHA-256 of the key
	CreatedAt time.Time
}

// WebhookDeleteParams names the webhook to delete.
type WebhookDeleteParams struct {
	AccountID string
	ID        string
	Now       time.Time
}

// DeliveryRetryParams says which delivery to retry and how.
type DeliveryRetryParams struct {
	AccountID string
	ID        string
	Now       time.Time
	// FreshSchedule restarts the retry schedule (Retries = 0); otherwise it goes on where it was.
	FreshSchedule bool
	// LeaseUntil, when set, leases the delivery to the caller, who attempts it at once, instead of
	// making it due for a dispatcher (test deliveries, which no dispatcher claims).
	LeaseUntil time.Time
}

// DeliveryClaimDueParams says what to claim.
type DeliveryClaimDueParams struct {
	Now        time.Time
	LeaseUntil time.Time
	Allotments []ClaimAllotment
}

// ClaimedDelivery is a leased delivery with what sending it needs.
type ClaimedDelivery struct {
	webhook.Delivery
	URL string
	// Secret signs both headers; OldSecret ("" when none) also signs webhook-signature during the
	// rotation overlap.
	Secret    string
	OldSecret string
	// Headers are the webhook's custom headers, in clear, sent with every attempt.
	Headers    map[string]string
	LeaseUntil time.Time
	// Probe reports whether the claim holds its webhook's probe slot (ClaimAllotment.Probe).
	Probe bool
}

// DeliveryOutcome is the result of one attempt and where it leaves the delivery.
type DeliveryOutcome struct {
	Attempt *webhook.Attempt
	// LeaseUntil identifies the claim that made the attempt; Probe says it held the probe slot.
	LeaseUntil time.Time
	Probe      bool
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
