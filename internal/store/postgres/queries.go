package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// dbtx is what queries run on: the pool (reads outside a transaction) or a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queries implements store.Tx over q. Bound to the pool, only its Reader methods are used.
type queries struct {
	q   dbtx
	box *secretbox.Box
}

var _ store.Tx = (*queries)(nil)

// scanner is a row to scan: a pgx.Row or the current row of pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// interpretError maps pgx errors to ours; it is the only place that knows them. A missing row is
// errs.ErrNotFound. Everything else, unique violations included, stays an internal error as on
// SQLite: each unique key that callers may hit (account names, settings) is handled by its query
// with ON CONFLICT, and the others (random ids, share tokens, session hashes) collide only by
// astronomically bad luck.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.ErrNotFound
	}
	return err
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// nullMS is ms with NULL for the zero time, for nullable time columns.
func nullMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// storableText returns s as PostgreSQL text can hold it: valid UTF-8 without NUL. It guards the
// attempt log's error, which may quote what a remote server sent; a string the database refuses would
// fail the whole batch of outcomes it belongs to.
func storableText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// notNull returns b, or an empty slice for nil, which pgx would send as NULL to a NOT NULL column.
func notNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func collect[T any](rows pgx.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sendBatch runs b in one round trip and returns the first error.
func (q *queries) sendBatch(ctx context.Context, b *pgx.Batch) error {
	return q.q.SendBatch(ctx, b).Close()
}

// --- accounts and keys ---

func (q *queries) AccountGetByKeyHash(ctx context.Context, hash []byte) (*account.Account, error) {
	var a account.Account
	var created int64
	err := q.q.QueryRow(ctx, `SELECT a.id, a.name, a.created_at FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1`, hash).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	// ON CONFLICT waits for a concurrent insert of the same name to commit, so the SELECT below
	// (a new snapshot under read committed) sees whichever row won.
	_, err := q.q.Exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, ms(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	var a account.Account
	var created int64
	err = q.q.QueryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = $1`, name).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error {
	_, err := q.q.Exec(ctx, `INSERT INTO api_keys (account_id, key_hash, created_at) VALUES ($1, $2, $3)`,
		accountID, hash, ms(now))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// --- webhooks ---

const webhookCols = `id, account_id, name, url, events, is_active, secret, previous_secret,
	previous_secret_expires_at, created_at, updated_at`

func (q *queries) scanWebhook(row scanner) (*webhook.Webhook, error) {
	var w webhook.Webhook
	var secret, prev string
	var prevExp, created, updated int64
	if err := row.Scan(&w.ID, &w.AccountID, &w.Name, &w.URL, &w.Events, &w.IsActive, &secret, &prev,
		&prevExp, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	var err error
	if w.Secret, err = q.box.Open(secret); err != nil {
		return nil, err
	}
	if w.PreviousSecret, err = q.box.Open(prev); err != nil {
		return nil, err
	}
	w.PreviousSecretExpiresAt, w.CreatedAt, w.UpdatedAt = fromMS(prevExp), fromMS(created), fromMS(updated)
	return &w, nil
}

// events returns w's events for the NOT NULL array column: pgx sends a nil slice as NULL.
func events(w *webhook.Webhook) []string {
	if w.Events == nil {
		return []string{}
	}
	return w.Events
}

func (q *queries) WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.scanWebhook(q.q.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`, id, accountID))
}

// afterSeq returns the seq below which the next page starts: the seq of the object named by p.After
// among the account's objects of table (and, for attempts, the webhook's).
func (q *queries) afterSeq(ctx context.Context, table string, p *store.ListParams, webhookID string) (int64, error) {
	if p.After == "" {
		return 1<<63 - 1, nil
	}
	sql := `SELECT seq FROM ` + table + ` WHERE id = $1 AND account_id = $2`
	args := []any{p.After, p.AccountID}
	if webhookID != "" {
		sql += ` AND webhook_id = $3`
		args = append(args, webhookID)
	}
	var seq int64
	err := q.q.QueryRow(ctx, sql, args...).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errs.Field("cursor", "is not a cursor of this list")
	}
	return seq, err
}

func (q *queries) WebhookList(ctx context.Context, p *store.ListParams) ([]*webhook.Webhook, error) {
	after, err := q.afterSeq(ctx, "webhooks", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.q.Query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE account_id = $1 AND deleted_at IS NULL AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		p.AccountID, after, p.Limit)
	return collect(rows, err, q.scanWebhook)
}

// WebhookListSubscribed share-locks the webhooks it returns until the transaction ends. Publish
// decides from them whether each delivery is pending or held; without the lock a pause, resume or
// delete committing meanwhile would miss the deliveries this transaction is about to insert (a
// delivery sent after its webhook was deleted, or held for good after a resume). With it, such a
// change waits for this transaction, or this read waits for the change and sees it.
func (q *queries) WebhookListSubscribed(ctx context.Context, accountID, eventType string) ([]*webhook.Webhook, error) {
	// webhooks_account narrows to the account's few live webhooks; the array test filters those.
	rows, err := q.q.Query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE account_id = $1 AND deleted_at IS NULL AND $2 = ANY (events) ORDER BY seq FOR SHARE`,
		accountID, eventType)
	return collect(rows, err, q.scanWebhook)
}

func (q *queries) WebhookInsert(ctx context.Context, w *webhook.Webhook) error {
	_, err := q.q.Exec(ctx, `INSERT INTO webhooks (`+webhookCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		w.ID, w.AccountID, w.Name, w.URL, events(w), w.IsActive, q.box.Seal(w.Secret),
		q.box.Seal(w.PreviousSecret), ms(w.PreviousSecretExpiresAt), ms(w.CreatedAt), ms(w.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

func (q *queries) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	tag, err := q.q.Exec(ctx, `UPDATE webhooks SET name = $1, url = $2, events = $3, is_active = $4,
		secret = $5, previous_secret = $6, previous_secret_expires_at = $7, updated_at = $8
		WHERE id = $9 AND account_id = $10 AND deleted_at IS NULL`,
		w.Name, w.URL, events(w), w.IsActive, q.box.Seal(w.Secret), q.box.Seal(w.PreviousSecret),
		ms(w.PreviousSecretExpiresAt), ms(w.UpdatedAt), w.ID, w.AccountID)
	if err != nil {
		return fmt.Errorf("update webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	if !w.IsActive {
		// Deliveries in flight (leased) finish their attempt; their outcome holds them.
		_, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'held', updated_at = $1
			WHERE webhook_id = $2 AND state = 'pending' AND (locked_until IS NULL OR locked_until <= $1)`,
			ms(w.UpdatedAt), w.ID)
		if err != nil {
			return fmt.Errorf("hold deliveries: %w", err)
		}
		return nil
	}
	// Held deliveries keep their due time, so they are released oldest first.
	tag, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'pending', updated_at = $1
		WHERE webhook_id = $2 AND state = 'held'`, ms(w.UpdatedAt), w.ID)
	if err != nil {
		return fmt.Errorf("release held deliveries: %w", err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := q.q.Exec(ctx, notifyDue); err != nil {
			return fmt.Errorf("release held deliveries: %w", err)
		}
	}
	return nil
}

func (q *queries) WebhookDelete(ctx context.Context, accountID, id string, now time.Time) error {
	tag, err := q.q.Exec(ctx, `UPDATE webhooks SET deleted_at = $1, updated_at = $1
		WHERE id = $2 AND account_id = $3 AND deleted_at IS NULL`, ms(now), id, accountID)
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	_, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'cancelled', locked_until = NULL, updated_at = $1
		WHERE webhook_id = $2 AND state IN ('pending', 'held')`, ms(now), id)
	if err != nil {
		return fmt.Errorf("cancel deliveries: %w", err)
	}
	return nil
}

// --- events and deliveries ---

func (q *queries) EventInsert(ctx context.Context, e *webhook.Event) error {
	_, err := q.q.Exec(ctx, `INSERT INTO events (id, account_id, type, occurred_at, data) VALUES ($1, $2, $3, $4, $5)`,
		e.ID, e.AccountID, e.Type, ms(e.OccurredAt), eventData(e))
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// insertDeliveries inserts any number of deliveries and their bodies in one statement: one array
// per column, unnested in order so seq follows the slice.
const insertDeliveries = `WITH d AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
			$7::text[], $8::int[], $9::int[], $10::bigint[], $11::bigint[], $12::bigint[]) WITH ORDINALITY
		AS d(id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
			next_attempt_at, locked_until, created_at, ord)
	), inserted AS (
		INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
			next_attempt_at, locked_until, created_at, updated_at)
		SELECT id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
			next_attempt_at, NULLIF(locked_until, 0), created_at, created_at
		FROM d ORDER BY ord
		RETURNING seq, id
	)
	INSERT INTO delivery_bodies (delivery_seq, body)
	SELECT inserted.seq, d.body FROM inserted JOIN d ON d.id = inserted.id ORDER BY inserted.seq`

func (q *queries) DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	ids, accounts, hooks, evs, types, states := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	bodies := make([][]byte, n)
	attempts, retries := make([]int, n), make([]int, n)
	next, locked, created := make([]int64, n), make([]int64, n), make([]int64, n)
	wake := false
	for i, d := range ds {
		ids[i], accounts[i], hooks[i], evs[i], types[i] = d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType
		bodies[i], states[i], attempts[i], retries[i] = notNull(d.Body), string(d.State), d.Attempts, d.Retries
		next[i], locked[i], created[i] = ms(d.NextAttemptAt), ms(d.LockedUntil), ms(d.CreatedAt)
		// A delivery inserted leased (a test send) is attempted by its caller, not a dispatcher.
		wake = wake || (d.State == webhook.DeliveryPending && d.LockedUntil.IsZero())
	}
	b := &pgx.Batch{}
	b.Queue(insertDeliveries, ids, accounts, hooks, evs, types, bodies, states, attempts, retries, next, locked, created)
	if wake {
		b.Queue(notifyDue)
	}
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// deliveryCols are read FROM deliveryTables.
const deliveryCols = `id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
	next_attempt_at, created_at`

// deliveryTables are deliveries with their bodies.
const deliveryTables = `deliveries JOIN delivery_bodies ON delivery_seq = seq`

// deliveryDest returns the scan destinations of deliveryCols into d, and a func that finishes d
// after the scan.
func deliveryDest(d *webhook.Delivery) ([]any, func()) {
	var state string
	var next, created int64
	return []any{&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventType, &d.Body, &state,
			&d.Attempts, &d.Retries, &next, &created}, func() {
			d.State, d.NextAttemptAt, d.CreatedAt = webhook.DeliveryState(state), fromMS(next), fromMS(created)
		}
}

func scanDelivery(row scanner) (*webhook.Delivery, error) {
	d := &webhook.Delivery{}
	dest, finish := deliveryDest(d)
	if err := row.Scan(dest...); err != nil {
		return nil, interpretError(err)
	}
	finish()
	return d, nil
}

func (q *queries) DeliveryGet(ctx context.Context, accountID, id string) (*webhook.Delivery, error) {
	return scanDelivery(q.q.QueryRow(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE id = $1 AND account_id = $2`, id, accountID))
}

// claimDue leases due deliveries in one statement. The locking subquery walks deliveries_due in
// exactly its order and skips rows other claimers hold, so concurrent workers take disjoint batches
// without waiting; MATERIALIZED makes it run once. The result comes with what sending needs from
// the webhook, in due order.
// claimWith is the claim around a "due" query that picks the seqs to lease, earliest due first.
func claimWith(due string) string {
	return `WITH due AS MATERIALIZED (` + due + `), claimed AS (
		UPDATE deliveries d SET next_attempt_at = $4, locked_until = $4, updated_at = $1
		FROM due WHERE d.seq = due.seq
		RETURNING d.id, d.account_id, d.webhook_id, d.event_id, d.event_type, d.state, d.attempts,
			d.retries, d.next_attempt_at, d.created_at, due.due_at, d.seq
	)
	SELECT c.id, c.account_id, c.webhook_id, c.event_id, c.event_type, b.body, c.state, c.attempts,
		c.retries, c.next_attempt_at, c.created_at, w.url, w.secret, w.previous_secret,
		w.previous_secret_expires_at
	FROM claimed c JOIN webhooks w ON w.id = c.webhook_id JOIN delivery_bodies b ON b.delivery_seq = c.seq
	ORDER BY c.due_at, c.seq`
}

// claimDue walks the due order ($2: webhooks to skip).
var claimDue = claimWith(`
		SELECT seq, next_attempt_at AS due_at FROM deliveries
		WHERE state = 'pending' AND next_attempt_at <= $1 AND webhook_id <> ALL ($2::text[])
		ORDER BY next_attempt_at, seq
		LIMIT $3
		FOR UPDATE SKIP LOCKED`)

// claimDueOf takes the first due deliveries of each webhook of $2 through deliveries_webhook_due and
// claims the earliest of those: the same rows as claimDue, found without walking past the backlog of
// the webhooks claimDue would skip.
var claimDueOf = claimWith(`
		SELECT seq, next_attempt_at AS due_at FROM deliveries
		WHERE seq IN (
			SELECT d.seq FROM unnest($2::text[]) AS h(id)
			CROSS JOIN LATERAL (
				SELECT seq, next_attempt_at FROM deliveries
				WHERE state = 'pending' AND webhook_id = h.id AND next_attempt_at <= $1
				ORDER BY next_attempt_at, seq LIMIT $3
			) d
			ORDER BY d.next_attempt_at, d.seq LIMIT $3)
		AND state = 'pending' AND next_attempt_at <= $1
		ORDER BY next_attempt_at, seq
		LIMIT $3
		FOR UPDATE SKIP LOCKED`)

// fewWebhooks bounds the per-webhook claim: past it, walking the due order is cheaper.
const fewWebhooks = 16

// pendingWebhooks lists the webhooks with pending deliveries by a loose index scan (one index probe
// each), stopping after fewWebhooks+1.
const pendingWebhooks = `WITH RECURSIVE hooks (id, n) AS (
		(SELECT webhook_id, 1 FROM deliveries WHERE state = 'pending' ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND webhook_id > hooks.id
			ORDER BY webhook_id LIMIT 1), n + 1
		FROM hooks WHERE hooks.id IS NOT NULL AND n <= $1
	)
	SELECT id FROM hooks WHERE id IS NOT NULL`

func (q *queries) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.ClaimedDelivery, error) {
	exclude := p.ExcludeWebhooks
	if exclude == nil {
		exclude = []string{} // NULL would make <> ALL unknown and exclude everything
	}
	query, set := claimDue, exclude
	if len(exclude) > 0 {
		// A claim that skips webhooks (at their cap, often hung) would walk past their whole due
		// backlog; when few webhooks have pending deliveries, visit the others' backlogs directly.
		rows, err := q.q.Query(ctx, pendingWebhooks, fewWebhooks)
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: pending webhooks: %w", err)
		}
		hooks, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: pending webhooks: %w", err)
		}
		if len(hooks) <= fewWebhooks {
			set = slices.DeleteFunc(hooks, func(id string) bool { return slices.Contains(exclude, id) })
			if len(set) == 0 {
				return nil, nil
			}
			query = claimDueOf
		}
	}
	rows, err := q.q.Query(ctx, query, ms(p.Now), set, p.Limit, ms(p.LeaseUntil))
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	type sealed struct{ secret, prev string }
	opened := map[sealed][2]string{} // each webhook's secrets are opened once per claim
	var out []*store.ClaimedDelivery
	for rows.Next() {
		c := &store.ClaimedDelivery{LeaseUntil: p.LeaseUntil}
		dest, finish := deliveryDest(&c.Delivery)
		var s sealed
		var prevExp int64
		if err := rows.Scan(append(dest, &c.URL, &s.secret, &s.prev, &prevExp)...); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		finish()
		secrets, ok := opened[s]
		if !ok {
			if secrets[0], err = q.box.Open(s.secret); err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			if secrets[1], err = q.box.Open(s.prev); err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			opened[s] = secrets
		}
		w := webhook.Webhook{Secret: secrets[0], PreviousSecret: secrets[1], PreviousSecretExpiresAt: fromMS(prevExp)}
		c.Secret = w.Secret
		if ss := w.SigningSecrets(p.Now); len(ss) > 1 {
			c.OldSecret = ss[1]
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// lockWebhooks share-locks the webhooks of a batch, in id order, until the transaction ends.
// Statements that decide pending or held from is_active take it first, so a pause or resume either
// waits for them (and then sees the deliveries they wrote) or commits before their next statement
// reads is_active. Without it, a retry written while a resume commits would stay held for good.
const lockWebhooks = `SELECT 1 FROM webhooks WHERE id = ANY ($1::text[]) ORDER BY id FOR SHARE`

// webhookIDs returns the distinct webhook ids of a batch, sorted.
func webhookIDs[T any](items []T, id func(T) string) []string {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, id(it))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// DeliveryRelease makes claimed deliveries due at now; one whose webhook was paused meanwhile is
// held instead, as a retry is (the SQLite driver makes it pending; see the package doc).
func (q *queries) DeliveryRelease(ctx context.Context, cs []*store.ClaimedDelivery, now time.Time) error {
	if len(cs) == 0 {
		return nil
	}
	ids, leases := make([]string, len(cs)), make([]int64, len(cs))
	for i, c := range cs {
		ids[i], leases[i] = c.ID, ms(c.LeaseUntil)
	}
	b := &pgx.Batch{}
	b.Queue(lockWebhooks, webhookIDs(cs, func(c *store.ClaimedDelivery) string { return c.WebhookID }))
	b.Queue(`UPDATE deliveries d SET state = CASE WHEN w.is_active THEN 'pending' ELSE 'held' END,
			next_attempt_at = $1, locked_until = NULL, updated_at = $1
		FROM unnest($2::text[], $3::bigint[]) AS r(id, lease), webhooks w
		WHERE d.id = r.id AND d.state = 'pending' AND d.locked_until = r.lease AND w.id = d.webhook_id`,
		ms(now), ids, leases)
	b.Queue(notifyDue)
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}

// insertAttempts inserts any number of attempts in one statement, in slice order (so seq, and
// newest-first lists, follow it).
const insertAttempts = `INSERT INTO attempts (id, delivery_id, webhook_id, account_id, event_id, event_type,
	number, succeeded, status_code, error, response_body, response_time_ms, request_headers, created_at,
	next_attempt_at)
	SELECT id, delivery_id, webhook_id, account_id, event_id, event_type, number, succeeded, status_code,
		error, response_body, response_time_ms, request_headers::jsonb, created_at, next_attempt_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
		$8::bool[], $9::int[], $10::text[], $11::bytea[], $12::bigint[], $13::text[], $14::bigint[],
		$15::bigint[]) WITH ORDINALITY
		AS a(id, delivery_id, webhook_id, account_id, event_id, event_type, number, succeeded, status_code,
			error, response_body, response_time_ms, request_headers, created_at, next_attempt_at, ord)
	ORDER BY ord`

// queueAttempts adds the insert of as to b.
func queueAttempts(b *pgx.Batch, as []*webhook.Attempt) {
	n := len(as)
	ids, dlvs, hooks, accts, evs, types, msgs, headers := make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n)
	numbers, codes := make([]int, n), make([]int, n)
	succeeded := make([]bool, n)
	bodies := make([][]byte, n)
	rts, created, next := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, a := range as {
		h, _ := json.Marshal(a.RequestHeaders) // a map of strings always encodes
		if a.RequestHeaders == nil {
			h = []byte("{}")
		}
		ids[i], dlvs[i], hooks[i], accts[i], evs[i], types[i] = a.ID, a.DeliveryID, a.WebhookID, a.AccountID, a.EventID, a.EventType
		numbers[i], succeeded[i], codes[i], msgs[i] = a.Number, a.Succeeded, a.StatusCode, storableText(a.Error)
		bodies[i], rts[i], headers[i] = notNull([]byte(a.ResponseBody)), a.ResponseTime.Milliseconds(), string(h)
		created[i], next[i] = ms(a.CreatedAt), ms(a.NextAttemptAt)
	}
	b.Queue(insertAttempts, ids, dlvs, hooks, accts, evs, types, numbers, succeeded, codes, msgs, bodies,
		rts, headers, created, next)
}

func (q *queries) DeliveryComplete(ctx context.Context, outcomes []*store.DeliveryOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	n := len(outcomes)
	as := make([]*webhook.Attempt, n)
	for i, o := range outcomes {
		as[i] = o.Attempt
	}
	// Sorted by delivery id, so batches that overlap lock their rows in one order.
	sorted := slices.Clone(outcomes)
	slices.SortFunc(sorted, func(a, b *store.DeliveryOutcome) int { return cmp.Compare(a.Attempt.DeliveryID, b.Attempt.DeliveryID) })
	ids, states := make([]string, n), make([]string, n)
	attempts, retries := make([]int, n), make([]int, n)
	next, at, leases := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, o := range sorted {
		ids[i], states[i], attempts[i], retries[i] = o.Attempt.DeliveryID, string(o.State), o.Attempt.Number, o.Retries
		next[i], at[i], leases[i] = ms(o.NextAttemptAt), ms(o.Attempt.CreatedAt), ms(o.LeaseUntil)
	}
	b := &pgx.Batch{}
	b.Queue(lockWebhooks, webhookIDs(as, func(a *webhook.Attempt) string { return a.WebhookID }))
	queueAttempts(b, as)
	// Only the claim that holds the lease moves a delivery; a retry of a webhook paused meanwhile is
	// held instead of pending.
	b.Queue(`UPDATE deliveries d SET
			state = CASE WHEN o.state = 'pending' AND NOT w.is_active THEN 'held' ELSE o.state END,
			attempts = o.attempts, retries = o.retries, next_attempt_at = o.next_at, locked_until = NULL,
			updated_at = o.at
		FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[])
			AS o(id, state, attempts, retries, next_at, at, lease), webhooks w
		WHERE d.id = o.id AND d.state = 'pending' AND d.locked_until = o.lease AND w.id = d.webhook_id`,
		ids, states, attempts, retries, next, at, leases)
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
	return nil
}

func (q *queries) DeliveryResend(ctx context.Context, accountID, id string, now time.Time) error {
	// The webhook is share-locked first, for the reason of lockWebhooks.
	var active bool
	err := q.q.QueryRow(ctx, `SELECT w.is_active FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.id = $1 AND d.account_id = $2 FOR SHARE OF w`, id, accountID).Scan(&active)
	if err != nil {
		return interpretError(err)
	}
	state := webhook.DeliveryPending
	if !active {
		state = webhook.DeliveryHeld
	}
	tag, err := q.q.Exec(ctx, `UPDATE deliveries SET state = $1, retries = 0, next_attempt_at = $2,
		locked_until = NULL, updated_at = $2
		WHERE id = $3 AND account_id = $4 AND state IN ('succeeded', 'failed')`, string(state), ms(now), id, accountID)
	if err != nil {
		return fmt.Errorf("resend delivery: %w", err)
	}
	if tag.RowsAffected() == 0 {
		d, err := q.DeliveryGet(ctx, accountID, id)
		if err != nil {
			return err
		}
		return errs.Errorf(errs.Conflict, "The delivery is still %s; it can be resent once it has succeeded or failed.", d.State)
	}
	if state == webhook.DeliveryPending {
		if _, err := q.q.Exec(ctx, notifyDue); err != nil {
			return fmt.Errorf("resend delivery: %w", err)
		}
	}
	return nil
}

// ExpiredWhilePaused is the error logged for a held delivery dropped after the log retention.
const ExpiredWhilePaused = "expired while paused"

func (q *queries) DeliveryExpireHeld(ctx context.Context, olderThan, now time.Time, limit int) (int, error) {
	// SKIP LOCKED: every node sweeps, and concurrent sweeps take disjoint rows instead of queueing
	// behind each other.
	rows, err := q.q.Query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'held' AND created_at < $1 ORDER BY created_at LIMIT $2
		FOR UPDATE OF deliveries SKIP LOCKED`, ms(olderThan), limit)
	expired, err := collect(rows, err, scanDelivery)
	if err != nil {
		return 0, fmt.Errorf("expire held deliveries: %w", err)
	}
	if len(expired) == 0 {
		return 0, nil
	}
	as := make([]*webhook.Attempt, len(expired))
	ids, numbers := make([]string, len(expired)), make([]int, len(expired))
	for i, d := range expired {
		as[i] = &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: d.WebhookID,
			AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType, Number: d.Attempts + 1,
			Error: ExpiredWhilePaused, RequestHeaders: map[string]string{}, CreatedAt: now}
		ids[i], numbers[i] = d.ID, d.Attempts+1
	}
	b := &pgx.Batch{}
	queueAttempts(b, as)
	b.Queue(`UPDATE deliveries d SET state = 'failed', attempts = e.number, updated_at = $1
		FROM unnest($2::text[], $3::int[]) AS e(id, number) WHERE d.id = e.id`, ms(now), ids, numbers)
	if err := q.sendBatch(ctx, b); err != nil {
		return 0, fmt.Errorf("expire held deliveries: %w", err)
	}
	return len(expired), nil
}

func (q *queries) AttemptPrune(ctx context.Context, before time.Time, limit int) (int, error) {
	// Each subquery is bounded and walks an index; SKIP LOCKED lets every node prune at once, each
	// its own rows.
	tag, err := q.q.Exec(ctx, `DELETE FROM attempts WHERE seq IN (SELECT seq FROM attempts
		WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune attempts: %w", err)
	}
	if _, err := q.q.Exec(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries d
		WHERE state IN ('succeeded', 'failed', 'cancelled') AND updated_at < $1
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if _, err := q.q.Exec(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events e
		WHERE occurred_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// --- attempts ---

const attemptCols = `a.id, a.delivery_id, a.webhook_id, a.account_id, a.event_id, a.event_type, a.number,
	a.succeeded, a.status_code, a.error, a.response_body, a.response_time_ms, a.request_headers,
	a.created_at, a.next_attempt_at, b.body`

func scanAttempt(row scanner) (*webhook.Attempt, error) {
	var a webhook.Attempt
	var rt, created, next int64
	var body, headers []byte
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.WebhookID, &a.AccountID, &a.EventID, &a.EventType, &a.Number,
		&a.Succeeded, &a.StatusCode, &a.Error, &body, &rt, &headers, &created, &next, &a.Payload); err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal(headers, &a.RequestHeaders); err != nil {
		return nil, fmt.Errorf("attempt %s: headers: %w", a.ID, err)
	}
	a.ResponseBody = string(body)
	a.ResponseTime = time.Duration(rt) * time.Millisecond
	a.CreatedAt, a.NextAttemptAt = fromMS(created), fromMS(next)
	return &a, nil
}

func (q *queries) AttemptGet(ctx context.Context, accountID, webhookID, id string) (*webhook.Attempt, error) {
	return scanAttempt(q.q.QueryRow(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id JOIN delivery_bodies b ON b.delivery_seq = d.seq
		WHERE a.id = $1 AND a.account_id = $2 AND a.webhook_id = $3`, id, accountID, webhookID))
}

func (q *queries) AttemptList(ctx context.Context, p *store.AttemptListParams) ([]*webhook.Attempt, error) {
	after, err := q.afterSeq(ctx, "attempts", &p.ListParams, p.WebhookID)
	if err != nil {
		return nil, err
	}
	// One statement for every filter combination (NULL and '' mean "any"), so pgx prepares it once.
	rows, err := q.q.Query(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id JOIN delivery_bodies b ON b.delivery_seq = d.seq
		WHERE a.account_id = $1 AND a.webhook_id = $2 AND a.seq < $3
			AND ($4::boolean IS NULL OR a.succeeded = $4) AND ($5 = '' OR a.event_type = $5)
		ORDER BY a.seq DESC LIMIT $6`,
		p.AccountID, p.WebhookID, after, p.Succeeded, p.EventType, p.Limit)
	return collect(rows, err, scanAttempt)
}

func (q *queries) QueueStats(ctx context.Context) (*store.QueueStats, error) {
	var s store.QueueStats
	var oldest *int64
	err := q.q.QueryRow(ctx, `SELECT count(*), min(created_at) FROM deliveries
		WHERE state IN ('pending', 'held')`).Scan(&s.Depth, &oldest)
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	if oldest != nil {
		s.OldestPending = fromMS(*oldest)
	}
	return &s, nil
}

// --- settings ---

func (q *queries) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := q.q.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (q *queries) SettingSet(ctx context.Context, name, value string) error {
	_, err := q.q.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("set setting: %w", err)
	}
	return nil
}
