package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// The queue's hot path: every statement here runs over a whole batch of rows at once.

// insertDeliveries queues deliveries; event_seq comes from event_id, and a delivery of no event
// fails on its NOT NULL.
var insertDeliveries = newBatchStmt(12, `INSERT INTO deliveries (id, account_id, webhook_id, event_id,
	event_seq, event_type, state, attempts, retries, next_attempt_at, locked_until, created_at, updated_at)
	SELECT column1, column2, column3, column4, (SELECT seq FROM events WHERE events.id = column4), column5,
		column6, column7, column8, column9, column10, column11, column12
	FROM (VALUES {{rows}})`)

// insertBodies stores the bodies of deliveries just inserted; each row is (delivery id, body).
var insertBodies = newBatchStmt(2, `INSERT INTO delivery_bodies (delivery_seq, body)
	SELECT (SELECT seq FROM deliveries WHERE deliveries.id = column1), column2 FROM (VALUES {{rows}})`)

func (q *queries) DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error {
	err := insertDeliveries.exec(ctx, q, len(ds), nil, func(args []any, i int) []any {
		d := ds[i]
		return append(args, d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType, string(d.State),
			d.Attempts, d.Retries, ms(d.NextAttemptAt), nullMS(d.LockedUntil), ms(d.CreatedAt), ms(d.CreatedAt))
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
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' ORDER BY webhook_id LIMIT 1)
		UNION ALL
		SELECT (SELECT webhook_id FROM deliveries WHERE state = 'pending' AND webhook_id > hooks.id
			ORDER BY webhook_id LIMIT 1)
		FROM hooks WHERE hooks.id IS NOT NULL LIMIT ?1)
	SELECT w.id, w.account_id, w.consecutive_failures FROM hooks h JOIN webhooks w ON w.id = h.id
	WHERE (SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND webhook_id = h.id) <= ?2`

// claimWebhookSQL claims the first ?4 due deliveries of webhook ?3, from deliveries_webhook_due.
const claimWebhookSQL = claimSet + `seq IN (SELECT seq FROM deliveries
	WHERE state = 'pending' AND webhook_id = ?3 AND next_attempt_at <= ?2
	ORDER BY next_attempt_at, seq LIMIT ?4)
	RETURNING ` + claimedCols

// takeProbeSQL takes webhook ?3's probe slot until the lease's end ?1, unless a lease that has not
// ended by ?2 holds it.
const takeProbeSQL = `UPDATE webhooks SET probe_until = ?1 WHERE id = ?3 AND probe_until <= ?2`

func (q *queries) DeliveryDueWebhooks(ctx context.Context, p *store.DeliveryDueWebhooksParams) ([]*store.DueWebhook, error) {
	rows, err := q.query(ctx, dueWebhooksSQL, p.Limit, ms(p.Now))
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	defer rows.Close()
	var out []*store.DueWebhook
	for rows.Next() {
		d := &store.DueWebhook{}
		var failures int
		if err := rows.Scan(&d.WebhookID, &d.AccountID, &failures); err != nil {
			return nil, fmt.Errorf("list due webhooks: %w", err)
		}
		d.BreakerOpen = webhook.Health{ConsecutiveFailures: failures}.BreakerOpen()
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
		if a.Probe {
			res, err := q.exec(ctx, takeProbeSQL, ms(p.LeaseUntil), ms(p.Now), a.WebhookID)
			if err != nil {
				return nil, fmt.Errorf("claim deliveries: probe %s: %w", a.WebhookID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // another claim's attempt is the one in flight
			}
		}
		claimedBefore := len(out)
		rows, err := q.query(ctx, claimWebhookSQL, ms(p.LeaseUntil), ms(p.Now), a.WebhookID, a.Limit)
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
			c.State, c.NextAttemptAt, c.CreatedAt = webhook.DeliveryState(state), fromMS(next), fromMS(created)
			out = append(out, c)
			bySeq[seq] = c
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if a.Probe && len(out) == claimedBefore {
			// Nothing left due: give the probe slot back at once.
			if _, err := q.exec(ctx, freeProbeSQL, a.WebhookID, ms(p.LeaseUntil)); err != nil {
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
		c.URL, c.Secret = w.URL, w.Secret
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

// releaseDeliveries makes leased deliveries due at ?1; each row is (id, lease).
// releaseDeliveries gives claimed deliveries back; one whose webhook was paused meanwhile is held,
// as a retry would be.
var releaseDeliveries = newBatchStmt(2, `UPDATE deliveries SET next_attempt_at = ?1, locked_until = NULL,
	updated_at = ?1,
	state = CASE WHEN (SELECT is_active FROM webhooks WHERE webhooks.id = deliveries.webhook_id) = 0
		THEN 'held' ELSE 'pending' END
	FROM (VALUES {{rows}}) AS v
	WHERE deliveries.id = v.column1 AND deliveries.state = 'pending' AND deliveries.locked_until = v.column2`)

func (q *queries) DeliveryRelease(ctx context.Context, cs []*store.ClaimedDelivery, now time.Time) error {
	err := releaseDeliveries.exec(ctx, q, len(cs), []any{ms(now)}, func(args []any, i int) []any {
		return append(args, cs[i].ID, ms(cs[i].LeaseUntil))
	})
	if err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}

// insertAttempts logs attempts; delivery_seq comes from delivery_id, and an attempt of no delivery
// fails on its NOT NULL.
var insertAttempts = newBatchStmt(15, `INSERT INTO attempts (id, delivery_id, delivery_seq, webhook_id,
	account_id, event_id, event_type, number, succeeded, status_code, error, response_body,
	response_time_ms, request_headers, created_at, next_attempt_at)
	SELECT column1, column2, (SELECT seq FROM deliveries WHERE deliveries.id = column2), column3, column4,
		column5, column6, column7, column8, column9, column10, column11, column12, column13, column14,
		column15
	FROM (VALUES {{rows}})`)

func (q *queries) insertAttempts(ctx context.Context, as []*webhook.Attempt) error {
	err := insertAttempts.exec(ctx, q, len(as), nil, func(args []any, i int) []any {
		a := as[i]
		return append(args, a.ID, a.DeliveryID, a.WebhookID, a.AccountID, a.EventID, a.EventType, a.Number,
			a.Succeeded, a.StatusCode, a.Error, a.ResponseBody, a.ResponseTime.Milliseconds(), headersJSON(a.RequestHeaders),
			ms(a.CreatedAt), ms(a.NextAttemptAt))
	})
	if err != nil {
		return fmt.Errorf("insert attempts: %w", err)
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
		return append(args, o.Attempt.DeliveryID, ms(o.LeaseUntil), string(o.State), o.Attempt.Number, o.Retries,
			ms(o.NextAttemptAt), ms(o.Attempt.CreatedAt))
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
		k := claim{o.Attempt.DeliveryID, ms(o.LeaseUntil)}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, o)
		}
	}
	return out
}

// ExpiredWhilePaused is the error logged for a held delivery dropped after the log retention.
const ExpiredWhilePaused = "expired while paused"

// failDeliveries fails deliveries at ?1; each row is (id, attempts).
var failDeliveries = newBatchStmt(2, `UPDATE deliveries SET state = 'failed', attempts = v.column2, updated_at = ?1
	FROM (VALUES {{rows}}) AS v WHERE deliveries.id = v.column1`)

func (q *queries) DeliveryExpireHeld(ctx context.Context, olderThan, now time.Time, limit int) (int, error) {
	rows, err := q.query(ctx, `SELECT `+deliveryCols+` FROM `+deliveryTables+`
		WHERE state = 'held' AND created_at < ? ORDER BY created_at LIMIT ?`, ms(olderThan), limit)
	if err != nil {
		return 0, err
	}
	var expired []*webhook.Delivery
	for rows.Next() {
		d := &webhook.Delivery{}
		if err := scanDelivery(rows, d); err != nil {
			rows.Close()
			return 0, err
		}
		expired = append(expired, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	as := make([]*webhook.Attempt, len(expired))
	for i, d := range expired {
		as[i] = &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: d.WebhookID,
			AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType, Number: d.Attempts + 1,
			Error: ExpiredWhilePaused, RequestHeaders: map[string]string{}, CreatedAt: now}
	}
	if err := q.insertAttempts(ctx, as); err != nil {
		return 0, err
	}
	if err := failDeliveries.exec(ctx, q, len(as), []any{ms(now)}, func(args []any, i int) []any {
		return append(args, as[i].DeliveryID, as[i].Number)
	}); err != nil {
		return 0, fmt.Errorf("expire held deliveries: %w", err)
	}
	return len(expired), nil
}
