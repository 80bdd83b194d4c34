package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// queries implements store.Tx over q. Bound to the read pool, only its Reader methods work.
type queries struct {
	q   dbtx
	box *secretbox.Box
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
	err := q.q.QueryRowContext(ctx, `SELECT a.id, a.name, a.created_at FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`, hash).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	_, err := q.q.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, ms(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	var a account.Account
	var created int64
	err = q.q.QueryRowContext(ctx, `SELECT id, name, created_at FROM accounts WHERE name = ?`, name).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = fromMS(created)
	return &a, nil
}

func (q *queries) APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO api_keys (account_id, key_hash, created_at) VALUES (?, ?, ?)`,
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
	return q.scanWebhook(q.q.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, id, accountID))
}

// afterSeq returns the seq below which the next page starts: the seq of the object named by p.After.
func (q *queries) afterSeq(ctx context.Context, table string, p *store.ListParams, extra string, args ...any) (int64, error) {
	if p.After == "" {
		return 1<<63 - 1, nil
	}
	var seq int64
	err := q.q.QueryRowContext(ctx, `SELECT seq FROM `+table+` WHERE id = ? AND account_id = ?`+extra,
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
	rows, err := q.q.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE account_id = ? AND deleted_at IS NULL AND seq < ? ORDER BY seq DESC LIMIT ?`,
		p.AccountID, after, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, q.scanWebhook)
}

func (q *queries) WebhookListSubscribed(ctx context.Context, accountID, eventType string) ([]*webhook.Webhook, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks
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
	_, err := q.q.ExecContext(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		w.ID, w.AccountID, w.Name, w.URL, string(events), w.IsActive, q.box.Seal(w.Secret),
		q.box.Seal(w.PreviousSecret), ms(w.PreviousSecretExpiresAt), ms(w.CreatedAt), ms(w.UpdatedAt))
	return err
}

func (q *queries) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	events, _ := json.Marshal(w.Events)
	res, err := q.q.ExecContext(ctx, `UPDATE webhooks SET name = ?, url = ?, events = ?, is_active = ?,
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
		_, err = q.q.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', updated_at = ?
			WHERE webhook_id = ? AND state = 'held'`, ms(w.UpdatedAt), w.ID)
	} else {
		// Deliveries in flight (leased) finish their attempt; their outcome holds them.
		_, err = q.q.ExecContext(ctx, `UPDATE deliveries SET state = 'held', updated_at = ?
			WHERE webhook_id = ? AND state = 'pending' AND (locked_until IS NULL OR locked_until <= ?)`,
			ms(w.UpdatedAt), w.ID, ms(w.UpdatedAt))
	}
	return err
}

func (q *queries) WebhookDelete(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `UPDATE webhooks SET deleted_at = ?, updated_at = ?
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, ms(now), ms(now), id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	_, err = q.q.ExecContext(ctx, `UPDATE deliveries SET state = 'cancelled', locked_until = NULL, updated_at = ?
		WHERE webhook_id = ? AND state IN ('pending', 'held')`, ms(now), id)
	return err
}

// --- events and deliveries ---

func (q *queries) EventInsert(ctx context.Context, e *webhook.Event) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO events (id, account_id, type, occurred_at) VALUES (?, ?, ?, ?)`,
		e.ID, e.AccountID, e.Type, ms(e.OccurredAt))
	return err
}

func (q *queries) DeliveryInsert(ctx context.Context, ds []*webhook.Delivery) error {
	for _, d := range ds {
		_, err := q.q.ExecContext(ctx, `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type,
			body, state, attempts, retries, next_attempt_at, locked_until, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.AccountID, d.WebhookID, d.EventID, d.EventType, d.Body, string(d.State), d.Attempts,
			d.Retries, ms(d.NextAttemptAt), nullMS(d.LockedUntil), ms(d.CreatedAt), ms(d.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
	}
	return nil
}

const deliveryCols = `id, account_id, webhook_id, event_id, event_type, body, state, attempts, retries,
	next_attempt_at, created_at`

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
	err := scanDelivery(q.q.QueryRowContext(ctx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE id = ? AND account_id = ?`, id, accountID), &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func (q *queries) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.ClaimedDelivery, error) {
	args := []any{ms(p.LeaseUntil), ms(p.LeaseUntil), ms(p.Now), ms(p.Now)}
	exclude := ""
	if len(p.ExcludeWebhooks) > 0 {
		exclude = ` AND webhook_id NOT IN (` + placeholders(len(p.ExcludeWebhooks)) + `)`
		for _, id := range p.ExcludeWebhooks {
			args = append(args, id)
		}
	}
	args = append(args, p.Limit)
	rows, err := q.q.QueryContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, locked_until = ?, updated_at = ?
		WHERE seq IN (SELECT seq FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?`+exclude+`
			ORDER BY next_attempt_at, seq LIMIT ?)
		RETURNING `+deliveryCols, args...)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	var out []*store.ClaimedDelivery
	for rows.Next() {
		c := &store.ClaimedDelivery{LeaseUntil: p.LeaseUntil}
		if err := scanDelivery(rows, &c.Delivery); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return nil, nil
	}
	// One lookup per distinct webhook, not per delivery.
	hooks := map[string]*webhook.Webhook{}
	for _, c := range out {
		w, ok := hooks[c.WebhookID]
		if !ok {
			w, err = q.scanWebhook(q.q.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, c.WebhookID))
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

func (q *queries) DeliveryRelease(ctx context.Context, cs []*store.ClaimedDelivery, now time.Time) error {
	for _, c := range cs {
		_, err := q.q.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, locked_until = NULL, updated_at = ?
			WHERE id = ? AND state = 'pending' AND locked_until = ?`, ms(now), ms(now), c.ID, ms(c.LeaseUntil))
		if err != nil {
			return fmt.Errorf("release delivery %s: %w", c.ID, err)
		}
	}
	return nil
}

func (q *queries) insertAttempt(ctx context.Context, a *webhook.Attempt) error {
	headers, _ := json.Marshal(a.RequestHeaders)
	if a.RequestHeaders == nil {
		headers = []byte("{}")
	}
	_, err := q.q.ExecContext(ctx, `INSERT INTO attempts (id, delivery_id, webhook_id, account_id, event_id,
		event_type, number, succeeded, status_code, error, response_body, response_time_ms, request_headers,
		created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.DeliveryID, a.WebhookID, a.AccountID, a.EventID, a.EventType, a.Number, a.Succeeded,
		a.StatusCode, a.Error, a.ResponseBody, a.ResponseTime.Milliseconds(), string(headers),
		ms(a.CreatedAt), ms(a.NextAttemptAt))
	if err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	return nil
}

func (q *queries) DeliveryComplete(ctx context.Context, outcomes []*store.DeliveryOutcome) error {
	for _, o := range outcomes {
		a := o.Attempt
		if err := q.insertAttempt(ctx, a); err != nil {
			return err
		}
		// A retry of a webhook paused meanwhile is held instead of pending.
		_, err := q.q.ExecContext(ctx, `UPDATE deliveries SET
			state = CASE WHEN ? = 'pending' AND (SELECT is_active FROM webhooks WHERE id = webhook_id) = 0
				THEN 'held' ELSE ? END,
			attempts = ?, retries = ?, next_attempt_at = ?, locked_until = NULL, updated_at = ?
			WHERE id = ? AND state = 'pending' AND locked_until = ?`,
			string(o.State), string(o.State), a.Number, o.Retries, ms(o.NextAttemptAt), ms(a.CreatedAt),
			a.DeliveryID, ms(o.LeaseUntil))
		if err != nil {
			return fmt.Errorf("complete delivery %s: %w", a.DeliveryID, err)
		}
	}
	return nil
}

func (q *queries) DeliveryResend(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `UPDATE deliveries SET
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

// ExpiredWhilePaused is the error logged for a held delivery dropped after the log retention.
const ExpiredWhilePaused = "expired while paused"

func (q *queries) DeliveryExpireHeld(ctx context.Context, olderThan, now time.Time, limit int) (int, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries
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
	for _, d := range expired {
		a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: d.WebhookID,
			AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType, Number: d.Attempts + 1,
			Error: ExpiredWhilePaused, RequestHeaders: map[string]string{}, CreatedAt: now}
		if err := q.insertAttempt(ctx, a); err != nil {
			return 0, err
		}
		if _, err := q.q.ExecContext(ctx, `UPDATE deliveries SET state = 'failed', attempts = ?, updated_at = ?
			WHERE id = ?`, a.Number, ms(now), d.ID); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

func (q *queries) AttemptPrune(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := q.q.ExecContext(ctx, `DELETE FROM attempts WHERE seq IN
		(SELECT seq FROM attempts WHERE created_at < ? ORDER BY seq LIMIT ?)`, ms(before), limit)
	if err != nil {
		return 0, fmt.Errorf("prune attempts: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := q.q.ExecContext(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries d
		WHERE state IN ('succeeded', 'failed', 'cancelled') AND updated_at < ?
		AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = d.id) LIMIT ?)`, ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	if _, err := q.q.ExecContext(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM events e
		WHERE occurred_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?)`,
		ms(before), limit); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(n), nil
}

// --- attempts ---

const attemptCols = `a.id, a.delivery_id, a.webhook_id, a.account_id, a.event_id, a.event_type, a.number,
	a.succeeded, a.status_code, a.error, a.response_body, a.response_time_ms, a.request_headers,
	a.created_at, a.next_attempt_at, d.body`

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
	return scanAttempt(q.q.QueryRowContext(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id
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
	rows, err := q.q.QueryContext(ctx, `SELECT `+attemptCols+` FROM attempts a
		JOIN deliveries d ON d.id = a.delivery_id
		WHERE `+where+` ORDER BY a.seq DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAttempt)
}

func (q *queries) QueueStats(ctx context.Context) (*store.QueueStats, error) {
	var s store.QueueStats
	var oldest sql.NullInt64
	err := q.q.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM deliveries
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
	err := q.q.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (q *queries) SettingSet(ctx context.Context, name, value string) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}
