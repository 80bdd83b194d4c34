package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

// deliveryCols are read FROM deliveryTables.
const deliveryCols = `id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
	next_attempt_at, created_at, locked_until, test`

// deliveryTables are deliveries with their bodies.
const deliveryTables = `deliveries JOIN delivery_bodies ON delivery_seq = seq`

func scanDelivery(row sqlconv.Scanner, d *webhook.Delivery) error {
	var state string
	var next, created int64
	var locked *int64
	if err := row.Scan(&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventType, &d.Body, &state,
		&d.Attempts, &d.Retries, &next, &created, &locked, &d.Test); err != nil {
		return interpretError(err)
	}
	d.State, d.NextAttemptAt, d.CreatedAt = webhook.DeliveryState(state), sqlconv.FromMS(next), sqlconv.FromMS(created)
	d.LockedUntil = sqlconv.FromNullMS(locked)
	return nil
}

func (q *queries) DeliveryGet(ctx context.Context, accountID, id string) (*webhook.Delivery, error) {
	var d webhook.Delivery
	err := scanDelivery(q.queryRow(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE id = ? AND account_id = ?`, id, accountID), &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// DeliveryGetForUpdate is DeliveryGet: the single writer serialises writing transactions.
func (q *queries) DeliveryGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Delivery, error) {
	return q.DeliveryGet(ctx, accountID, id)
}

// retrySQL makes a delivery due (or leased to the caller) unless a live lease holds it: ?1 is now,
// ?2 the due time, ?3 the lease (NULL for none), ?4 whether to restart the schedule.
const retrySQL = `UPDATE deliveries SET
	state = CASE WHEN ?3 IS NULL AND (SELECT is_active FROM webhooks WHERE id = webhook_id) = 0
		THEN 'held' ELSE 'pending' END,
	retries = CASE WHEN ?4 THEN 0 ELSE retries END,
	next_attempt_at = ?2, locked_until = ?3, updated_at = ?1
	WHERE id = ?5 AND account_id = ?6 AND state IN ('pending', 'succeeded', 'failed')
		AND (locked_until IS NULL OR locked_until <= ?1)`

func (q *queries) DeliveryRetry(ctx context.Context, p *store.DeliveryRetryParams) (bool, error) {
	due := p.Now
	if !p.LeaseUntil.IsZero() {
		due = p.LeaseUntil
	}
	res, err := q.exec(ctx, retrySQL, sqlconv.MS(p.Now), sqlconv.MS(due), sqlconv.NullMS(p.LeaseUntil), p.FreshSchedule,
		p.ID, p.AccountID)
	if err != nil {
		return false, fmt.Errorf("retry delivery: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (q *queries) DeliveryListHeld(ctx context.Context, createdBefore time.Time, limit int) ([]*webhook.Delivery, error) {
	rows, err := q.query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'held' AND created_at < ? ORDER BY created_at LIMIT ?`, sqlconv.MS(createdBefore), limit)
	ds, err := collectErr(rows, err, newDelivery)
	if err != nil {
		return nil, fmt.Errorf("list held deliveries: %w", err)
	}
	return ds, nil
}

func (q *queries) DeliveryListInterrupted(ctx context.Context, now time.Time, limit int) ([]*webhook.Delivery, error) {
	rows, err := q.query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'pending' AND test = 1 AND locked_until <= ? ORDER BY locked_until LIMIT ?`, sqlconv.MS(now), limit)
	ds, err := collectErr(rows, err, newDelivery)
	if err != nil {
		return nil, fmt.Errorf("list interrupted deliveries: %w", err)
	}
	return ds, nil
}

func newDelivery(row sqlconv.Scanner) (*webhook.Delivery, error) {
	d := &webhook.Delivery{}
	return d, scanDelivery(row, d)
}

// failDeliveries fails deliveries at ?1 that are still pending or held; each row is (id, attempts).
var failDeliveries = newBatchStmt(2, `UPDATE deliveries SET state = 'failed', attempts = v.column2,
	locked_until = NULL, updated_at = ?1
	FROM (VALUES {{rows}}) AS v WHERE deliveries.id = v.column1 AND deliveries.state IN ('pending', 'held')`)

func (q *queries) DeliveryFail(ctx context.Context, as []*webhook.Attempt, now time.Time) error {
	if err := q.insertAttempts(ctx, as); err != nil {
		return err
	}
	if err := failDeliveries.exec(ctx, q, len(as), []any{sqlconv.MS(now)}, func(args []any, i int) []any {
		return append(args, as[i].DeliveryID, as[i].Number)
	}); err != nil {
		return fmt.Errorf("fail deliveries: %w", err)
	}
	return nil
}

func (q *queries) QueueStats(ctx context.Context) (*store.QueueStats, error) {
	var s store.QueueStats
	var oldest sql.NullInt64
	err := q.queryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM deliveries
		WHERE state IN ('pending', 'held')`).Scan(&s.Depth, &oldest)
	if err != nil {
		return nil, err
	}
	s.OldestPending = sqlconv.FromMS(oldest.Int64)
	return &s, nil
}

// From here on, the queue's hot path: every statement runs over a whole batch of rows at once.

// insertDeliveries queues deliveries; event_seq comes from event_id, and a delivery of no event
// fails on its NOT NULL.
var insertDeliveries = newBatchStmt(13, `INSERT INTO deliveries (id, account_id, webhook_id, event_id,
	event_seq, event_type, state, attempts, retries, next_attempt_at, locked_until, created_at, updated_at, test)
	SELECT column1, column2, column3, column4, (SELECT seq FROM events WHERE events.id = column4), column5,
		column6, column7, column8, column9, column10, column11, column12, column13
	FROM (VALUES {{rows}})`)

// insertBodies stores the bodies of deliveries just inserted; each row is (delivery id, body).
var insertBodies = newBatchStmt(2, `INSERT INTO delivery_bodies (delivery_seq, body)
	SELECT (SELECT seq FROM deliveries WHERE deliveries.id = column1), column2 FROM (VALUES {{rows}})`)

func (q *queries) DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error {
	err := insertDeliveries.exec(ctx, q, len(ds), nil, func(args []any, i int) []any {
		d := ds[i]
		return append(args, d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType, string(d.State),
			d.Attempts, d.Retries, sqlconv.MS(d.NextAttemptAt), sqlconv.NullMS(d.LockedUntil), sqlconv.MS(d.CreatedAt), sqlconv.MS(d.CreatedAt), d.Test)
	})
	if err == nil {
		err = insertBodies.exec(ctx, q, len(ds), nil, func(args []any, i int) []any {
			return append(args, ds[i].ID, ds[i].Body)
		})
	}
	if err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// A claim moves next_attempt_at to the end of the lease, so a claimed delivery leaves the due range
// until its lease expires. In each claim statement ?1 is the lease's end and ?2 is now.
const claimSet = `UPDATE deliveries SET next_attempt_at = ?1, locked_until = ?1, updated_at = ?2 WHERE `

// claimedCols are what a claim returns: deliveryCols but the body, which readBodies reads next from
// delivery_bodies (RETURNING sees only the updated table), and the seq to read it by.
const claimedCols = `id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
	next_attempt_at, created_at, seq`

// dueWebhooksSQL lists the webhooks with deliveries due at ?2 (looking at ?1 webhooks with pending
// deliveries at most): one step of deliveries_webhook_due from one webhook to the next, however many
// deliveries each has, then one probe of it for the webhook's earliest due.
const dueWebhooksSQL = `WITH RECURSIVE hooks (id) AS (
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND test = 0 ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND test = 0 AND webhook_id > hooks.id
			ORDER BY webhook_id LIMIT 1)
		FROM hooks WHERE hooks.id IS NOT NULL LIMIT ?1)
	SELECT w.id, w.account_id, w.consecutive_failures, w.rate_limit, w.rate_tat FROM hooks h JOIN webhooks w ON w.id = h.id
	WHERE (SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND test = 0 AND webhook_id = h.id) <= ?2`

// claimWebhookSQL claims the first ?4 due deliveries of webhook ?3, from deliveries_webhook_due.
const claimWebhookSQL = claimSet + `seq IN (SELECT seq FROM deliveries
	WHERE state = 'pending' AND test = 0 AND webhook_id = ?3 AND next_attempt_at <= ?2
	ORDER BY next_attempt_at, seq LIMIT ?4)
	RETURNING ` + claimedCols

// takeProbeSQL takes webhook ?3's probe slot until the lease's end ?1, unless a lease that has not
// ended by ?2 holds it.
const takeProbeSQL = `UPDATE webhooks SET probe_until = ?1 WHERE id = ?3 AND probe_until <= ?2`

// dueWebhooksOfSQL is dueWebhooksSQL for the webhooks of the JSON array ?1 only.
const dueWebhooksOfSQL = `SELECT w.id, w.account_id, w.consecutive_failures, w.rate_limit, w.rate_tat FROM webhooks w
	WHERE w.id IN (SELECT value FROM json_each(?1))
	AND (SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND test = 0 AND webhook_id = w.id) <= ?2`

func (q *queries) DeliveryDueWebhooks(ctx context.Context, p *store.DeliveryDueWebhooksParams) ([]*store.DueWebhook, error) {
	query, arg := dueWebhooksSQL, any(p.Limit)
	if len(p.WebhookIDs) > 0 {
		ids, err := json.Marshal(p.WebhookIDs[:min(len(p.WebhookIDs), p.Limit)])
		if err != nil {
			return nil, fmt.Errorf("list due webhooks: %w", err)
		}
		query, arg = dueWebhooksOfSQL, string(ids)
	}
	rows, err := q.query(ctx, query, arg, sqlconv.MS(p.Now))
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	defer rows.Close()
	var out []*store.DueWebhook
	for rows.Next() {
		d := &store.DueWebhook{}
		var failures int
		if err := rows.Scan(&d.WebhookID, &d.AccountID, &failures, &d.Rate.Limit, &d.Rate.TAT); err != nil {
			return nil, fmt.Errorf("list due webhooks: %w", err)
		}
		d.BreakerOpen = webhook.Health{ConsecutiveFailures: failures}.BreakerOpen()
		d.Failing = failures > 0
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	return out, nil
}

func (q *queries) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.ClaimedDelivery, error) {
	var out []*store.ClaimedDelivery
	bySeq := map[int64]*store.ClaimedDelivery{}
	for _, a := range p.Allotments {
		var rate store.Rate
		if a.RateLimited {
			// The single writer serialises claims: what is read here is what every process spent.
			if err := q.queryRow(ctx, `SELECT rate_limit, rate_tat FROM webhooks WHERE id = ?`, a.WebhookID).
				Scan(&rate.Limit, &rate.TAT); err != nil {
				return nil, fmt.Errorf("claim deliveries: rate of %s: %w", a.WebhookID, err)
			}
			if a.Limit = min(a.Limit, rate.Allowed(p.Now)); a.Limit == 0 {
				continue // over its rate: its deliveries wait
			}
		}
		if a.Probe {
			res, err := q.exec(ctx, takeProbeSQL, sqlconv.MS(p.LeaseUntil), sqlconv.MS(p.Now), a.WebhookID)
			if err != nil {
				return nil, fmt.Errorf("claim deliveries: probe %s: %w", a.WebhookID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // another claim's attempt is the one in flight
			}
		}
		claimedBefore := len(out)
		rows, err := q.query(ctx, claimWebhookSQL, sqlconv.MS(p.LeaseUntil), sqlconv.MS(p.Now), a.WebhookID, a.Limit)
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		for rows.Next() {
			c := &store.ClaimedDelivery{LeaseUntil: p.LeaseUntil, Probe: a.Probe}
			var state string
			var next, created, seq int64
			if err := rows.Scan(&c.ID, &c.AccountID, &c.WebhookID, &c.EventID, &c.EventType, &state,
				&c.Attempts, &c.Retries, &next, &created, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("claim deliveries: %w", err)
			}
			c.State, c.NextAttemptAt, c.CreatedAt = webhook.DeliveryState(state), sqlconv.FromMS(next), sqlconv.FromMS(created)
			out = append(out, c)
			bySeq[seq] = c
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if n := len(out) - claimedBefore; rate.Limit > 0 && n > 0 {
			if _, err := q.exec(ctx, `UPDATE webhooks SET rate_tat = ? WHERE id = ?`, rate.Take(p.Now, n), a.WebhookID); err != nil {
				return nil, fmt.Errorf("claim deliveries: rate of %s: %w", a.WebhookID, err)
			}
		}
		if a.Probe && len(out) == claimedBefore {
			// Nothing left due: give the probe slot back at once.
			if _, err := q.exec(ctx, freeProbeSQL, a.WebhookID, sqlconv.MS(p.LeaseUntil)); err != nil {
				return nil, fmt.Errorf("claim deliveries: probe %s: %w", a.WebhookID, err)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := q.readBodies(ctx, bySeq); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	// One lookup per distinct webhook, not per delivery.
	hooks := map[string]*webhook.Webhook{}
	for _, c := range out {
		w, ok := hooks[c.WebhookID]
		if !ok {
			var err error
			w, err = q.scanWebhook(q.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, c.WebhookID))
			if err != nil {
				return nil, fmt.Errorf("claim deliveries: webhook %s: %w", c.WebhookID, err)
			}
			hooks[c.WebhookID] = w
		}
		c.URL, c.Secret, c.Headers = w.URL, w.Secret, w.Headers
		if secrets := w.SigningSecrets(p.Now); len(secrets) > 1 {
			c.OldSecret = secrets[1]
		}
	}
	return out, nil
}

// readBodies fills in the bodies of claimed deliveries, by seq.
func (q *queries) readBodies(ctx context.Context, bySeq map[int64]*store.ClaimedDelivery) error {
	seqs := make([]int64, 0, len(bySeq))
	for seq := range bySeq {
		seqs = append(seqs, seq)
	}
	rows, err := q.query(ctx, `SELECT delivery_seq, body FROM delivery_bodies
		WHERE delivery_seq IN (SELECT value FROM json_each(?))`, int64sJSON(seqs))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return err
		}
		bySeq[seq].Body = body
	}
	return rows.Err()
}

// int64sJSON returns vs as a JSON array.
func int64sJSON(vs []int64) string {
	b := make([]byte, 0, 2+len(vs)*8)
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(append(b, ']'))
}

// releaseDeliveries makes leased deliveries due at ?1; each row is (id, lease). It gives claimed deliveries back; one whose webhook was paused meanwhile is held,
// as a retry would be.
var releaseDeliveries = newBatchStmt(2, `UPDATE deliveries SET next_attempt_at = ?1, locked_until = NULL,
	updated_at = ?1,
	state = CASE WHEN (SELECT is_active FROM webhooks WHERE webhooks.id = deliveries.webhook_id) = 0
		THEN 'held' ELSE 'pending' END
	FROM (VALUES {{rows}}) AS v
	WHERE deliveries.id = v.column1 AND deliveries.state = 'pending' AND deliveries.locked_until = v.column2`)

func (q *queries) DeliveryRelease(ctx context.Context, cs []*store.ClaimedDelivery, now time.Time) error {
	err := releaseDeliveries.exec(ctx, q, len(cs), []any{sqlconv.MS(now)}, func(args []any, i int) []any {
		return append(args, cs[i].ID, sqlconv.MS(cs[i].LeaseUntil))
	})
	if err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}

// completeDeliveries moves each delivery on from its attempt; each row is (id, lease, state,
// attempts, retries, next_attempt_at, updated_at). Only the claim that made the attempt moves the
// delivery: it must still be pending under that lease. A retry of a webhook paused meanwhile is held
// instead of pending.
var completeDeliveries = newBatchStmt(7, `UPDATE deliveries SET
	state = CASE WHEN v.column3 = 'pending'
		AND (SELECT is_active FROM webhooks WHERE webhooks.id = deliveries.webhook_id) = 0
		THEN 'held' ELSE v.column3 END,
	attempts = v.column4, retries = v.column5, next_attempt_at = v.column6, locked_until = NULL,
	updated_at = v.column7
	FROM (VALUES {{rows}}) AS v
	WHERE deliveries.id = v.column1 AND deliveries.state = 'pending' AND deliveries.locked_until = v.column2`)

func (q *queries) DeliveryComplete(ctx context.Context, outcomes []*store.DeliveryOutcome, health []*webhook.HealthChange) error {
	as := make([]*webhook.Attempt, len(outcomes))
	for i, o := range outcomes {
		as[i] = o.Attempt
	}
	if err := q.insertAttempts(ctx, as); err != nil {
		return err
	}
	moves := firstPerClaim(outcomes)
	err := completeDeliveries.exec(ctx, q, len(moves), nil, func(args []any, i int) []any {
		o := moves[i]
		return append(args, o.Attempt.DeliveryID, sqlconv.MS(o.LeaseUntil), string(o.State), o.Attempt.Number, o.Retries,
			sqlconv.MS(o.NextAttemptAt), sqlconv.MS(o.Attempt.CreatedAt))
	})
	if err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
	if err := q.applyHealth(ctx, outcomes, health); err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
	return nil
}

// firstPerClaim drops every outcome but the first of the same delivery and lease. One at a time, the
// first would move the delivery and end the lease, and the others would find it gone; in one
// statement, which of them moved it would be arbitrary.
func firstPerClaim(outcomes []*store.DeliveryOutcome) []*store.DeliveryOutcome {
	if len(outcomes) < 2 {
		return outcomes
	}
	type claim struct {
		id    string
		lease int64
	}
	seen := make(map[claim]struct{}, len(outcomes))
	out := make([]*store.DeliveryOutcome, 0, len(outcomes))
	for _, o := range outcomes {
		k := claim{o.Attempt.DeliveryID, sqlconv.MS(o.LeaseUntil)}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, o)
		}
	}
	return out
}
