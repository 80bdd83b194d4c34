package sqlite

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
	err := q.queryRow(ctx, `SELECT s.account_id, s.api_key_id, a.name, s.csrf_token, s.created_at, s.expires_at
		FROM ui_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id_hash = ?`, idHash).
		Scan(&s.AccountID, &s.APIKeyID, &s.AccountName, &s.CSRFToken, &created, &expires)
	if err != nil {
		return nil, interpretError(err)
	}
	s.CreatedAt, s.ExpiresAt = sqlconv.FromMS(created), sqlconv.FromMS(expires)
	return &s, nil
}

func (q *queries) SessionInsert(ctx context.Context, s *store.ConsoleSession) error {
	_, err := q.exec(ctx, `INSERT INTO ui_sessions (id_hash, account_id, api_key_id, csrf_token, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, s.IDHash, s.AccountID, s.APIKeyID, s.CSRFToken, sqlconv.MS(s.CreatedAt), sqlconv.MS(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (q *queries) SessionDelete(ctx context.Context, idHash []byte) error {
	if _, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (q *queries) SessionDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	// The subquery bounds the batch so a large backlog never holds the single writer for long; it
	// walks the expires_at index.
	res, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE id_hash IN
		(SELECT id_hash FROM ui_sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, sqlconv.MS(now), limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
