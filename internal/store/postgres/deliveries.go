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
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	if wake {
		q.deliveriesDue()
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

// claimDue leases, in one statement, up to n due deliveries of each webhook of the allotments ($2
// ids, $3 limits), each webhook's earliest due first, through deliveries_webhook_due. SKIP LOCKED:
// concurrent claimers take disjoint rows without waiting. The result comes with what sending needs
// from the webhook.
const claimDue = `WITH due AS MATERIALIZED (
		SELECT d.seq FROM unnest($2::text[], $3::int[]) AS h(id, n)
		CROSS JOIN LATERAL (
			SELECT seq FROM deliveries
			WHERE state = 'pending' AND NOT test AND webhook_id = h.id AND next_attempt_at <= $1
			ORDER BY next_attempt_at, seq LIMIT h.n
			FOR UPDATE SKIP LOCKED
		) d
	), claimed AS (
		UPDATE deliveries d SET next_attempt_at = $4, locked_until = $4, updated_at = $1
		FROM due WHERE d.seq = due.seq
		RETURNING d.id, d.account_id, d.webhook_id, d.event_id, d.event_type, d.state, d.attempts,
			d.retries, d.next_attempt_at, d.created_at, d.seq
	)
	SELECT c.id, c.account_id, c.webhook_id, c.event_id, c.event_type, b.body, c.state, c.attempts,
		c.retries, c.next_attempt_at, c.created_at, w.url, w.secret, w.previous_secret,
		w.previous_secret_expires_at, w.headers
	FROM claimed c JOIN webhooks w ON w.id = c.webhook_id JOIN delivery_bodies b ON b.delivery_seq = c.seq`

// takeProbes takes the probe slots of the webhooks $2 until the lease's end $3, where no lease that
// has not ended by $1 holds them, and returns the webhooks it took. SKIP LOCKED: a webhook another
// transaction is changing is simply not probed this time.
const takeProbes = `UPDATE webhooks SET probe_until = $3
	WHERE id IN (SELECT id FROM webhooks WHERE id = ANY ($2::text[]) AND probe_until <= $1
		ORDER BY id FOR UPDATE SKIP LOCKED)
	RETURNING id`

// dueWebhooks lists the webhooks with deliveries due at $2 (looking at $1 webhooks with pending
// deliveries at most): a loose index scan of deliveries_webhook_due, one probe from each webhook to
// the next, then one probe of each for its earliest due.
const dueWebhooks = `WITH RECURSIVE hooks (id, n) AS (
		(SELECT webhook_id, 1 FROM deliveries WHERE state = 'pending' AND NOT test ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND NOT test AND webhook_id > hooks.id
			ORDER BY webhook_id LIMIT 1), n + 1
		FROM hooks WHERE hooks.id IS NOT NULL AND n < $1
	)
	SELECT w.id, w.account_id, w.consecutive_failures, w.rate_limit, w.rate_tat FROM hooks h JOIN webhooks w ON w.id = h.id
	WHERE (SELECT next_attempt_at FROM deliveries WHERE state = 'pending' AND NOT test AND webhook_id = h.id
		ORDER BY next_attempt_at LIMIT 1) <= $2`

// dueWebhooksOf is dueWebhooks for the webhooks $1 only.
const dueWebhooksOf = `SELECT w.id, w.account_id, w.consecutive_failures, w.rate_limit, w.rate_tat FROM webhooks w
	WHERE w.id = ANY ($1::text[])
	AND (SELECT next_attempt_at FROM deliveries WHERE state = 'pending' AND NOT test AND webhook_id = w.id
		ORDER BY next_attempt_at LIMIT 1) <= $2`

func (q *queries) DeliveryDueWebhooks(ctx context.Context, p *store.DeliveryDueWebhooksParams) ([]*store.DueWebhook, error) {
	query, arg := dueWebhooks, any(p.Limit)
	if len(p.WebhookIDs) > 0 {
		query, arg = dueWebhooksOf, p.WebhookIDs[:min(len(p.WebhookIDs), p.Limit)]
	}
	rows, err := q.q.Query(ctx, query, arg, sqlconv.MS(p.Now))
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.DueWebhook, error) {
		d := &store.DueWebhook{}
		var failures int
		err := row.Scan(&d.WebhookID, &d.AccountID, &failures, &d.Rate.Limit, &d.Rate.TAT)
		d.BreakerOpen = webhook.Health{ConsecutiveFailures: failures}.BreakerOpen()
		d.Failing = failures > 0
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	return out, nil
}

// lockRates locks, in id order, the rows of the rate-limited webhooks $1 and returns their rates.
// SKIP LOCKED: a webhook another transaction is changing (or another claim is spending the rate of)
// is left for the next claim, and no claim waits on outcome writes that may wait on it.
const lockRates = `SELECT id, rate_limit, rate_tat FROM webhooks WHERE id = ANY ($1::text[])
	ORDER BY id FOR UPDATE SKIP LOCKED`

// spendRates sets the rate_tat of the webhooks $1 to $2, under lockRates's locks.
const spendRates = `UPDATE webhooks w SET rate_tat = v.tat FROM unnest($1::text[], $2::bigint[]) AS v(id, tat)
	WHERE w.id = v.id`

// limitRates locks the rows of the rate-limited webhooks among allotments and cuts each one's Limit
// to what its rate allows at now (0: wait, as is a webhook whose row was locked). It returns the
// rates read, by webhook.
func (q *queries) limitRates(ctx context.Context, allotments []store.ClaimAllotment, now time.Time) (map[string]store.Rate, error) {
	var limited []string
	for _, a := range allotments {
		if a.RateLimited {
			limited = append(limited, a.WebhookID)
		}
	}
	if len(limited) == 0 {
		return nil, nil
	}
	rows, err := q.q.Query(ctx, lockRates, limited)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: rates: %w", err)
	}
	rates := map[string]store.Rate{}
	var id string
	var r store.Rate
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.Limit, &r.TAT}, func() error {
		rates[id] = r
		return nil
	}); err != nil {
		return nil, fmt.Errorf("claim deliveries: rates: %w", err)
	}
	for i := range allotments {
		a := &allotments[i]
		if !a.RateLimited {
			continue
		}
		if r, ok := rates[a.WebhookID]; ok {
			a.Limit = min(a.Limit, r.Allowed(now))
		} else {
			a.Limit = 0
		}
	}
	return rates, nil
}

// spend advances the rates of the webhooks that claimed by what they claimed.
func (q *queries) spend(ctx context.Context, rates map[string]store.Rate, out []*store.ClaimedDelivery, now time.Time) error {
	if len(rates) == 0 {
		return nil
	}
	n := map[string]int{}
	for _, c := range out {
		if rates[c.WebhookID].Limit > 0 {
			n[c.WebhookID]++
		}
	}
	if len(n) == 0 {
		return nil
	}
	ids, tats := make([]string, 0, len(n)), make([]int64, 0, len(n))
	for id, k := range n {
		ids, tats = append(ids, id), append(tats, rates[id].Take(now, k))
	}
	if _, err := q.q.Exec(ctx, spendRates, ids, tats); err != nil {
		return fmt.Errorf("claim deliveries: rates: %w", err)
	}
	return nil
}

func (q *queries) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.ClaimedDelivery, error) {
	allotments := slices.Clone(p.Allotments)
	rates, err := q.limitRates(ctx, allotments, p.Now)
	if err != nil {
		return nil, err
	}
	probing := map[string]bool{}
	var probes []string
	for _, a := range allotments {
		if a.Probe && a.Limit > 0 {
			probes = append(probes, a.WebhookID)
		}
	}
	if len(probes) > 0 {
		rows, err := q.q.Query(ctx, takeProbes, sqlconv.MS(p.Now), probes, sqlconv.MS(p.LeaseUntil))
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: probes: %w", err)
		}
		taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: probes: %w", err)
		}
		for _, id := range taken {
			probing[id] = true
		}
	}
	ids, limits := make([]string, 0, len(p.Allotments)), make([]int32, 0, len(p.Allotments))
	for _, a := range allotments {
		if a.Limit <= 0 || a.Probe && !probing[a.WebhookID] {
			continue // over its rate, or another claim's attempt is the one in flight
		}
		ids, limits = append(ids, a.WebhookID), append(limits, int32(a.Limit))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.q.Query(ctx, claimDue, sqlconv.MS(p.Now), ids, limits, sqlconv.MS(p.LeaseUntil))
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	type sealed struct{ secret, prev, headers string }
	opened := map[sealed][2]string{} // each webhook's secrets are opened once per claim
	headers := map[string]map[string]string{}
	var out []*store.ClaimedDelivery
	for rows.Next() {
		c := &store.ClaimedDelivery{LeaseUntil: p.LeaseUntil}
		dest, finish := deliveryDest(&c.Delivery)
		var s sealed
		var prevExp int64
		if err := rows.Scan(append(dest, &c.URL, &s.secret, &s.prev, &prevExp, &s.headers)...); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		finish()
		c.Probe = probing[c.WebhookID]
		secrets, ok := opened[s]
		if !ok {
			if secrets[0], err = q.box.Open(s.secret); err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			if secrets[1], err = q.box.Open(s.prev); err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			opened[s] = secrets
			h, err := q.box.Open(s.headers)
			if err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			if headers[s.headers], err = sqlconv.ParseHeaders(h); err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
		}
		c.Headers = headers[s.headers]
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
	if err := q.spend(ctx, rates, out, p.Now); err != nil {
		return nil, err
	}
	if len(probing) > 0 {
		// A probe slot taken with nothing left due to claim is given back at once.
		claimed := map[string]bool{}
		for _, c := range out {
			claimed[c.WebhookID] = true
		}
		var unused []string
		for id := range probing {
			if !claimed[id] {
				unused = append(unused, id)
			}
		}
		if len(unused) > 0 {
			if _, err := q.q.Exec(ctx, `UPDATE webhooks SET probe_until = 0
				WHERE id = ANY ($1::text[]) AND probe_until = $2`, unused, sqlconv.MS(p.LeaseUntil)); err != nil {
				return nil, fmt.Errorf("claim deliveries: probes: %w", err)
			}
		}
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
	if err := q.sendBatch(ctx, b); err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	q.deliveriesDue()
	return nil
}

func (q *queries) DeliveryComplete(ctx context.Context, outcomes []*store.DeliveryOutcome, health []*webhook.HealthChange) error {
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
	queueHealth(b, outcomes, health)
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
		q.deliveriesDue()
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
