package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

const webhookCols = `id, account_id, name, url, events, is_active, secret, previous_secret,
	previous_secret_expires_at, created_at, updated_at, consecutive_failures, failing_since, last_error,
	disabled_reason, disabled_at, format, headers, rate_limit`

func (q *queries) scanWebhook(row sqlconv.Scanner) (*webhook.Webhook, error) {
	var w webhook.Webhook
	var events, secret, prev string
	var prevExp, created, updated int64
	var failingSince, disabledAt *int64
	var headers string
	if err := row.Scan(&w.ID, &w.AccountID, &w.Name, &w.URL, &events, &w.IsActive, &secret, &prev,
		&prevExp, &created, &updated, &w.ConsecutiveFailures, &failingSince, &w.LastError,
		&w.DisabledReason, &disabledAt, &w.Format, &headers, &w.RateLimit); err != nil {
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
	if headers, err = q.box.Open(headers); err != nil {
		return nil, err
	}
	if w.Headers, err = sqlconv.ParseHeaders(headers); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	w.PreviousSecretExpiresAt, w.CreatedAt, w.UpdatedAt = sqlconv.FromMS(prevExp), sqlconv.FromMS(created), sqlconv.FromMS(updated)
	w.FailingSince, w.DisabledAt = sqlconv.FromNullMS(failingSince), sqlconv.FromNullMS(disabledAt)
	return &w, nil
}

// WebhookGetForUpdate is WebhookGet: a writing transaction runs alone on SQLite's one writer, so no
// other can change the webhook before it ends.
func (q *queries) WebhookGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.WebhookGet(ctx, accountID, id)
}

func (q *queries) WebhookCount(ctx context.Context, accountID string) (int, error) {
	var n int
	err := q.queryRow(ctx, `SELECT count(*) FROM webhooks WHERE account_id = ? AND deleted_at IS NULL`, accountID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count webhooks: %w", err)
	}
	return n, nil
}

// WebhookCountForUpdate is WebhookCount, serialised by the single writer like WebhookGetForUpdate.
func (q *queries) WebhookCountForUpdate(ctx context.Context, accountID string) (int, error) {
	return q.WebhookCount(ctx, accountID)
}

func (q *queries) WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.scanWebhook(q.queryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, id, accountID))
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

func (q *queries) WebhookInsert(ctx context.Context, w *webhook.Webhook) error {
	events, _ := json.Marshal(w.Events)
	_, err := q.exec(ctx, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		w.ID, w.AccountID, w.Name, w.URL, string(events), w.IsActive, q.box.Seal(w.Secret),
		q.box.Seal(w.PreviousSecret), sqlconv.MS(w.PreviousSecretExpiresAt), sqlconv.MS(w.CreatedAt), sqlconv.MS(w.UpdatedAt),
		w.ConsecutiveFailures, sqlconv.NullMS(w.FailingSince), w.LastError, w.DisabledReason, sqlconv.NullMS(w.DisabledAt),
		sqlconv.FormatText(w.Format), q.box.Seal(sqlconv.HeadersText(w.Headers)), w.RateLimit)
	return err
}

func (q *queries) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	events, _ := json.Marshal(w.Events)
	res, err := q.exec(ctx, `UPDATE webhooks SET name = ?, url = ?, events = ?, is_active = ?,
		secret = ?, previous_secret = ?, previous_secret_expires_at = ?, updated_at = ?,
		consecutive_failures = ?, failing_since = ?, last_error = ?, disabled_reason = ?, disabled_at = ?,
		format = ?, headers = ?, rate_limit = ?
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`,
		w.Name, w.URL, string(events), w.IsActive, q.box.Seal(w.Secret), q.box.Seal(w.PreviousSecret),
		sqlconv.MS(w.PreviousSecretExpiresAt), sqlconv.MS(w.UpdatedAt), w.ConsecutiveFailures,
		sqlconv.NullMS(w.FailingSince), w.LastError, w.DisabledReason, sqlconv.NullMS(w.DisabledAt),
		sqlconv.FormatText(w.Format), q.box.Seal(sqlconv.HeadersText(w.Headers)), w.RateLimit, w.ID, w.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	if w.IsActive {
		// Held deliveries keep their due time, so they are released oldest first.
		_, err = q.exec(ctx, `UPDATE deliveries SET state = 'pending', updated_at = ?
			WHERE webhook_id = ? AND state = 'held'`, sqlconv.MS(w.UpdatedAt), w.ID)
	} else {
		// Deliveries in flight (leased) finish their attempt; their outcome holds them.
		_, err = q.exec(ctx, `UPDATE deliveries SET state = 'held', updated_at = ?
			WHERE webhook_id = ? AND state = 'pending' AND test = 0 AND (locked_until IS NULL OR locked_until <= ?)`,
			sqlconv.MS(w.UpdatedAt), w.ID, sqlconv.MS(w.UpdatedAt))
	}
	return err
}

func (q *queries) WebhookDelete(ctx context.Context, p *store.WebhookDeleteParams) error {
	now, id := p.Now, p.ID
	res, err := q.exec(ctx, `UPDATE webhooks SET deleted_at = ?, updated_at = ?
		WHERE id = ? AND account_id = ? AND deleted_at IS NULL`, sqlconv.MS(now), sqlconv.MS(now), id, p.AccountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	// One statement per state, so each walks its partial index (deliveries_webhook_due,
	// deliveries_webhook_held) rather than the table.
	for _, cond := range []string{"state = 'pending' AND test = 0", "state = 'pending' AND test = 1", "state = 'held'"} {
		if _, err := q.exec(ctx, `UPDATE deliveries SET state = 'cancelled', locked_until = NULL, updated_at = ?
			WHERE webhook_id = ? AND `+cond, sqlconv.MS(now), id); err != nil {
			return err
		}
	}
	return nil
}

// sealSecrets seals the clear secrets of every webhook, deleted ones too, with the transaction's box.
func (q *queries) sealSecrets(ctx context.Context) (int, error) {
	if q.box == nil {
		return 0, nil
	}
	rows, err := q.query(ctx, `SELECT id, secret, previous_secret, headers FROM webhooks`)
	if err != nil {
		return 0, fmt.Errorf("seal secrets: %w", err)
	}
	type stored struct{ id, secret, prev, headers string }
	all, err := collect(rows, func(row sqlconv.Scanner) (stored, error) {
		var s stored
		return s, row.Scan(&s.id, &s.secret, &s.prev, &s.headers)
	})
	if err != nil {
		return 0, fmt.Errorf("seal secrets: %w", err)
	}
	n := 0
	for _, s := range all {
		secret, prev, headers := q.box.SealClear(s.secret), q.box.SealClear(s.prev), q.box.SealClear(s.headers)
		if secret == s.secret && prev == s.prev && headers == s.headers {
			continue
		}
		if _, err := q.exec(ctx, `UPDATE webhooks SET secret = ?, previous_secret = ?, headers = ? WHERE id = ?`,
			secret, prev, headers, s.id); err != nil {
			return 0, fmt.Errorf("seal secrets: %w", err)
		}
		n++
	}
	return n, nil
}

func (q *queries) WebhookRateTake(ctx context.Context, webhookID string, now time.Time) (time.Time, error) {
	// The single writer serialises this with every claim spending the rate.
	var rate store.Rate
	if err := q.queryRow(ctx, `SELECT rate_limit, rate_tat FROM webhooks WHERE id = ?`, webhookID).
		Scan(&rate.Limit, &rate.TAT); err != nil {
		return time.Time{}, fmt.Errorf("take rate of %s: %w", webhookID, interpretError(err))
	}
	tat, next := rate.TakeOne(now)
	if tat != rate.TAT {
		if _, err := q.exec(ctx, `UPDATE webhooks SET rate_tat = ? WHERE id = ?`, tat, webhookID); err != nil {
			return time.Time{}, fmt.Errorf("take rate of %s: %w", webhookID, err)
		}
	}
	return next, nil
}
