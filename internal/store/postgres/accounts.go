package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

func (q *queries) AccountGetByKeyHash(ctx context.Context, hash []byte) (*account.Account, error) {
	var a account.Account
	var created int64
	err := q.q.QueryRow(ctx, `SELECT a.id, a.name, a.created_at FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1`, hash).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = sqlconv.FromMS(created)
	return &a, nil
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	// ON CONFLICT waits for a concurrent insert of the same name to commit, so the SELECT below
	// (a new snapshot under read committed) sees whichever row won.
	_, err := q.q.Exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, sqlconv.MS(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	var a account.Account
	var created int64
	err = q.q.QueryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = $1`, name).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = sqlconv.FromMS(created)
	return &a, nil
}

func (q *queries) APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error {
	_, err := q.q.Exec(ctx, `INSERT INTO api_keys (account_id, key_hash, created_at) VALUES ($1, $2, $3)`,
		accountID, hash, sqlconv.MS(now))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}
