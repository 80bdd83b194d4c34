package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlconv"
)

func scanAccount(row sqlconv.Scanner) (*account.Account, error) {
	var a account.Account
	var created int64
	if err := row.Scan(&a.ID, &a.Name, &created); err != nil {
		return nil, interpretError(err)
	}
	a.CreatedAt = sqlconv.FromMS(created)
	return &a, nil
}

func (q *queries) AccountGetByName(ctx context.Context, name string) (*account.Account, error) {
	return scanAccount(q.queryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = ?`, name))
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	_, err := q.exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, randid.New("acct_"), name, sqlconv.MS(now))
	if err != nil {
		return nil, fmt.Errorf("insert account: %w", err)
	}
	return q.AccountGetByName(ctx, name)
}

const apiKeyCols = `k.id, k.account_id, a.name, k.created_at, k.last_used_at`

func scanAPIKey(row sqlconv.Scanner) (*store.APIKey, error) {
	var k store.APIKey
	var created, used int64
	if err := row.Scan(&k.ID, &k.AccountID, &k.AccountName, &created, &used); err != nil {
		return nil, interpretError(err)
	}
	k.CreatedAt, k.LastUsedAt = sqlconv.FromMS(created), sqlconv.FromMS(used)
	return &k, nil
}

func (q *queries) APIKeyGetByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	return scanAPIKey(q.queryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ?`, hash))
}

func (q *queries) APIKeyList(ctx context.Context, accountID string) ([]*store.APIKey, error) {
	rows, err := q.query(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.account_id = ? ORDER BY k.seq`, accountID)
	return collectErr(rows, err, scanAPIKey)
}

func (q *queries) APIKeyInsert(ctx context.Context, p *store.APIKeyInsertParams) error {
	_, err := q.exec(ctx, `INSERT INTO api_keys (id, account_id, key_hash, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.AccountID, p.Hash, sqlconv.MS(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

func (q *queries) APIKeyTouch(ctx context.Context, id string, now time.Time) error {
	if _, err := q.exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, sqlconv.MS(now), id); err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}

func (q *queries) APIKeyRevoke(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.ErrNotFound
	}
	if _, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE api_key_id = ?`, id); err != nil {
		return fmt.Errorf("revoke api key: end its sessions: %w", err)
	}
	return nil
}
