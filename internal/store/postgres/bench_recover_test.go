package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

// recoverBenchRows is how many events, deliveries and attempts BenchmarkDeliveriesRead stores.
const recoverBenchRows = 1_000_000

// BenchmarkDeliveriesRead measures the reads of SPEC §10 against 1,000,000 events, deliveries and
// attempts (4 webhooks; one delivery in 8 failed, all on the first webhook, 125,000 of them) and one
// recover of 100,000 failed deliveries; see storetest.BenchDeliveriesRead. Run once:
//
//	QUIKLY_TEST_DATABASE_URL=postgres://root@127.0.0.1:5432/test \
//	go test -run '^$' -bench DeliveriesRead -benchtime 1x -timeout 30m ./internal/store/postgres/
func BenchmarkDeliveriesRead(b *testing.B) {
	ctx := context.Background()
	url := pgtest.NewDatabase(b)
	st, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var acct string
	require.NoError(b, st.Tx(ctx, func(tx store.Tx) error {
		a, err := tx.AccountGetOrCreate(ctx, "bench", base)
		if err != nil {
			return err
		}
		acct = a.ID
		for i := range 4 {
			w := &webhook.Webhook{ID: fmt.Sprintf("whb_%d", i), AccountID: acct, Name: "bench", URL: "https://example.com/hook",
				Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
			if err := tx.WebhookInsert(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	defer conn.Close(ctx)
	start := time.Now()
	b0 := base.UnixMilli()
	for _, q := range []string{
		`SET synchronous_commit = off`,
		`INSERT INTO events (id, account_id, type, occurred_at, data)
		SELECT 'evt_' || i, $1, CASE WHEN i % 100 = 99 THEN 'test' ELSE 'proposal.created' END, $3 + i * 1000,
			'{"proposal_id":"' || i || '","name":"Website redesign","total":1200.5}'
		FROM generate_series(0, $2::bigint - 1) AS i`,
		`INSERT INTO deliveries (id, account_id, webhook_id, event_id, event_type, state, attempts, retries,
			next_attempt_at, created_at, updated_at)
		SELECT 'dlv_' || i, $1, 'whb_' || (i % 4), 'evt_' || i, 'proposal.created',
			CASE WHEN i % 8 = 0 THEN 'failed' ELSE 'succeeded' END, 1, 0, $3 + i * 1000 + 500, $3 + i * 1000,
			$3 + i * 1000 + 500
		FROM generate_series(0, $2::bigint - 1) AS i`,
		`INSERT INTO attempts (id, delivery_id, webhook_id, account_id, event_id, event_type, number, succeeded,
			status_code, error, response_body, response_time_ms, request_headers, created_at, next_attempt_at)
		SELECT 'att_' || seq, id, webhook_id, account_id, event_id, event_type, 1, state = 'succeeded',
			CASE WHEN state = 'succeeded' THEN 200 ELSE 500 END, CASE WHEN state = 'succeeded' THEN '' ELSE 'HTTP 500' END,
			'', 12, '{}', updated_at, 0 FROM deliveries`,
		`VACUUM ANALYZE`, // as autovacuum leaves a table at rest: statistics, and a visibility map for index-only scans
	} {
		args := []any{acct, recoverBenchRows, b0}
		if !strings.Contains(q, "$") {
			args = nil
		}
		if len(args) > 0 && !strings.Contains(q, "$3") {
			args = nil
		}
		_, err := conn.Exec(ctx, q, args...)
		require.NoError(b, err, q)
	}
	b.Logf("populated %d events, deliveries and attempts in %s", recoverBenchRows, time.Since(start).Round(time.Second))
	storetest.BenchDeliveriesRead(b, st, acct, recoverBenchRows, base, base.Add(recoverBenchRows*time.Second))
}
