package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

// ClaimDue claims up to limit due deliveries at now, leased until lease, sharing them round-robin
// between the due webhooks not in exclude (as the dispatcher's fair share does, without its caps).
// It is how tests and benchmarks claim without a dispatcher.
func ClaimDue(ctx context.Context, tx store.Tx, now, lease time.Time, limit int, exclude ...string) ([]*store.ClaimedDelivery, error) {
	due, err := tx.DeliveryDueWebhooks(ctx, &store.DeliveryDueWebhooksParams{Now: now, Limit: 10000})
	if err != nil {
		return nil, err
	}
	due = slices.DeleteFunc(due, func(d *store.DueWebhook) bool { return slices.Contains(exclude, d.WebhookID) })
	if len(due) == 0 {
		return nil, nil
	}
	allot := make([]store.ClaimAllotment, len(due))
	for i, d := range due {
		allot[i] = store.ClaimAllotment{WebhookID: d.WebhookID, Probe: d.BreakerOpen, RateLimited: d.Rate.Limit > 0}
	}
	for i := 0; i < limit; i++ {
		a := &allot[i%len(allot)]
		if !a.Probe || a.Limit == 0 {
			a.Limit++
		}
	}
	allot = slices.DeleteFunc(allot, func(a store.ClaimAllotment) bool { return a.Limit == 0 })
	return tx.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Now: now, LeaseUntil: lease, Allotments: allot})
}

// claimInTx runs ClaimDue in a transaction of its own on st and returns what it claimed.
func claimInTx(t *testing.T, st store.Store, now, lease time.Time, limit int, exclude ...string) []*store.ClaimedDelivery {
	t.Helper()
	ctx := context.Background()
	var cs []*store.ClaimedDelivery
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
		var err error
		cs, err = ClaimDue(ctx, tx, now, lease, limit, exclude...)
		return err
	}))
	return cs
}
