package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

// Retention pruning: each statement deletes a bounded batch found through an index
// (attempts_created, deliveries_finished, events_occurred), never by scanning a table.
const (
	pruneAttemptsSQL = `DELETE FROM attempts WHERE seq IN
		(SELECT seq FROM attempts WHERE created_at < ? ORDER BY created_at LIMIT ?)`
	pruneDeliveriesSQL = `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries d
		WHERE state IN ('succeeded', 'failed', 'cancelled') AND updated_at < ?
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_seq = d.seq) LIMIT ?)`
	pruneEventsSQL = `DELETE FROM events WHERE seq IN (SELECT seq FROM events e
		WHERE occurred_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq) LIMIT ?)`
)

func (q *queries) AttemptPrune(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := q.exec(ctx, pruneAttemptsSQL, sqlconv.MS(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune attempts: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := q.exec(ctx, pruneDeliveriesSQL, sqlconv.MS(before), limit); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if _, err := q.exec(ctx, pruneEventsSQL, sqlconv.MS(before), limit); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(n), nil
}

const attemptCols = `a.id, a.delivery_id, a.webhook_id, a.account_id, a.event_id, a.event_type, a.number,
	a.succeeded, a.status_code, a.error, a.response_body, a.response_time_ms, a.request_headers,
	a.created_at, a.next_attempt_at, b.body`

func scanAttempt(row sqlconv.Scanner) (*webhook.Attempt, error) {
	var a webhook.Attempt
	var rt, created, next int64
	var headers string
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.WebhookID, &a.AccountID, &a.EventID, &a.EventType, &a.Number,
		&a.Succeeded, &a.StatusCode, &a.Error, &a.ResponseBody, &rt, &headers, &created, &next, &a.Payload); err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal([]byte(headers), &a.RequestHeaders); err != nil {
		return nil, fmt.Errorf("attempt %s: headers: %w", a.ID, err)
	}
	a.ResponseTime = time.Duration(rt) * time.Millisecond
	a.CreatedAt, a.NextAttemptAt = sqlconv.FromMS(created), sqlconv.FromMS(next)
	return &a, nil
}

func (q *queries) AttemptGet(ctx context.Context, p *store.AttemptGetParams) (*webhook.Attempt, error) {
	return scanAttempt(q.queryRow(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN delivery_bodies b ON b.delivery_seq = a.delivery_seq
		WHERE a.id = ? AND a.account_id = ? AND a.webhook_id = ?`, p.ID, p.AccountID, p.WebhookID))
}

func (q *queries) AttemptList(ctx context.Context, p *store.AttemptListParams) ([]*webhook.Attempt, error) {
	after, err := q.afterSeq(ctx, "attempts", &p.ListParams, " AND webhook_id = ?", p.WebhookID)
	if err != nil {
		return nil, err
	}
	where := `a.account_id = ? AND a.webhook_id = ? AND a.seq < ?`
	args := []any{p.AccountID, p.WebhookID, after}
	if p.Succeeded != nil {
		where += ` AND a.succeeded = ?`
		args = append(args, *p.Succeeded)
	}
	if p.EventType != "" {
		where += ` AND a.event_type = ?`
		args = append(args, p.EventType)
	}
	rows, err := q.query(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN delivery_bodies b ON b.delivery_seq = a.delivery_seq
		WHERE `+where+` ORDER BY a.seq DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAttempt)
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
			sqlconv.MS(a.CreatedAt), sqlconv.MS(a.NextAttemptAt))
	})
	if err != nil {
		return fmt.Errorf("insert attempts: %w", err)
	}
	return nil
}
