package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/store/storetest"
)

// A database made before bodies moved to their own table (migration 00001 only) keeps its queued
// deliveries, bodies included, through the upgrade.
func TestUpgradeKeepsQueuedDeliveries(t *testing.T) {
	t.Parallel()
	db := upgraded(t, 1,
		`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'acme', 0)`,
		`INSERT INTO webhooks (id, account_id, name, url, events, is_active, secret, created_at, updated_at)
			VALUES ('wh_1', 'acct_1', 'CRM', 'https://example.com/hook', '{proposal.created}', true, 'whsec_x', 0, 0)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_1', 'acct_1', 'proposal.created', 0)`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, body, state,
			next_attempt_at, created_at, updated_at)
			VALUES ('dlv_1', 'acct_1', 'wh_1', 'evt_1', 'proposal.created', '{"event":"proposal.created"}',
			'pending', 0, 0, 0)`,
	)
	storetest.CheckUpgradeKeepsQueuedDeliveries(t, db)
}

// A database made by the first release (migrations 00001 and 00002) upgrades in place to 00003: its
// keys get ids and still authenticate, its sessions end (they cannot name their key), and a test
// delivery left pending by a crash is marked as a test, so no dispatcher claims it.
func TestUpgradeMarksTestsAndGivesKeysIDs(t *testing.T) {
	t.Parallel()
	db := upgraded(t, 2,
		`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'acme', 0)`,
		`INSERT INTO api_keys (account_id, key_hash, created_at) VALUES ('acct_1', '\x0102', 5)`,
		`INSERT INTO ui_sessions (id_hash, account_id, csrf_token, created_at, expires_at) VALUES ('\x0a', 'acct_1', 't', 0, 9000000000000000)`,
		`INSERT INTO webhooks (id, account_id, name, url, events, is_active, secret, created_at, updated_at)
			VALUES ('wh_1', 'acct_1', 'CRM', 'https://example.com/hook', '{proposal.created}', true, 'whsec_x', 0, 0)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_1', 'acct_1', 'test', 0), ('evt_2', 'acct_1', 'proposal.created', 0)`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, state,
			next_attempt_at, locked_until, created_at, updated_at)
			VALUES ('dlv_1', 'acct_1', 'wh_1', 'evt_1', 'test', 'pending', 10, 10, 0, 0),
			('dlv_2', 'acct_1', 'wh_1', 'evt_2', 'proposal.created', 'pending', 10, NULL, 0, 0)`,
		`INSERT INTO delivery_bodies (delivery_seq, body) SELECT seq, '{}' FROM deliveries`,
	)
	storetest.CheckUpgradeMarksTestsAndGivesKeysIDs(t, db, `^key_[0-9a-f]{32}$`)
}

// A database at 00005 upgrades to 00006 (formats, headers, rate limits): its webhooks read as json,
// with no custom headers and no rate limit, and their queued deliveries are claimed as before.
func TestUpgradeGivesWebhooksTheDefaultFormat(t *testing.T) {
	t.Parallel()
	db := upgraded(t, 5,
		`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'acme', 0)`,
		`INSERT INTO webhooks (id, account_id, name, url, events, is_active, secret, created_at, updated_at)
			VALUES ('wh_1', 'acct_1', 'CRM', 'https://example.com/hook', '{proposal.created}', true, 'whsec_x', 0, 0)`,
		`INSERT INTO events (id, account_id, type, occurred_at) VALUES ('evt_1', 'acct_1', 'proposal.created', 0)`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, state, next_attempt_at, created_at, updated_at)
			VALUES ('dlv_1', 'acct_1', 'wh_1', 'evt_1', 'proposal.created', 'pending', 10, 0, 0)`,
		`INSERT INTO delivery_bodies (delivery_seq, body) SELECT seq, '{}' FROM deliveries WHERE id = 'dlv_1'`,
	)
	storetest.CheckUpgradeGivesWebhooksTheDefaultFormat(t, db)
}

// upgraded makes a fresh database migrated up to version, as an older build left it, with stmts
// run in it, then opens it, which migrates it the rest of the way.
func upgraded(t *testing.T, version int64, stmts ...string) *DB {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	old, err := sql.Open("pgx", url)
	require.NoError(t, err)
	fsys, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectPostgres, old, fsys)
	require.NoError(t, err)
	_, err = p.UpTo(ctx, version)
	require.NoError(t, err)
	for _, stmt := range stmts {
		_, err := old.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, old.Close())
	db, err := Open(ctx, url, Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}
