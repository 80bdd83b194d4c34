package delivery

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

// TestInterruptedTestIsFailedNotRetried: SPEC §13 — a test whose sender died mid-attempt (its
// lease ran out with no outcome) is never claimed by a dispatcher, and the maintenance step fails it
// with a log entry that says why, once.
func TestInterruptedTestIsFailedNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)
	lease := now.Add(time.Minute)
	w := &webhook.Webhook{ID: randid.New("wh_"), Name: "CRM", URL: "https://example.com/hook",
		Events: []string{webhook.ProposalCreated}, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
	var d *webhook.Delivery
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(ctx, "acme", now)
		if err != nil {
			return err
		}
		w.AccountID = acct.ID
		if err := tx.WebhookInsert(ctx, w); err != nil {
			return err
		}
		d, err = publishTest(ctx, tx, w, map[string]string{"k": "v"}, now, lease)
		return err
	}))
	require.True(t, d.Test, "a test send is marked as one")

	// The process died: no outcome is ever written. Past the lease, no claim takes the test.
	after := lease.Add(time.Second)
	var claimed []*store.ClaimedDelivery
	var failed, again int
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
		var err error
		if claimed, err = storetest.ClaimDue(ctx, tx, after, after.Add(time.Minute), 10); err != nil {
			return err
		}
		if failed, err = FailInterruptedTests(ctx, tx, after, 10); err != nil {
			return err
		}
		again, err = FailInterruptedTests(ctx, tx, after, 10)
		return err
	}))
	require.Empty(t, claimed)
	require.Equal(t, 1, failed)
	require.Equal(t, 0, again, "failed once, for good")
	got, err := st.DeliveryGet(ctx, w.AccountID, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliveryFailed, got.State)
	logs, err := st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: w.AccountID, Limit: 10}, WebhookID: w.ID})
	require.NoError(t, err)
	require.Len(t, logs, 1)
	require.Equal(t, webhook.ErrorTestInterrupted, logs[0].Error)
	require.Equal(t, 1, logs[0].Number)
}
