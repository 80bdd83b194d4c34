package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// runFormats checks the fields of SPEC §12: format, custom headers and the rate limit, which the
// claim enforces from the webhook's row.
func runFormats(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	newWebhook := func(t *testing.T, st store.Store, accountID string, edit func(w *webhook.Webhook)) *webhook.Webhook {
		t.Helper()
		w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: accountID, Name: "CRM", URL: "https://example.com/hook",
			Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
		if edit != nil {
			edit(w)
		}
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookInsert(ctx, w) }))
		return w
	}
	queue := func(t *testing.T, st store.Store, w *webhook.Webhook, n int) {
		t.Helper()
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			for range n {
				e := &webhook.Event{ID: randid.New("evt_"), AccountID: w.AccountID, Type: webhook.ProposalCreated, OccurredAt: base}
				if err := tx.EventInsert(ctx, e); err != nil {
					return err
				}
				d := &webhook.Delivery{ID: randid.New("dlv_"), AccountID: w.AccountID, WebhookID: w.ID, EventID: e.ID,
					EventType: e.Type, Body: []byte(`{}`), State: webhook.DeliveryPending, NextAttemptAt: base, CreatedAt: base}
				if err := tx.DeliveryInsert(ctx, []*webhook.Delivery{d}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	claim := func(t *testing.T, st store.Store, now time.Time, limit int) []*store.ClaimedDelivery {
		t.Helper()
		return claimInTx(t, st, now, now.Add(time.Hour), limit)
	}

	t.Run("FieldsRoundTrip", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		plain := newWebhook(t, st, acct.ID, nil)
		got, err := st.WebhookGet(ctx, acct.ID, plain.ID)
		require.NoError(t, err)
		require.Equal(t, webhook.FormatJSON, got.Format, "no format stored is json")
		require.Empty(t, got.Headers)
		require.Zero(t, got.RateLimit)

		h := map[string]string{"Authorization": "Bearer t0k3n", "X-Tenant": "acme"}
		w := newWebhook(t, st, acct.ID, func(w *webhook.Webhook) {
			w.Format, w.Headers, w.RateLimit = webhook.FormatSlack, h, 25
		})
		got, err = st.WebhookGet(ctx, acct.ID, w.ID)
		require.NoError(t, err)
		require.Equal(t, webhook.FormatSlack, got.Format)
		require.Equal(t, h, got.Headers)
		require.Equal(t, 25, got.RateLimit)

		got.Format, got.Headers, got.RateLimit = webhook.FormatDiscord, nil, 0
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, got) }))
		again, err := st.WebhookGet(ctx, acct.ID, w.ID)
		require.NoError(t, err)
		require.Equal(t, webhook.FormatDiscord, again.Format)
		require.Empty(t, again.Headers)
		require.Zero(t, again.RateLimit)
	})

	t.Run("ClaimCarriesHeaders", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		h := map[string]string{"Authorization": "Bearer t0k3n"}
		w := newWebhook(t, st, acct.ID, func(w *webhook.Webhook) { w.Headers = h })
		queue(t, st, w, 2)
		cs := claim(t, st, base, 10)
		require.Len(t, cs, 2)
		for _, c := range cs {
			require.Equal(t, h, c.Headers)
		}
	})

	// A webhook limited to 10 a second gets one attempt at a time, the next a little before 100 ms
	// later, never more than its rate allows however often it is claimed; an unlimited webhook beside
	// it is not held back.
	t.Run("ClaimHoldsTheRate", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		limited := newWebhook(t, st, acct.ID, func(w *webhook.Webhook) { w.RateLimit = 10 })
		free := newWebhook(t, st, acct.ID, nil)
		queue(t, st, limited, 30)
		queue(t, st, free, 5)
		byHook := func(cs []*store.ClaimedDelivery) map[string]int {
			n := map[string]int{}
			for _, c := range cs {
				n[c.WebhookID]++
			}
			return n
		}
		require.Equal(t, map[string]int{limited.ID: 1, free.ID: 5}, byHook(claim(t, st, base, 100)))
		require.Empty(t, claim(t, st, base.Add(10*time.Millisecond), 100), "nothing more until the rate allows")
		var due []*store.DueWebhook
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			var err error
			due, err = tx.DeliveryDueWebhooks(ctx, &store.DeliveryDueWebhooksParams{Now: base, Limit: 10})
			return err
		}))
		require.Len(t, due, 1)
		require.Equal(t, 10, due[0].Rate.Limit)
		next := due[0].Rate.Next()
		require.True(t, next.After(base) && next.Before(base.Add(100*time.Millisecond)), "next at %v", next.Sub(base))
		require.Empty(t, claim(t, st, next.Add(-time.Millisecond), 100))
		require.Len(t, claim(t, st, next, 100), 1)
		// Claimed every 10 ms for 2 s, it starts 10 a second (and an idle second earns no burst).
		n := 0
		for ms := 1000; ms < 3000; ms += 10 {
			n += len(claim(t, st, base.Add(time.Duration(ms)*time.Millisecond), 100))
		}
		require.InDelta(t, 20, n, 1)
	})

	// A test attempt takes from the same budget as the claims (WebhookRateTake): what it takes, a
	// claim cannot, and what claims took, it waits for.
	t.Run("TakeRateSharesTheClaimsBudget", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		limited := newWebhook(t, st, acct.ID, func(w *webhook.Webhook) { w.RateLimit = 10 })
		free := newWebhook(t, st, acct.ID, nil)
		queue(t, st, limited, 5)
		take := func(w *webhook.Webhook, now time.Time) time.Time {
			t.Helper()
			var next time.Time
			require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
				var err error
				next, err = tx.WebhookRateTake(ctx, w.ID, now)
				return err
			}))
			return next
		}
		require.Zero(t, take(limited, base), "the first attempt goes")
		require.Empty(t, claim(t, st, base, 100), "the claim finds the budget spent")
		next := take(limited, base)
		require.True(t, next.After(base) && next.Before(base.Add(100*time.Millisecond)), "next at %v", next.Sub(base))
		require.Len(t, claim(t, st, next, 100), 1, "the claim takes the next one")
		require.True(t, take(limited, next).After(next), "and the test waits again")
		for range 3 {
			require.Zero(t, take(free, base), "no limit, no wait")
		}
		err := st.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.WebhookRateTake(ctx, "wh_missing", base)
			return err
		})
		require.ErrorIs(t, err, errs.ErrNotFound)
	})

	// Concurrent claims, as from several processes, share one budget: together they lease no more
	// than the rate allows.
	t.Run("ConcurrentClaimsShareTheRate", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		w := newWebhook(t, st, acct.ID, func(w *webhook.Webhook) { w.RateLimit = 100 }) // one per claim
		queue(t, st, w, 50)
		var mu sync.Mutex
		total := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var cs []*store.ClaimedDelivery
				err := st.Tx(ctx, func(tx store.Tx) error {
					var err error
					cs, err = ClaimDue(ctx, tx, base, base.Add(time.Hour), 10)
					return err
				})
				require.NoError(t, err)
				mu.Lock()
				total += len(cs)
				mu.Unlock()
			}()
		}
		wg.Wait()
		require.Equal(t, 1, total, "one attempt at a time at 100/s, however many claim at once")
	})
}
