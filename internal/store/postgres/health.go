package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

// applyHealth applies webhook.HealthChanges, one row each of ($1 ids, $2 succeeded, $3 failures, $4
// first failures, NULL when none, $5 last errors). A batch of successes to a healthy webhook matches
// no row, so the healthy path writes nothing.
const applyHealth = `UPDATE webhooks w SET
		consecutive_failures = CASE WHEN h.ok THEN h.failures ELSE w.consecutive_failures + h.failures END,
		failing_since = CASE WHEN h.ok THEN h.first ELSE coalesce(w.failing_since, h.first) END,
		last_error = CASE WHEN h.failures > 0 THEN h.err ELSE w.last_error END
	FROM unnest($1::text[], $2::bool[], $3::int[], $4::bigint[], $5::text[]) AS h(id, ok, failures, first, err)
	WHERE w.id = h.id AND NOT (h.ok AND h.failures = 0 AND w.consecutive_failures = 0 AND w.failing_since IS NULL)`

// freeProbes frees the probe slots still held by the claims of ($1 webhook ids, $2 lease ends).
const freeProbes = `UPDATE webhooks w SET probe_until = 0
	FROM unnest($1::text[], $2::bigint[]) AS p(id, lease) WHERE w.id = p.id AND w.probe_until = p.lease`

// queueHealth adds to b the writes of what a batch of outcomes did to their webhooks' health and
// the release of the probe slots their claims held. DeliveryComplete has locked the webhooks.
func queueHealth(b *pgx.Batch, outcomes []*store.DeliveryOutcome, health []*webhook.HealthChange) {
	if n := len(health); n > 0 {
		ids, oks, failures, firsts, errors := make([]string, n), make([]bool, n), make([]int32, n), make([]*int64, n), make([]string, n)
		for i, h := range health {
			ids[i], oks[i], failures[i] = h.WebhookID, h.Succeeded, int32(h.Failures)
			firsts[i], errors[i] = sqlconv.NullMS(h.FirstFailure), storableText(h.LastError)
		}
		b.Queue(applyHealth, ids, oks, failures, firsts, errors)
	}
	var ids []string
	var leases []int64
	for _, o := range outcomes {
		if o.Probe {
			ids, leases = append(ids, o.Attempt.WebhookID), append(leases, sqlconv.MS(o.LeaseUntil))
		}
	}
	if len(ids) > 0 {
		b.Queue(freeProbes, ids, leases)
	}
}

func (q *queries) WebhookListFailing(ctx context.Context, p *store.WebhookListFailingParams) ([]*webhook.Webhook, error) {
	// SKIP LOCKED: every node runs maintenance; concurrent runs take disjoint webhooks.
	rows, err := q.q.Query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE failing_since IS NOT NULL AND deleted_at IS NULL AND failing_since <= $1
			AND is_active AND consecutive_failures >= $2
		ORDER BY failing_since LIMIT $3 FOR UPDATE SKIP LOCKED`, sqlconv.MS(p.FailingSince), p.MinFailures, p.Limit)
	ws, err := collect(rows, err, q.scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("list failing webhooks: %w", err)
	}
	return ws, nil
}
