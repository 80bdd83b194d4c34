package postgres

import (
	"context"
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

func (q *queries) scanWebhook(row scanner) (*webhook.Webhook, error) {
	var w webhook.Webhook
	var secret, prev string
	var prevExp, created, updated int64
	var failingSince, disabledAt *int64
	var headers string
	if err := row.Scan(&w.ID, &w.AccountID, &w.Name, &w.URL, &w.Events, &w.IsActive, &secret, &prev,
		&prevExp, &created, &updated, &w.ConsecutiveFailures, &failingSince, &w.LastError,
		&w.DisabledReason, &disabledAt, &w.Format, &headers, &w.RateLimit); err != nil {
		return nil, interpretError(err)
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

// events returns w's events for the NOT NULL array column: pgx sends a nil slice as NULL.
func events(w *webhook.Webhook) []string {
	if w.Events == nil {
		return []string{}
	}
	return w.Events
}

func (q *queries) WebhookGetForUpdate(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.scanWebhook(q.q.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, accountID))
}

func (q *queries) WebhookCount(ctx context.Context, accountID string) (int, error) {
	var n int
	err := q.q.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE account_id = $1 AND deleted_at IS NULL`, accountID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count webhooks: %w", err)
	}
	return n, nil
}

// WebhookCountForUpdate locks the account's row first: concurrent creates of one account queue
// there, and each counts after the one before it committed (read committed takes a new snapshot
// per statement).
func (q *queries) WebhookCountForUpdate(ctx context.Context, accountID string) (int, error) {
	if _, err := q.q.Exec(ctx, `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, accountID); err != nil {
		return 0, fmt.Errorf("count webhooks: lock account: %w", err)
	}
	return q.WebhookCount(ctx, accountID)
}

func (q *queries) WebhookGet(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	return q.scanWebhook(q.q.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`, id, accountID))
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
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		w.ID, w.AccountID, w.Name, w.URL, events(w), w.IsActive, q.box.Seal(w.Secret),
		q.box.Seal(w.PreviousSecret), sqlconv.MS(w.PreviousSecretExpiresAt), sqlconv.MS(w.CreatedAt), sqlconv.MS(w.UpdatedAt),
		w.ConsecutiveFailures, sqlconv.NullMS(w.FailingSince), storableText(w.LastError), w.DisabledReason,
		sqlconv.NullMS(w.DisabledAt), sqlconv.FormatText(w.Format), q.box.Seal(sqlconv.HeadersText(w.Headers)), w.RateLimit)
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

func (q *queries) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	tag, err := q.q.Exec(ctx, `UPDATE webhooks SET name = $1, url = $2, events = $3, is_active = $4,
		secret = $5, previous_secret = $6, previous_secret_expires_at = $7, updated_at = $8,
		consecutive_failures = $11, failing_since = $12, last_error = $13, disabled_reason = $14,
		disabled_at = $15, format = $16, headers = $17, rate_limit = $18
		WHERE id = $9 AND account_id = $10 AND deleted_at IS NULL`,
		w.Name, w.URL, events(w), w.IsActive, q.box.Seal(w.Secret), q.box.Seal(w.PreviousSecret),
		sqlconv.MS(w.PreviousSecretExpiresAt), sqlconv.MS(w.UpdatedAt), w.ID, w.AccountID, w.ConsecutiveFailures,
		sqlconv.NullMS(w.FailingSince), storableText(w.LastError), w.DisabledReason, sqlconv.NullMS(w.DisabledAt),
		sqlconv.FormatText(w.Format), q.box.Seal(sqlconv.HeadersText(w.Headers)), w.RateLimit)
	if err != nil {
		return fmt.Errorf("update webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	if !w.IsActive {
		// Deliveries in flight (leased) finish their attempt; their outcome holds them.
		_, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'held', updated_at = $1
			WHERE webhook_id = $2 AND state = 'pending' AND NOT test AND (locked_until IS NULL OR locked_until <= $1)`,
			sqlconv.MS(w.UpdatedAt), w.ID)
		if err != nil {
			return fmt.Errorf("hold deliveries: %w", err)
		}
		return nil
	}
	// Held deliveries keep their due time, so they are released oldest first.
	tag, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'pending', updated_at = $1
		WHERE webhook_id = $2 AND state = 'held'`, sqlconv.MS(w.UpdatedAt), w.ID)
	if err != nil {
		return fmt.Errorf("release held deliveries: %w", err)
	}
	if tag.RowsAffected() > 0 {
		q.deliveriesDue()
	}
	return nil
}

func (q *queries) WebhookDelete(ctx context.Context, p *store.WebhookDeleteParams) error {
	accountID, id, now := p.AccountID, p.ID, p.Now
	tag, err := q.q.Exec(ctx, `UPDATE webhooks SET deleted_at = $1, updated_at = $1
		WHERE id = $2 AND account_id = $3 AND deleted_at IS NULL`, sqlconv.MS(now), id, accountID)
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	_, err = q.q.Exec(ctx, `UPDATE deliveries SET state = 'cancelled', locked_until = NULL, updated_at = $1
		WHERE webhook_id = $2 AND state IN ('pending', 'held')`, sqlconv.MS(now), id)
	if err != nil {
		return fmt.Errorf("cancel deliveries: %w", err)
	}
	return nil
}

// sealSecrets seals the clear secrets of every webhook, deleted ones too, locking every row.
func (q *queries) sealSecrets(ctx context.Context) (int, error) {
	if q.box == nil {
		return 0, nil
	}
	rows, err := q.q.Query(ctx, `SELECT id, secret, previous_secret, headers FROM webhooks ORDER BY id FOR UPDATE`)
	type stored struct{ id, secret, prev, headers string }
	all, err := collect(rows, err, func(row scanner) (stored, error) {
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
		if _, err := q.q.Exec(ctx, `UPDATE webhooks SET secret = $1, previous_secret = $2, headers = $3 WHERE id = $4`,
			secret, prev, headers, s.id); err != nil {
			return 0, fmt.Errorf("seal secrets: %w", err)
		}
		n++
	}
	return n, nil
}

func (q *queries) WebhookRateTake(ctx context.Context, webhookID string, now time.Time) (time.Time, error) {
	// The row lock orders this with every claim spending the rate (lockRates).
	var rate store.Rate
	if err := q.q.QueryRow(ctx, `SELECT rate_limit, rate_tat FROM webhooks WHERE id = $1 FOR UPDATE`, webhookID).
		Scan(&rate.Limit, &rate.TAT); err != nil {
		return time.Time{}, fmt.Errorf("take rate of %s: %w", webhookID, interpretError(err))
	}
	tat, next := rate.TakeOne(now)
	if tat != rate.TAT {
		if _, err := q.q.Exec(ctx, `UPDATE webhooks SET rate_tat = $1 WHERE id = $2`, tat, webhookID); err != nil {
			return time.Time{}, fmt.Errorf("take rate of %s: %w", webhookID, err)
		}
	}
	return next, nil
}
