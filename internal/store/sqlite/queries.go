package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// dbtx is what queries run on: the read pool or the group's transaction.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements store.Tx over db. Bound to the read pool, only its Reader methods work.
type queries struct {
	db    dbtx    // the read pool or the group's transaction
	tx    *sql.Tx // the group's transaction; nil on the read pool
	stmts *stmtCache
	// inTx holds the statements of stmts bound to tx, each bound once per group.
	inTx map[*sql.Stmt]*sql.Stmt
	box  *secretbox.Box
}

// stmt returns the prepared statement of query, bound to the transaction if there is one, or nil
// when query must run unprepared.
func (q *queries) stmt(ctx context.Context, query string) *sql.Stmt {
	s := q.stmts.get(ctx, query)
	if s == nil || q.tx == nil {
		return s
	}
	if t, ok := q.inTx[s]; ok {
		return t
	}
	// Not the caller's ctx: the bound statement serves every caller of the group. The transaction
	// holds the connection, so this never waits, and on the one connection the statement is already
	// prepared: database/sql reuses it.
	t := q.tx.StmtContext(context.Background(), s)
	if q.inTx == nil {
		q.inTx = map[*sql.Stmt]*sql.Stmt{}
	}
	q.inTx[s] = t
	return t
}

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.db.ExecContext(ctx, query, args...)
}

func (q *queries) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.db.QueryContext(ctx, query, args...)
}

func (q *queries) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.db.QueryRowContext(ctx, query, args...)
}

var _ store.Tx = (*queries)(nil)

// interpretError maps driver errors to ours; it is the only place that knows them.
func interpretError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
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

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// --- accounts and keys ---

func (q *queries) AccountGetByKeyHash(ctx context.Context, hash []byte) (*account.Account, error) {
	var a account.Account
	var created int64
	err := q.queryRow(ctx, `SELECT a.id, a.name, a.created_at FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`, hash).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	_, err := q.exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, ms(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	var a account.Account
	var created int64
	err = q.queryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = ?`, name).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error {
	_, err := q.exec(ctx, `INSERT INTO api_keys (account_id, key_hash, created_at) VALUES (?, ?, ?)`,
		accountID, hash, ms(now))
	return err
}

// --- webhooks ---

const webhookCols = `id, account_id, name, url, events, is_active, secret, previous_secret,
	previous_secret_expires_at, created_at, updated_at`

func (q *queries) scanWebhook(row interface{ Scan(...any) error }) (*webhook.Webhook, error) {
	var w webhook.Webhook
	var events, secret, prev string
	var prevExp, created, updated int64
	if err := row.Scan(&w.ID, &w.AccountID, &w.Name, &w.URL, &events, &w.IsActive, &secret, &prev,
		&prevExp, &created, &updated); err != nil {
		return nil, interpretError(err)
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", w.ID, err)
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

func (q *queries) WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.scanWebhook(q.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, id, accountID))
}

// afterSeq returns the seq below which the next page starts: the seq of the object named by p.After.
func (q *queries) afterSeq(ctx context.Context, table string, p *store.ListParams, extra string, args ...any) (int64, error) {
	if p.After == "" {
		return 1<<63 - 1, nil
	}
	var seq int64
	err := q.queryRow(ctx, `SELECT seq FROM `+table+` WHERE id = ? AND account_id = ?`+extra,
		append([]any{p.After, p.AccountID}, args...)...).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errs.Field("cursor", "is not a cursor of this list")
	}
	return seq, err
}

func (q *queries) WebhookList(ctx context.Context, p *store.ListParams) ([]*webhook.Webhook, error) {
	after, err := q.afterSeq(ctx, "webhooks", p, "")
	if err != nil {
		return nil, err
	}
	rows, err := q.query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE account_id = ? AND deleted_at IS NULL AND seq < ? ORDER BY seq DESC LIMIT ?`,
		p.AccountID, after, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, q.scanWebhook)
}

func (q *queries) WebhookListSubscribed(ctx context.Context, accountID, eventType string) ([]*webhook.Webhook, error) {
	rows, err := q.query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE account_id = ? AND deleted_at IS NULL AND EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?)
		ORDER BY seq`, accountID, eventType)
	if err != nil {
		return nil, err
	}
	return collect(rows, q.scanWebhook)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
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

func (q *queries) WebhookInsert(ctx context.Context, w *webhook.Webhook) error {
	events, _ := json.Marshal(w.Events)
	_, err := q.exec(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		w.ID, w.AccountID, w.Name, w.URL, string(events), w.IsActive, q.box.Seal(w.Secret),
		q.box.Seal(w.PreviousSecret), ms(w.PreviousSecretExpiresAt), ms(w.CreatedAt), ms(w.UpdatedAt))
	return err
}

func (q *queries) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	events, _ := json.Marshal(w.Events)
	res, err := q.exec(ctx, `UPDATE webhooks SET name = ?, url = ?, events = ?, is_active = ?,
		secret = ?, previous_secret = ?, previous_secret_expires_at = ?, updated_at = ?
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`,
		w.Name, w.URL, string(events), w.IsActive, q.box.Seal(w.Secret), q.box.Seal(w.PreviousSecret),
		ms(w.PreviousSecretExpiresAt), ms(w.UpdatedAt), w.ID, w.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	if w.IsActive {
		// Held deliveries keep their due time, so they are released oldest first.
		_, err = q.exec(ctx, `UPDATE deliveries SET state = 'pending', updated_at = ?
			WHERE webhook_id = ? AND state = 'held'`, ms(w.UpdatedAt), w.ID)
	} else {
		// Deliveries in flight (leased) finish their attempt; their outcome holds them.
		_, err = q.exec(ctx, `UPDATE deliveries SET state = 'held', updated_at = ?
			WHERE webhook_id = ? AND state = 'pending' AND (locked_until IS NULL OR locked_until <= ?)`,
			ms(w.UpdatedAt), w.ID, ms(w.UpdatedAt))
	}
	return err
}

func (q *queries) WebhookDelete(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := q.exec(ctx, `UPDATE webhooks SET deleted_at = ?, updated_at = ?
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, ms(now), ms(now), id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	// One statement per state, so each walks its partial index (deliveries_webhook_due,
	// deliveries_webhook_held) rather than the table.
	for _, state := range []string{"pending", "held"} {
		if _, err := q.exec(ctx, `UPDATE deliveries SET state = 'cancelled', locked_until = NULL, updated_at = ?
			WHERE webhook_id = ? AND state = '`+state+`'`, ms(now), id); err != nil {
			return err
		}
	}
	return nil
}

// --- events and deliveries ---

func (q *queries) EventInsert(ctx context.Context, e *webhook.Event) error {
	_, err := q.exec(ctx, `INSERT INTO events (id, account_id, type, occurred_at, data) VALUES (?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, e.Type, ms(e.OccurredAt), eventData(e))
	return err
}

// deliveryCols are read FROM deliveryTables.
const deliveryCols = `id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
	next_attempt_at, created_at`

// deliveryTables are deliveries with their bodies.
const deliveryTables = `deliveries JOIN delivery_bodies ON delivery_seq = seq`

func scanDelivery(row interface{ Scan(...any) error }, d *webhook.Delivery) error {
	var state string
	var next, created int64
	if err := row.Scan(&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.EventType, &d.Body, &state,
		&d.Attempts, &d.Retries, &next, &created); err != nil {
		return interpretError(err)
	}
	d.State, d.NextAttemptAt, d.CreatedAt = webhook.DeliveryState(state), fromMS(next), fromMS(created)
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

func (q *queries) DeliveryResend(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := q.exec(ctx, `UPDATE deliveries SET
		state = CASE WHEN (SELECT is_active FROM webhooks WHERE id = webhook_id) = 0 THEN 'held' ELSE 'pending' END,
		retries = 0, next_attempt_at = ?, locked_until = NULL, updated_at = ?
		WHERE id = ? AND account_id = ? AND state IN ('succeeded', 'failed')`, ms(now), ms(now), id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	d, err := q.DeliveryGet(ctx, accountID, id)
	if err != nil {
		return err
	}
	return errs.Errorf(errs.Conflict, "The delivery is still %s; it can be resent once it has succeeded or failed.", d.State)
}

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
	res, err := q.exec(ctx, pruneAttemptsSQL, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune attempts: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := q.exec(ctx, pruneDeliveriesSQL, ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if _, err := q.exec(ctx, pruneEventsSQL, ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(n), nil
}

// --- attempts ---

const attemptCols = `a.id, a.delivery_id, a.webhook_id, a.account_id, a.event_id, a.event_type, a.number,
	a.succeeded, a.status_code, a.error, a.response_body, a.response_time_ms, a.request_headers,
	a.created_at, a.next_attempt_at, b.body`

func scanAttempt(row interface{ Scan(...any) error }) (*webhook.Attempt, error) {
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
	a.CreatedAt, a.NextAttemptAt = fromMS(created), fromMS(next)
	return &a, nil
}

func (q *queries) AttemptGet(ctx context.Context, accountID, webhookID, id string) (*webhook.Attempt, error) {
	return scanAttempt(q.queryRow(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN delivery_bodies b ON b.delivery_seq = a.delivery_seq
		WHERE a.id = ? AND a.account_id = ? AND a.webhook_id = ?`, id, accountID, webhookID))
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

func (q *queries) QueueStats(ctx context.Context) (*store.QueueStats, error) {
	var s store.QueueStats
	var oldest sql.NullInt64
	err := q.queryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM deliveries
		WHERE state IN ('pending', 'held')`).Scan(&s.Depth, &oldest)
	if err != nil {
		return nil, err
	}
	s.OldestPending = fromMS(oldest.Int64)
	return &s, nil
}

// --- settings ---

func (q *queries) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := q.queryRow(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (q *queries) SettingSet(ctx context.Context, name, value string) error {
	_, err := q.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
