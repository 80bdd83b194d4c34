package sqlite_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestOpenRefusesBadPaths(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing", "quikly.db"), sqlite.Options{})
	require.ErrorContains(t, err, "missing")
	_, err = sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
	require.Error(t, err)
}

// TestClaimTakesEachWebhooksEarliestDue checks the fair claim against the plain rule: the webhooks
// listed as due are exactly those with a delivery due, and an allotment of n takes the webhook's first
// n due deliveries, earliest due first, however deep another webhook's backlog.
func TestClaimTakesEachWebhooksEarliestDue(t *testing.T) {
	t.Parallel()
	for _, hooks := range []int{6, 40} {
		t.Run(fmt.Sprintf("Webhooks%d", hooks), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			base := time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)
			var acct string
			var ids []string
			require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
				a, err := tx.AccountGetOrCreate(ctx, "acme", base)
				if err != nil {
					return err
				}
				acct = a.ID
				for i := range hooks {
					w := &webhook.Webhook{ID: fmt.Sprintf("wh_%03d", i), AccountID: acct, Name: "n", URL: "https://x.test",
						Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
					if err := tx.WebhookInsert(ctx, w); err != nil {
						return err
					}
					ids = append(ids, w.ID)
				}
				return nil
			}))
			// Deliveries due at scattered times, so neither seq nor webhook order is due order.
			type due struct {
				id, hook string
				at       time.Time
			}
			var all []due
			rng := rand.New(rand.NewPCG(1, uint64(hooks)))
			require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
				var ds []*webhook.Delivery
				for i := range 400 {
					e := &webhook.Event{ID: fmt.Sprintf("evt_%04d", i), AccountID: acct, Type: webhook.ProposalCreated, OccurredAt: base}
					if err := tx.EventInsert(ctx, e); err != nil {
						return err
					}
					hook := ids[rng.IntN(len(ids))]
					if i < 150 {
						hook = ids[0] // a deep backlog of the webhook to exclude
					}
					at := base.Add(time.Duration(rng.IntN(600)) * time.Second)
					ds = append(ds, &webhook.Delivery{ID: fmt.Sprintf("dlv_%04d", i), AccountID: acct, WebhookID: hook,
						EventID: e.ID, EventType: e.Type, Body: []byte("{}"), State: webhook.DeliveryPending,
						NextAttemptAt: at, CreatedAt: base})
					all = append(all, due{ds[i].ID, hook, at})
				}
				return tx.DeliveryInsert(ctx, ds)
			}))
			slices.SortStableFunc(all, func(a, b due) int { return a.at.Compare(b.at) }) // seq breaks ties: insertion order
			now := base.Add(5 * time.Minute)
			wantHooks := map[string]bool{}
			var want []string
			taken := map[string]int{}
			for _, d := range all {
				if !d.at.After(now) {
					wantHooks[d.hook] = true
					if d.hook != ids[1] && taken[d.hook] < 3 {
						taken[d.hook]++
						want = append(want, d.id)
					}
				}
			}
			var got []string
			require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
				due, err := tx.DeliveryDueWebhooks(ctx, &store.DeliveryDueWebhooksParams{Now: now, Limit: 1000})
				if err != nil {
					return err
				}
				var allot []store.ClaimAllotment
				gotHooks := map[string]bool{}
				for _, d := range due {
					gotHooks[d.WebhookID] = true
					if d.WebhookID != ids[1] {
						allot = append(allot, store.ClaimAllotment{WebhookID: d.WebhookID, Limit: 3})
					}
				}
				if !maps.Equal(wantHooks, gotHooks) {
					return fmt.Errorf("due webhooks %v, want %v", gotHooks, wantHooks)
				}
				cs, err := tx.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Now: now, LeaseUntil: now.Add(time.Minute), Allotments: allot})
				for _, c := range cs {
					got = append(got, c.ID)
				}
				return err
			}))
			require.ElementsMatch(t, want, got)
		})
	}
}
