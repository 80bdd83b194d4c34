package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

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
		created[i], next[i] = sqlconv.MS(a.CreatedAt), sqlconv.MS(a.NextAttemptAt)
	}
	b.Queue(insertAttempts, ids, dlvs, hooks, accts, evs, types, numbers, succeeded, codes, msgs, bodies,
		rts, headers, created, next)
}

func (q *queries) AttemptPrune(ctx context.Context, before time.Time, limit int) (int, error) {
	// Each subquery is bounded and walks an index; SKIP LOCKED lets every node prune at once, each
	// its own rows.
	tag, err := q.q.Exec(ctx, `DELETE FROM attempts WHERE seq IN (SELECT seq FROM attempts
		WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, sqlconv.MS(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune attempts: %w", err)
	}
	if _, err := q.q.Exec(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries d
		WHERE state IN ('succeeded', 'failed', 'cancelled') AND updated_at < $1
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, sqlconv.MS(before), limit); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if _, err := q.q.Exec(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events e
		WHERE occurred_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, sqlconv.MS(before), limit); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

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
	a.CreatedAt, a.NextAttemptAt = sqlconv.FromMS(created), sqlconv.FromMS(next)
	return &a, nil
}

func (q *queries) AttemptGet(ctx context.Context, p *store.AttemptGetParams) (*webhook.Attempt, error) {
	return scanAttempt(q.q.QueryRow(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id JOIN delivery_bodies b ON b.delivery_seq = d.seq
		WHERE a.id = $1 AND a.account_id = $2 AND a.webhook_id = $3`, p.ID, p.AccountID, p.WebhookID))
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
