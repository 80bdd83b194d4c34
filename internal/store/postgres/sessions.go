package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

// --- web UI sessions ---

func (q *queries) SessionGet(ctx context.Context, idHash []byte) (*store.ConsoleSession, error) {
	s := store.ConsoleSession{IDHash: idHash}
	var created, expires int64
	err := q.q.QueryRow(ctx, `SELECT s.account_id, s.api_key_id, a.name, s.csrf_token, s.created_at, s.expires_at
		FROM ui_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id_hash = $1`, idHash).
		Scan(&s.AccountID, &s.APIKeyID, &s.AccountName, &s.CSRFToken, &created, &expires)
	if err != nil {
		return nil, interpretError(err)
	}
	s.CreatedAt, s.ExpiresAt = sqlconv.FromMS(created), sqlconv.FromMS(expires)
	return &s, nil
}

func (q *queries) SessionInsert(ctx context.Context, s *store.ConsoleSession) error {
	_, err := q.q.Exec(ctx, `INSERT INTO ui_sessions (id_hash, account_id, api_key_id, csrf_token, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.IDHash, s.AccountID, s.APIKeyID, s.CSRFToken, sqlconv.MS(s.CreatedAt), sqlconv.MS(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (q *queries) SessionDelete(ctx context.Context, idHash []byte) error {
	if _, err := q.q.Exec(ctx, `DELETE FROM ui_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (q *queries) SessionDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	// The subquery bounds the batch and walks the expires_at index; SKIP LOCKED lets every node
	// sweep at once without queueing behind another's batch.
	tag, err := q.q.Exec(ctx, `DELETE FROM ui_sessions WHERE id_hash IN
		(SELECT id_hash FROM ui_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2
		 FOR UPDATE SKIP LOCKED)`, sqlconv.MS(now), limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
