package sqlite

import (
	"context"

	"github.com/quikly/webhooks/internal/store/sqlconv"
	"github.com/quikly/webhooks/internal/webhook"
)

func (q *queries) EventInsert(ctx context.Context, e *webhook.Event) error {
	_, err := q.exec(ctx, `INSERT INTO events (id, account_id, type, occurred_at, test, data) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, e.Type, sqlconv.MS(e.OccurredAt), e.Test, eventData(e))
	return err
}
