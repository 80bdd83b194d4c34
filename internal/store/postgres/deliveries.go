package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

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

// insertDeliveries inserts any number of deliveries and their bodies in one statement: one array
// per column, unnested in order so seq follows the slice.
const insertDeliveries = `WITH d AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[],
			$7::text[], $8::int[], $9::int[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bool[])
			WITH ORDINALITY
		AS d(id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
			next_attempt_at, locked_until, created_at, test, ord)
	), inserted AS (
		INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
			next_attempt_at, locked_until, created_at, updated_at, test)
		SELECT id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
			next_attempt_at, NULLIF(locked_until, 0), created_at, created_at, test
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
	tests := make([]bool, n)
	wake := false
	for i, d := range ds {
		tests[i] = d.Test
		ids[i], accounts[i], hooks[i], evs[i], types[i] = d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType
		bodies[i], states[i], attempts[i], retries[i] = notNull(d.Body), string(d.State), d.Attempts, d.Retries
		next[i], locked[i], created[i] = sqlconv.MS(d.NextAttemptAt), sqlconv.MS(d.LockedUntil), sqlconv.MS(d.CreatedAt)
		// A test is attempted by its caller, not a dispatcher.
		wake = wake || (d.State == webhook.DeliveryPending && !d.Test)
	}
	b := &pgx.Batch{}
	b.Queue(insertDeliveries, ids, accounts, hooks, evs, types, bodies, states, attempts, retries, next, locked, created, tests)
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
	next_attempt_at, created_at, locked_until, test`

// deliveryTables are deliveries with their bodies.
const deliveryTables = `deliveries JOIN delivery_bodies ON delivery_seq = seq`

// deliveryDest returns the scan destinations of deliveryCols but the last two into d, and a func that finishes d
// after the scan.
func deliveryDest(d *webhook.Delivery) ([]any, func()) {
	var state string
	var next, created int64
	return []any{&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventType, &d.Body, &state,
			&d.Attempts, &d.Retries, &next, &created}, func() {
			d.State, d.NextAttemptAt, d.CreatedAt = webhook.DeliveryState(state), sqlconv.FromMS(next), sqlconv.FromMS(created)
		}
}

func scanDelivery(row scanner) (*webhook.Delivery, error) {
	d := &webhook.Delivery{}
	dest, finish := deliveryDest(d)
	var locked *int64
	if err := row.Scan(append(dest, &locked, &d.Test)...); err != nil {
		return nil, interpretError(err)
	}
	finish()
	d.LockedUntil = sqlconv.FromNullMS(locked)
	return d, nil
}

func (q *queries) DeliveryGet(ctx context.Context, accountID, id string) (*webhook.Delivery, error) {
	return scanDelivery(q.q.QueryRow(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE id = $1 AND account_id = $2`, id, accountID))
}

// claimWith is the claim around a "due" query that picks the seqs to lease, earliest due first, in
// one statement. The locking subquery walks deliveries_due in exactly its order and skips rows other
// claimers hold, so concurrent workers take disjoint batches without waiting; MATERIALIZED makes it
// run once. The result comes with what sending needs from the webhook, in due order.
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
		WHERE state = 'pending' AND NOT test AND next_attempt_at <= $1 AND webhook_id <> ALL ($2::text[])
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
				WHERE state = 'pending' AND NOT test AND webhook_id = h.id AND next_attempt_at <= $1
				ORDER BY next_attempt_at, seq LIMIT $3
			) d
			ORDER BY d.next_attempt_at, d.seq LIMIT $3)
		AND state = 'pending' AND NOT test AND next_attempt_at <= $1
		ORDER BY next_attempt_at, seq
		LIMIT $3
		FOR UPDATE SKIP LOCKED`)

// fewWebhooks bounds the per-webhook claim: past it, walking the due order is cheaper.
const fewWebhooks = 16

// pendingWebhooks lists the webhooks with pending deliveries by a loose index scan (one index probe
// each), stopping after fewWebhooks+1.
const pendingWebhooks = `WITH RECURSIVE hooks (id, n) AS (
		(SELECT webhook_id, 1 FROM deliveries WHERE state = 'pending' AND NOT test ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND NOT test AND webhook_id > hooks.id
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
	rows, err := q.q.Query(ctx, query, sqlconv.MS(p.Now), set, p.Limit, sqlconv.MS(p.LeaseUntil))
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
		w := webhook.Webhook{Secret: secrets[0], PreviousSecret: secrets[1], PreviousSecretExpiresAt: sqlconv.FromMS(prevExp)}
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
// held instead, as a retry is.
func (q *queries) DeliveryRelease(ctx context.Context, cs []*store.ClaimedDelivery, now time.Time) error {
	if len(cs) == 0 {
		return nil
	}
	ids, leases := make([]string, len(cs)), make([]int64, len(cs))
	for i, c := range cs {
		ids[i], leases[i] = c.ID, sqlconv.MS(c.LeaseUntil)
	}
	b := &pgx.Batch{}
	b.Queue(lockWebhooks, webhookIDs(cs, func(c *store.ClaimedDelivery) string { return c.WebhookID }))
	b.Queue(`UPDATE deliveries d SET state = CASE WHEN w.is_active THEN 'pending' ELSE 'held' END,
			next_attempt_at = $1, locked_until = NULL, updated_at = $1
		FROM unnest($2::text[], $3::bigint[]) AS r(id, lease), webhooks w
		WHERE d.id = r.id AND d.state = 'pending' AND d.locked_until = r.lease AND w.id = d.webhook_id`,
		sqlconv.MS(now), ids, leases)
	b.Queue(notifyDue)
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
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
		next[i], at[i], leases[i] = sqlconv.MS(o.NextAttemptAt), sqlconv.MS(o.Attempt.CreatedAt), sqlconv.MS(o.LeaseUntil)
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

// DeliveryGetForUpdate share-locks the delivery's webhook, then locks the delivery: the order in which
// every writer of deliveries takes them (lockWebhooks), so it deadlocks with none of them.
func (q *queries) DeliveryGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Delivery, error) {
	if _, err := q.q.Exec(ctx, `SELECT 1 FROM webhooks w JOIN deliveries d ON d.webhook_id = w.id
		WHERE d.id = $1 AND d.account_id = $2 FOR SHARE OF w`, id, accountID); err != nil {
		return nil, fmt.Errorf("lock delivery: %w", err)
	}
	return scanDelivery(q.q.QueryRow(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE id = $1 AND account_id = $2 FOR UPDATE OF deliveries`, id, accountID))
}

// DeliveryRetry share-locks the webhook first, for the reason of lockWebhooks. A claim racing it
// either committed first (the lease is live: nothing changes) or skips the row this transaction
// locks (SKIP LOCKED) and finds it due at its next claim; the UPDATE re-checks the lease on the row
// as committed, so no interleaving lets two claims hold the delivery at once.
func (q *queries) DeliveryRetry(ctx context.Context, p *store.DeliveryRetryParams) (bool, error) {
	var active bool
	err := q.q.QueryRow(ctx, `SELECT w.is_active FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.id = $1 AND d.account_id = $2 FOR SHARE OF w`, p.ID, p.AccountID).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("retry delivery: %w", err)
	}
	state, due := webhook.DeliveryPending, p.Now
	switch {
	case !p.LeaseUntil.IsZero():
		due = p.LeaseUntil
	case !active:
		state = webhook.DeliveryHeld
	}
	tag, err := q.q.Exec(ctx, `UPDATE deliveries SET state = $1,
		retries = CASE WHEN $2 THEN 0 ELSE retries END,
		next_attempt_at = $3, locked_until = $4, updated_at = $5
		WHERE id = $6 AND account_id = $7 AND state IN ('pending', 'succeeded', 'failed')
			AND (locked_until IS NULL OR locked_until <= $5)`,
		string(state), p.FreshSchedule, sqlconv.MS(due), sqlconv.NullMS(p.LeaseUntil), sqlconv.MS(p.Now), p.ID, p.AccountID)
	if err != nil {
		return false, fmt.Errorf("retry delivery: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if state == webhook.DeliveryPending && p.LeaseUntil.IsZero() {
		if _, err := q.q.Exec(ctx, notifyDue); err != nil {
			return false, fmt.Errorf("retry delivery: %w", err)
		}
	}
	return true, nil
}

// DeliveryListHeld locks what it returns, skipping locked rows: every node sweeps, and concurrent
// sweeps take disjoint rows instead of queueing behind each other.
func (q *queries) DeliveryListHeld(ctx context.Context, createdBefore time.Time, limit int) ([]*webhook.Delivery, error) {
	rows, err := q.q.Query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'held' AND created_at < $1 ORDER BY created_at LIMIT $2
		FOR UPDATE OF deliveries SKIP LOCKED`, sqlconv.MS(createdBefore), limit)
	ds, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list held deliveries: %w", err)
	}
	return ds, nil
}

// DeliveryListInterrupted locks as DeliveryListHeld does.
func (q *queries) DeliveryListInterrupted(ctx context.Context, now time.Time, limit int) ([]*webhook.Delivery, error) {
	rows, err := q.q.Query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'pending' AND test AND locked_until <= $1 ORDER BY locked_until LIMIT $2
		FOR UPDATE OF deliveries SKIP LOCKED`, sqlconv.MS(now), limit)
	ds, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list interrupted deliveries: %w", err)
	}
	return ds, nil
}

func (q *queries) DeliveryFail(ctx context.Context, as []*webhook.Attempt, now time.Time) error {
	if len(as) == 0 {
		return nil
	}
	ids, numbers := make([]string, len(as)), make([]int, len(as))
	for i, a := range as {
		ids[i], numbers[i] = a.DeliveryID, a.Number
	}
	b := &pgx.Batch{}
	queueAttempts(b, as)
	b.Queue(`UPDATE deliveries d SET state = 'failed', attempts = e.number, locked_until = NULL, updated_at = $1
		FROM unnest($2::text[], $3::int[]) AS e(id, number)
		WHERE d.id = e.id AND d.state IN ('pending', 'held')`, sqlconv.MS(now), ids, numbers)
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("fail deliveries: %w", err)
	}
	return nil
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
		s.OldestPending = sqlconv.FromMS(*oldest)
	}
	return &s, nil
}
