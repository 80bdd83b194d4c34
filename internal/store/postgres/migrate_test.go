package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
)

// A database made before bodies moved to their own table (migration 00001 only) keeps its queued
// deliveries, bodies included, through the upgrade.
func TestUpgradeKeepsQueuedDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	old, err := sql.Open("pgx", url)
	require.NoError(t, err)
	fsys, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectPostgres, old, fsys)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 1)
	require.NoError(t, err)
	for _, stmt := range []string{
		`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'acme', 0)`,
		`INSERT INTO webhooks (id, account_id, name, url, events, is_active, secret, created_at, updated_at)
			VALUES ('wh_1', 'acct_1', 'CRM', 'https://example.com/hook', '{proposal.created}', true, 'whsec_x', 0, 0)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_1', 'acct_1', 'proposal.created', 0)`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, body, state,
			next_attempt_at, created_at, updated_at)
			VALUES ('dlv_1', 'acct_1', 'wh_1', 'evt_1', 'proposal.created', '{"event":"proposal.created"}',
			'pending', 0, 0, 0)`,
	} {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, old.Close())

	db, err := Open(ctx, url, Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	d, err := db.DeliveryGet(ctx, "acct_1", "dlv_1")
	require.NoError(t, err)
	require.Equal(t, `{"event":"proposal.created"}`, string(d.Body))
}
