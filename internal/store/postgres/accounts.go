package postgres

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
	return scanAccount(q.q.QueryRow(ctx, `SELECT id, name, created_at FROM accounts WHERE name = $1`, name))
}

func (q *queries) AccountGetOrCreate(ctx context.Context, name string, now time.Time) (*account.Account, error) {
	// ON CONFLICT waits for a concurrent insert of the same name to commit, so the SELECT below
	// (a new snapshot under read committed) sees whichever row won.
	_, err := q.q.Exec(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)
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
	return scanAPIKey(q.q.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1`, hash))
}

func (q *queries) APIKeyList(ctx context.Context, accountID string) ([]*store.APIKey, error) {
	rows, err := q.q.Query(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		JOIN accounts a ON a.id = k.account_id WHERE k.account_id = $1 ORDER BY k.seq`, accountID)
	return collect(rows, err, scanAPIKey)
}

func (q *queries) APIKeyInsert(ctx context.Context, p *store.APIKeyInsertParams) error {
	_, err := q.q.Exec(ctx, `INSERT INTO api_keys (id, account_id, key_hash, created_at) VALUES ($1, $2, $3, $4)`,
		p.ID, p.AccountID, p.Hash, sqlconv.MS(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

func (q *queries) APIKeyTouch(ctx context.Context, id string, now time.Time) error {
	if _, err := q.q.Exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, sqlconv.MS(now), id); err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}

func (q *queries) APIKeyRevoke(ctx context.Context, id string) error {
	tag, err := q.q.Exec(ctx, `DELETE FROM api_keys WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errs.ErrNotFound
	}
	if _, err := q.q.Exec(ctx, `DELETE FROM ui_sessions WHERE api_key_id = $1`, id); err != nil {
		return fmt.Errorf("revoke api key: end its sessions: %w", err)
	}
	return nil
}
