package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// runHealth checks the fair claim's queries, the circuit breaker's probe slot and endpoint health.
func runHealth(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	type bundle struct {
		st   store.Store
		acct *account.Account
	}
	setup := func(t *testing.T) *bundle {
		t.Helper()
		st, acct := openWithAccount(t, open)
		return &bundle{st: st, acct: acct}
	}
	newWebhook := func(t *testing.T, b *bundle, edit func(w *webhook.Webhook)) *webhook.Webhook {
		t.Helper()
		w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: b.acct.ID, Name: "CRM", URL: "https://example.com/hook",
			Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
		if edit != nil {
			edit(w)
		}
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookInsert(ctx, w) }))
		return w
	}
	// queue inserts n deliveries to w, due at due.
	queue := func(t *testing.T, b *bundle, w *webhook.Webhook, n int, due time.Time) {
		t.Helper()
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error {
			for range n {
				e := &webhook.Event{ID: randid.New("evt_"), AccountID: b.acct.ID, Type: webhook.ProposalCreated, OccurredAt: base}
				if err := tx.EventInsert(ctx, e); err != nil {
					return err
				}
				d := &webhook.Delivery{ID: randid.New("dlv_"), AccountID: b.acct.ID, WebhookID: w.ID, EventID: e.ID,
					EventType: e.Type, Body: []byte(`{}`), State: webhook.DeliveryPending, NextAttemptAt: due, CreatedAt: base}
				if err := tx.DeliveryInsert(ctx, []*webhook.Delivery{d}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	// due lists the webhooks with deliveries due at now, among only if set.
	due := func(t *testing.T, st store.Store, now time.Time, only ...string) map[string]*store.DueWebhook {
		t.Helper()
		var ds []*store.DueWebhook
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			var err error
			ds, err = tx.DeliveryDueWebhooks(ctx, &store.DeliveryDueWebhooksParams{Now: now, Limit: 100, WebhookIDs: only})
			return err
		}))
		out := map[string]*store.DueWebhook{}
		for _, d := range ds {
			out[d.WebhookID] = d
		}
		return out
	}
	claim := func(t *testing.T, st store.Store, now time.Time, a store.ClaimAllotment) []*store.ClaimedDelivery {
		t.Helper()
		var cs []*store.ClaimedDelivery
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			var err error
			cs, err = tx.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{Now: now, LeaseUntil: now.Add(time.Minute),
				Allotments: []store.ClaimAllotment{a}})
			return err
		}))
		return cs
	}
	// finish writes the outcomes of attempts of cs that ended at at, failed unless ok.
	finish := func(t *testing.T, st store.Store, cs []*store.ClaimedDelivery, at time.Time, ok bool) {
		t.Helper()
		var outcomes []*store.DeliveryOutcome
		var attempts []*webhook.Attempt
		for _, c := range cs {
			a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: c.WebhookID, AccountID: c.AccountID,
				EventID: c.EventID, EventType: c.EventType, Number: c.Attempts + 1, Succeeded: ok,
				RequestHeaders: map[string]string{}, CreatedAt: at}
			state := webhook.DeliverySucceeded
			if !ok {
				a.StatusCode, a.Error, state = 500, fmt.Sprintf("HTTP 500 at %s", at.Format(time.TimeOnly)), webhook.DeliveryFailed
			}
			attempts = append(attempts, a)
			outcomes = append(outcomes, &store.DeliveryOutcome{Attempt: a, LeaseUntil: c.LeaseUntil, Probe: c.Probe, State: state})
		}
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			return tx.DeliveryComplete(ctx, outcomes, webhook.HealthChanges(attempts))
		}))
	}
	get := func(t *testing.T, b *bundle, id string) *webhook.Webhook {
		t.Helper()
		w, err := b.st.WebhookGet(ctx, b.acct.ID, id)
		require.NoError(t, err)
		return w
	}

	t.Run("DueWebhooksAreThoseWithDeliveriesDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		now := base.Add(time.Hour)
		ready := newWebhook(t, b, nil)
		later := newWebhook(t, b, nil)
		newWebhook(t, b, nil) // nothing queued
		queue(t, b, ready, 3, base)
		queue(t, b, later, 2, now.Add(time.Minute))
		got := due(t, b.st, now)
		require.Len(t, got, 1)
		require.Equal(t, b.acct.ID, got[ready.ID].AccountID)
		require.False(t, got[ready.ID].BreakerOpen)
		// Asked about some webhooks only, it looks at those alone, and still lists only the due ones.
		other := newWebhook(t, b, nil)
		queue(t, b, other, 1, base)
		require.Len(t, due(t, b.st, now), 2)
		got = due(t, b.st, now, ready.ID, later.ID, "wh_unknown")
		require.Len(t, got, 1)
		require.Equal(t, b.acct.ID, got[ready.ID].AccountID)
		require.Len(t, claim(t, b.st, now, store.ClaimAllotment{WebhookID: other.ID, Limit: 10}), 1)
		// Claimed deliveries are leased, not due: a webhook whose deliveries are all in flight is not due.
		require.Len(t, claim(t, b.st, now, store.ClaimAllotment{WebhookID: ready.ID, Limit: 10}), 3)
		require.Empty(t, due(t, b.st, now))
	})

	t.Run("HealthCountsFailuresAndASuccessResetsIt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b, nil)
		queue(t, b, w, 8, base)
		first := base.Add(time.Second)
		finish(t, b.st, claim(t, b.st, base, store.ClaimAllotment{WebhookID: w.ID, Limit: 3}), first, false)
		got := get(t, b, w.ID)
		require.Equal(t, 3, got.ConsecutiveFailures)
		require.True(t, got.FailingSince.Equal(first), "failing since the first failure")
		require.Equal(t, "HTTP 500 at 14:30:01", got.LastError)
		require.False(t, due(t, b.st, base)[w.ID].BreakerOpen)

		finish(t, b.st, claim(t, b.st, base, store.ClaimAllotment{WebhookID: w.ID, Limit: 2}), base.Add(2*time.Second), false)
		got = get(t, b, w.ID)
		require.Equal(t, webhook.BreakerThreshold, got.ConsecutiveFailures)
		require.True(t, got.FailingSince.Equal(first), "the first failure stays the start")
		require.True(t, due(t, b.st, base)[w.ID].BreakerOpen)

		finish(t, b.st, claim(t, b.st, base, store.ClaimAllotment{WebhookID: w.ID, Limit: 1, Probe: true}), base.Add(3*time.Second), true)
		got = get(t, b, w.ID)
		require.Zero(t, got.ConsecutiveFailures)
		require.True(t, got.FailingSince.IsZero())
		require.False(t, due(t, b.st, base)[w.ID].BreakerOpen)
	})

	t.Run("ProbeSlotAllowsOneClaimAtATime", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b, func(w *webhook.Webhook) {
			w.ConsecutiveFailures, w.FailingSince = webhook.BreakerThreshold, base
		})
		queue(t, b, w, 4, base)
		probe := store.ClaimAllotment{WebhookID: w.ID, Limit: 1, Probe: true}
		first := claim(t, b.st, base, probe)
		require.Len(t, first, 1)
		require.True(t, first[0].Probe)
		require.Empty(t, claim(t, b.st, base, probe), "another claim holds the probe slot")
		finish(t, b.st, first, base.Add(time.Second), false)
		second := claim(t, b.st, base.Add(time.Second), probe)
		require.Len(t, second, 1, "the outcome freed the slot")
		// A claimer that dies loses the slot with its lease.
		require.Empty(t, claim(t, b.st, base.Add(30*time.Second), probe))
		require.Len(t, claim(t, b.st, base.Add(time.Second+time.Minute+time.Millisecond), probe), 1)
	})

	t.Run("ProbeSlotIsGivenBackWhenNothingIsDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b, func(w *webhook.Webhook) { w.ConsecutiveFailures = webhook.BreakerThreshold })
		queue(t, b, w, 1, base.Add(time.Hour))
		probe := store.ClaimAllotment{WebhookID: w.ID, Limit: 1, Probe: true}
		require.Empty(t, claim(t, b.st, base, probe))
		require.Len(t, claim(t, b.st, base.Add(time.Hour), probe), 1, "an empty claim kept no slot")
	})

	t.Run("ListFailingFindsOnlyLongFailingActiveWebhooks", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		failing := func(since time.Time, failures int, active bool) *webhook.Webhook {
			return newWebhook(t, b, func(w *webhook.Webhook) {
				w.ConsecutiveFailures, w.FailingSince, w.IsActive = failures, since, active
			})
		}
		want := failing(base.Add(-2*time.Hour), webhook.DisableMinFailures, true)
		failing(base.Add(-2*time.Hour), webhook.DisableMinFailures-1, true) // too few failures
		failing(base.Add(-10*time.Minute), 50, true)                        // not for long enough
		failing(base.Add(-2*time.Hour), 50, false)                          // paused
		newWebhook(t, b, nil)                                               // healthy
		var got []*webhook.Webhook
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.WebhookListFailing(ctx, &store.WebhookListFailingParams{
				FailingSince: base.Add(-time.Hour), MinFailures: webhook.DisableMinFailures, Limit: 10})
			return err
		}))
		require.Len(t, got, 1)
		require.Equal(t, want.ID, got[0].ID)
		require.True(t, got[0].FailingSince.Equal(base.Add(-2*time.Hour)))
	})

	t.Run("DisabledReasonRoundTrips", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b, nil)
		w.IsActive, w.DisabledReason, w.DisabledAt = false, webhook.DisabledFailing, base.Add(time.Minute)
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) }))
		got := get(t, b, w.ID)
		require.Equal(t, webhook.DisabledFailing, got.DisabledReason)
		require.True(t, got.DisabledAt.Equal(base.Add(time.Minute)))
		got.SetActive(true)
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, got) }))
		got = get(t, b, w.ID)
		require.Empty(t, got.DisabledReason)
		require.True(t, got.DisabledAt.IsZero())
	})
}
