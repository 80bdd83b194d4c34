package postgres

import (
	"context"
	"fmt"

	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

func (q *queries) EventInsert(ctx context.Context, e *webhook.Event) error {
	_, err := q.q.Exec(ctx, `INSERT INTO events (id, account_id, type, occurred_at, test, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.AccountID, e.Type, sqlconv.MS(e.OccurredAt), e.Test, eventData(e))
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}
