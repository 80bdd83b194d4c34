package sqlite

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
	err := q.queryRow(ctx, `SELECT a.id, a.name, a.created_at FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`, hash).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = sqlconv.FromMS(created)
	return &a, nil
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	_, err := q.exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, sqlconv.MS(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	var a account.Account
	var created int64
	err = q.queryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = ?`, name).
		Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = sqlconv.FromMS(created)
	return &a, nil
}

func (q *queries) APIKeyInsert(ctx context.Context, accountID string, hash []byte, now time.Time) error {
	_, err := q.exec(ctx, `INSERT INTO api_keys (account_id, key_hash, created_at) VALUES (?, ?, ?)`,
		accountID, hash, sqlconv.MS(now))
	return err
}
