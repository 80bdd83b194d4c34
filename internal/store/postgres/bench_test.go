package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

// BenchmarkClaimComplete measures the queue's hot path: claim a batch of due deliveries in one
// transaction, then log their attempts and finish them in another, against a backlog.
func BenchmarkClaimComplete(b *testing.B) {
	b.Run("Alone", func(b *testing.B) { benchClaimComplete(b, 0) })
	// BesideHung claims past a hung webhook's backlog of 5,000 deliveries, due before all the others,
	// as the dispatcher does while that webhook is at its cap.
	b.Run("BesideHung", func(b *testing.B) { benchClaimComplete(b, 5000) })
}

func benchClaimComplete(b *testing.B, hungBacklog int) {
	const batch = 128
	ctx := b.Context()
	url := pgtest.NewDatabase(b)
	db, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	var acctID string
	w := &webhook.Webhook{ID: randid.New("wh_"), Name: "CRM", URL: "https://example.com/hook",
		Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
	require.NoError(b, db.Tx(ctx, func(tx store.Tx) error {
		a, err := tx.AccountGetOrCreate(ctx, "acme", base)
		if err != nil {
			return err
		}
		acctID, w.AccountID = a.ID, a.ID
		return tx.WebhookInsert(ctx, w)
	}))
	body := make([]byte, 1024)
	queue := func(hook *webhook.Webhook, n int, due func(i int) time.Time) {
		for done := 0; done < n; {
			k := min(1000, n-done)
			e := &webhook.Event{ID: randid.New("evt_"), AccountID: acctID, Type: webhook.ProposalCreated, OccurredAt: base}
			ds := make([]*webhook.Delivery, k)
			for i := range ds {
				ds[i] = &webhook.Delivery{ID: randid.New("dlv_"), AccountID: acctID, WebhookID: hook.ID, EventID: e.ID,
					EventType: e.Type, Body: body, State: webhook.DeliveryPending, NextAttemptAt: due(done + i), CreatedAt: base}
			}
			require.NoError(b, db.Tx(ctx, func(tx store.Tx) error {
				if err := tx.EventInsert(ctx, e); err != nil {
					return err
				}
				return tx.DeliveryInsert(ctx, ds)
			}))
			done += k
		}
	}
	var exclude []string
	if hungBacklog > 0 {
		hung := *w
		hung.ID = randid.New("wh_")
		require.NoError(b, db.Tx(ctx, func(tx store.Tx) error { return tx.WebhookInsert(ctx, &hung) }))
		queue(&hung, hungBacklog, func(int) time.Time { return base.Add(-time.Hour) })
		exclude = []string{hung.ID}
	}
	// The backlog: b.N batches.
	total := b.N * batch
	queue(w, total, func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) })
	now := base.Add(time.Duration(total) * time.Millisecond)
	headers := map[string]string{"Content-Type": "application/json", "webhook-id": "evt_x", "X-Quikly-Signature": "abc"}
	walBefore := walLSN(b, url)
	b.ResetTimer()
	for range b.N {
		var cs []*store.ClaimedDelivery
		require.NoError(b, db.Tx(ctx, func(tx store.Tx) error {
			var err error
			cs, err = storetest.ClaimDue(ctx, tx, now, now.Add(time.Minute), batch, exclude...)
			return err
		}))
		require.Len(b, cs, batch)
		outcomes := make([]*store.DeliveryOutcome, len(cs))
		for i, c := range cs {
			a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: c.WebhookID, AccountID: c.AccountID,
				EventID: c.EventID, EventType: c.EventType, Number: 1, Succeeded: true, StatusCode: 200,
				ResponseBody: "ok", ResponseTime: time.Millisecond, RequestHeaders: headers, CreatedAt: now}
			outcomes[i] = &store.DeliveryOutcome{Attempt: a, LeaseUntil: c.LeaseUntil, State: webhook.DeliverySucceeded}
		}
		require.NoError(b, db.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryComplete(ctx, outcomes, nil) }))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "deliveries/s")
	// WAL bytes measure the work of a delivery independently of the machine's speed (the server's
	// WAL also holds what other sessions write: run the benchmark alone).
	b.ReportMetric(float64(walLSN(b, url)-walBefore)/float64(b.N*batch), "wal-B/delivery")
}

// walLSN returns the server's current WAL position in bytes.
func walLSN(b *testing.B, url string) int64 {
	conn, err := pgx.Connect(b.Context(), url)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	var lsn int64
	require.NoError(b, conn.QueryRow(b.Context(), `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&lsn))
	return lsn
}
