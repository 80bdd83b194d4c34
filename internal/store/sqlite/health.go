package sqlite

import (
	"context"
	"fmt"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

// applyHealthSQL applies a webhook.HealthChange to webhook ?1: ?2 succeeded, ?3 failures, ?4 the
// first failure's time (NULL when none), ?5 the last error. A batch of successes to a healthy
// webhook matches no row, so the healthy path writes nothing.
const applyHealthSQL = `UPDATE webhooks SET
		consecutive_failures = CASE WHEN ?2 THEN ?3 ELSE consecutive_failures + ?3 END,
		failing_since = CASE WHEN ?2 THEN ?4 ELSE coalesce(failing_since, ?4) END,
		last_error = CASE WHEN ?3 > 0 THEN ?5 ELSE last_error END
	WHERE id = ?1 AND NOT (?2 AND ?3 = 0 AND consecutive_failures = 0 AND failing_since IS NULL)`

// freeProbeSQL frees webhook ?1's probe slot if the claim with lease end ?2 still holds it.
const freeProbeSQL = `UPDATE webhooks SET probe_until = 0 WHERE id = ?1 AND probe_until = ?2`

// applyHealth writes what a batch of outcomes did to their webhooks' health and frees the probe
// slots their claims held.
func (q *queries) applyHealth(ctx context.Context, outcomes []*store.DeliveryOutcome, health []*webhook.HealthChange) error {
	for _, h := range health {
		if _, err := q.exec(ctx, applyHealthSQL, h.WebhookID, h.Succeeded, h.Failures,
			sqlconv.NullMS(h.FirstFailure), h.LastError); err != nil {
			return fmt.Errorf("webhook health: %w", err)
		}
	}
	for _, o := range outcomes {
		if o.Probe {
			if _, err := q.exec(ctx, freeProbeSQL, o.Attempt.WebhookID, sqlconv.MS(o.LeaseUntil)); err != nil {
				return fmt.Errorf("free probe: %w", err)
			}
		}
	}
	return nil
}

func (q *queries) WebhookListFailing(ctx context.Context, p *store.WebhookListFailingParams) ([]*webhook.Webhook, error) {
	rows, err := q.query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE failing_since IS NOT NULL AND deleted_at IS NULL AND failing_since <= ?
			AND is_active AND consecutive_failures >= ?
		ORDER BY failing_since LIMIT ?`, sqlconv.MS(p.FailingSince), p.MinFailures, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list failing webhooks: %w", err)
	}
	return collect(rows, q.scanWebhook)
}
