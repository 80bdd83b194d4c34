// Package storetest is the suite every store driver must pass: the same behaviour on SQLite and
// PostgreSQL, checked against the real database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// base is the suite's fixed "now".
var base = time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)

// openWithAccount opens a fresh store and creates an account with a random name in it.
func openWithAccount(t *testing.T, open func(t *testing.T) store.Store) (store.Store, *account.Account) {
	t.Helper()
	ctx := context.Background()
	st := open(t)
	var acct *account.Account
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
		var err error
		acct, err = tx.AccountGetOrCreate(ctx, "acme-"+randid.Base62(6), base)
		return err
	}))
	return st, acct
}

// Run runs the suite; open returns a new, empty, migrated store for one test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
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
	tx := func(t *testing.T, st store.Store, fn func(tx store.Tx) error) {
		t.Helper()
		require.NoError(t, st.Tx(ctx, fn))
	}
	newWebhook := func(t *testing.T, b *bundle, events ...string) *webhook.Webhook {
		t.Helper()
		if len(events) == 0 {
			events = []string{webhook.ProposalCreated}
		}
		w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: b.acct.ID, Name: "CRM", URL: "https://example.com/hook",
			Events: events, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookInsert(ctx, w) })
		return w
	}
	publish := func(t *testing.T, b *bundle, eventType string, at time.Time) []*webhook.Delivery {
		t.Helper()
		var ds []*webhook.Delivery
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			ds, err = publishTx(ctx, tx, b.acct.ID, eventType, at)
			return err
		})
		return ds
	}
	claim := func(t *testing.T, st store.Store, now time.Time, limit int, exclude ...string) []*store.ClaimedDelivery {
		t.Helper()
		return claimInTx(t, st, now, now.Add(time.Minute), limit, exclude...)
	}
	complete := func(t *testing.T, st store.Store, c *store.ClaimedDelivery, state webhook.DeliveryState, now time.Time, next time.Time) *webhook.Attempt {
		t.Helper()
		a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: c.WebhookID, AccountID: c.AccountID,
			EventID: c.EventID, EventType: c.EventType, Number: c.Attempts + 1, Succeeded: state == webhook.DeliverySucceeded,
			StatusCode: 500, Error: "HTTP 500", RequestHeaders: map[string]string{"webhook-id": c.EventID}, CreatedAt: now,
			NextAttemptAt: next}
		tx(t, st, func(tx store.Tx) error {
			return tx.DeliveryComplete(ctx, []*store.DeliveryOutcome{{Attempt: a, LeaseUntil: c.LeaseUntil, State: state,
				NextAttemptAt: next, Retries: c.Retries + 1}}, nil)
		})
		return a
	}
	deliveryState := func(t *testing.T, b *bundle, id string) webhook.DeliveryState {
		t.Helper()
		d, err := b.st.DeliveryGet(ctx, b.acct.ID, id)
		require.NoError(t, err)
		return d.State
	}

	t.Run("Proposals", func(t *testing.T) { runProposals(t, open) })
	t.Run("Keys", func(t *testing.T) { runKeys(t, open) })
	t.Run("Sessions", func(t *testing.T) { runSessions(t, open) })
	t.Run("DeliveriesRead", func(t *testing.T) { runDeliveriesRead(t, open) })
	t.Run("Health", func(t *testing.T) { runHealth(t, open) })
	t.Run("Formats", func(t *testing.T) { runFormats(t, open) })

	t.Run("AccountAndKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, hash := account.NewAPIKey()
		id := randid.New("key_")
		tx(t, b.st, func(tx store.Tx) error {
			return tx.APIKeyInsert(ctx, &store.APIKeyInsertParams{ID: id, AccountID: b.acct.ID, Hash: hash, CreatedAt: base})
		})
		got, err := b.st.APIKeyGetByHash(ctx, hash)
		require.NoError(t, err)
		require.Equal(t, id, got.ID)
		require.Equal(t, b.acct.ID, got.AccountID)
		require.Equal(t, b.acct.Name, got.AccountName)
		_, other := account.NewAPIKey()
		_, err = b.st.APIKeyGetByHash(ctx, other)
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
		// Getting an existing account by name returns it, not a new one.
		var again *account.Account
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			again, err = tx.AccountGetOrCreate(ctx, b.acct.Name, base)
			return err
		})
		require.Equal(t, b.acct.ID, again.ID)
		byName, err := b.st.AccountGetByName(ctx, b.acct.Name)
		require.NoError(t, err)
		require.Equal(t, b.acct.ID, byName.ID)
	})

	t.Run("WebhookCRUDAndTenancy", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b, webhook.ProposalCreated, webhook.ProposalShared)
		got, err := b.st.WebhookGet(ctx, b.acct.ID, w.ID)
		require.NoError(t, err)
		require.Equal(t, w.Secret, got.Secret)
		require.Equal(t, w.Events, got.Events)
		require.True(t, got.CreatedAt.Equal(base))

		_, err = b.st.WebhookGet(ctx, "acct_other", w.ID)
		require.Equal(t, errs.NotFound, errs.CodeOf(err))

		got.Name, got.PreviousSecret, got.PreviousSecretExpiresAt = "Renamed", got.Secret, base.Add(time.Hour)
		got.Secret = webhook.NewSecret()
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, got) })
		again, err := b.st.WebhookGet(ctx, b.acct.ID, w.ID)
		require.NoError(t, err)
		require.Equal(t, "Renamed", again.Name)
		require.Equal(t, []string{got.Secret, w.Secret}, again.SigningSecrets(base))
		require.Equal(t, []string{got.Secret}, again.SigningSecrets(base.Add(2*time.Hour)))

		foreign := *got
		foreign.AccountID = "acct_other"
		err = b.st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, &foreign) })
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
		err = b.st.Tx(ctx, func(tx store.Tx) error {
			return tx.WebhookDelete(ctx, &store.WebhookDeleteParams{AccountID: "acct_other", ID: w.ID, Now: base})
		})
		require.Equal(t, errs.NotFound, errs.CodeOf(err))

		tx(t, b.st, func(tx store.Tx) error {
			return tx.WebhookDelete(ctx, &store.WebhookDeleteParams{AccountID: b.acct.ID, ID: w.ID, Now: base})
		})
		_, err = b.st.WebhookGet(ctx, b.acct.ID, w.ID)
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
	})

	t.Run("WebhookReadModifyWritesDoNotLoseEachOther", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		// Each round races a pause against a secret rotation, each a read-modify-write of the whole
		// row under WebhookGetForUpdate, as app.UpdateWebhook and app.RegenerateSecret do. Neither
		// may write back a stale copy over the other's change.
		rmw := func(change func(w *webhook.Webhook)) (*webhook.Webhook, error) {
			var got *webhook.Webhook
			err := b.st.Tx(ctx, func(tx store.Tx) error {
				var err error
				if got, err = tx.WebhookGetForUpdate(ctx, b.acct.ID, w.ID); err != nil {
					return err
				}
				change(got)
				return tx.WebhookUpdate(ctx, got)
			})
			return got, err
		}
		for round := range 30 {
			_, err := rmw(func(w *webhook.Webhook) { w.IsActive = true })
			require.NoError(t, err)
			var rotated *webhook.Webhook
			var rotateErr, pauseErr error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				rotated, rotateErr = rmw(func(w *webhook.Webhook) {
					w.PreviousSecret, w.PreviousSecretExpiresAt, w.Secret = w.Secret, base.Add(time.Hour), webhook.NewSecret()
				})
			}()
			go func() {
				defer wg.Done()
				_, pauseErr = rmw(func(w *webhook.Webhook) { w.IsActive = false })
			}()
			wg.Wait()
			require.NoError(t, rotateErr)
			require.NoError(t, pauseErr)
			stored, err := b.st.WebhookGet(ctx, b.acct.ID, w.ID)
			require.NoError(t, err)
			require.Equal(t, rotated.Secret, stored.Secret, "round %d: the secret returned is the one that signs", round)
			require.False(t, stored.IsActive, "round %d: the pause is not lost", round)
		}
	})

	t.Run("WebhookListPages", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var ids []string
		for range 5 {
			ids = append(ids, newWebhook(t, b).ID)
		}
		// Another account's webhooks, in the same database, never show.
		tx(t, b.st, func(tx store.Tx) error {
			other, err := tx.AccountGetOrCreate(ctx, "other-"+randid.Base62(6), base)
			if err != nil {
				return err
			}
			return tx.WebhookInsert(ctx, &webhook.Webhook{ID: randid.New("wh_"), AccountID: other.ID, Name: "x",
				URL: "https://x.test", Events: []string{webhook.ProposalCreated}, Secret: webhook.NewSecret(),
				CreatedAt: base, UpdatedAt: base})
		})
		all, err := b.st.WebhookList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 100})
		require.NoError(t, err)
		require.Len(t, all, 5)
		first, err := b.st.WebhookList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 3})
		require.NoError(t, err)
		require.Len(t, first, 3)
		require.Equal(t, ids[4], first[0].ID, "newest first")
		rest, err := b.st.WebhookList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 3, After: first[2].ID})
		require.NoError(t, err)
		require.Equal(t, []string{ids[1], ids[0]}, []string{rest[0].ID, rest[1].ID})
		_, err = b.st.WebhookList(ctx, &store.ListParams{AccountID: b.acct.ID, Limit: 3, After: "wh_unknown"})
		require.Equal(t, errs.Invalid, errs.CodeOf(err))
	})

	t.Run("PublishFansOutToSubscribers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sub := newWebhook(t, b, webhook.ProposalCreated)
		newWebhook(t, b, webhook.ProposalShared)
		paused := newWebhook(t, b, webhook.ProposalCreated)
		paused.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, paused) })
		ds := publish(t, b, webhook.ProposalCreated, base)
		require.Len(t, ds, 2)
		states := map[string]webhook.DeliveryState{}
		for _, d := range ds {
			states[d.WebhookID] = deliveryState(t, b, d.ID)
		}
		require.Equal(t, map[string]webhook.DeliveryState{sub.ID: webhook.DeliveryPending, paused.ID: webhook.DeliveryHeld}, states)
	})

	t.Run("RolledBackPublishLeavesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		boom := errors.New("boom")
		var publishErr error
		err := b.st.Tx(ctx, func(tx store.Tx) error {
			if _, publishErr = publishTx(ctx, tx, b.acct.ID, webhook.ProposalCreated, base); publishErr != nil {
				return publishErr
			}
			return boom
		})
		require.NoError(t, publishErr)
		require.ErrorIs(t, err, boom)
		require.Empty(t, claim(t, b.st, base.Add(time.Hour), 10))
	})

	t.Run("ClaimLeasesAndExpiredLeasesAreReclaimed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		for i := range 3 {
			publish(t, b, webhook.ProposalCreated, base.Add(time.Duration(i)*time.Second))
		}
		require.Empty(t, claim(t, b.st, base.Add(-time.Second), 10), "nothing is due before it happens")
		cs := claim(t, b.st, base.Add(5*time.Second), 2)
		require.Len(t, cs, 2)
		require.Equal(t, w.URL, cs[0].URL)
		require.Equal(t, w.Secret, cs[0].Secret)
		require.NotEmpty(t, cs[0].Body)
		require.True(t, cs[0].CreatedAt.Before(cs[1].CreatedAt), "earliest due first")
		more := claim(t, b.st, base.Add(5*time.Second), 10)
		require.Len(t, more, 1, "leased deliveries are not claimed twice")
		// The lease ends a minute after the claim: a crashed claimer's deliveries come back then.
		again := claim(t, b.st, base.Add(5*time.Second+time.Minute+time.Millisecond), 10)
		require.Len(t, again, 3)
	})

	t.Run("ClaimSkipsExcludedWebhooks", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		slow := newWebhook(t, b, webhook.ProposalCreated)
		fast := newWebhook(t, b, webhook.ProposalCreated)
		publish(t, b, webhook.ProposalCreated, base)
		cs := claim(t, b.st, base.Add(time.Second), 10, slow.ID)
		require.Len(t, cs, 1)
		require.Equal(t, fast.ID, cs[0].WebhookID)
	})

	t.Run("ClaimTakesEachWebhooksEarliestDue", func(t *testing.T) {
		t.Parallel()
		for _, hooks := range []int{3, 20} {
			b := setup(t)
			var ids []string
			for range hooks {
				ids = append(ids, newWebhook(t, b, webhook.ProposalCreated).ID)
			}
			for i := range 4 { // every webhook gets one delivery per event, due at base+i s
				publish(t, b, webhook.ProposalCreated, base.Add(time.Duration(i)*time.Second))
			}
			want := 2 * (hooks - 1) // two of each webhook but the excluded one
			cs := claim(t, b.st, base.Add(time.Hour), want, ids[0])
			require.Len(t, cs, want, "%d webhooks", hooks)
			perHook := map[string]int{}
			for _, c := range cs {
				require.NotEqual(t, ids[0], c.WebhookID, "excluded webhook claimed")
				perHook[c.WebhookID]++
				require.True(t, c.CreatedAt.Before(base.Add(2*time.Second)), "each webhook's earliest due first")
			}
			for _, n := range perHook {
				require.Equal(t, 2, n)
			}
		}
	})

	t.Run("CompleteRetryAndFinish", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		now := base.Add(time.Second)
		c := claim(t, b.st, now, 1)[0]
		a := complete(t, b.st, c, webhook.DeliveryPending, now, now.Add(30*time.Second))
		require.Equal(t, webhook.DeliveryPending, deliveryState(t, b, d.ID))
		require.Empty(t, claim(t, b.st, now.Add(29*time.Second), 1), "not due before the retry delay")
		c2 := claim(t, b.st, now.Add(31*time.Second), 1)[0]
		require.Equal(t, 1, c2.Attempts)
		require.Equal(t, 1, c2.Retries)
		require.Equal(t, c.Body, c2.Body, "identical bytes on every retry")
		complete(t, b.st, c2, webhook.DeliverySucceeded, now.Add(32*time.Second), time.Time{})
		require.Equal(t, webhook.DeliverySucceeded, deliveryState(t, b, d.ID))

		logs, err := b.st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: b.acct.ID, Limit: 10}, WebhookID: w.ID})
		require.NoError(t, err)
		require.Len(t, logs, 2)
		require.True(t, logs[0].Succeeded, "newest first")
		require.Equal(t, 2, logs[0].Number)
		require.Equal(t, a.ID, logs[1].ID)
		require.Equal(t, c.Body, logs[1].Payload)
		require.Equal(t, "HTTP 500", logs[1].Error)
		require.True(t, logs[1].NextAttemptAt.Equal(now.Add(30*time.Second)))
		require.Equal(t, map[string]string{"webhook-id": c.EventID}, logs[1].RequestHeaders)

		ok := false
		failedOnly, err := b.st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: b.acct.ID, Limit: 10},
			WebhookID: w.ID, Succeeded: &ok})
		require.NoError(t, err)
		require.Len(t, failedOnly, 1)
		none, err := b.st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: b.acct.ID, Limit: 10},
			WebhookID: w.ID, EventType: webhook.ProposalShared})
		require.NoError(t, err)
		require.Empty(t, none)
		_, err = b.st.AttemptGet(ctx, &store.AttemptGetParams{AccountID: "acct_other", WebhookID: w.ID, ID: a.ID})
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
	})

	t.Run("LostLeaseLogsButDoesNotMoveTheDelivery", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		stale := claim(t, b.st, base, 1)[0]
		fresh := claim(t, b.st, base.Add(2*time.Minute), 1)[0] // the first lease expired
		complete(t, b.st, stale, webhook.DeliveryFailed, base.Add(2*time.Minute), time.Time{})
		require.Equal(t, webhook.DeliveryPending, deliveryState(t, b, d.ID))
		complete(t, b.st, fresh, webhook.DeliverySucceeded, base.Add(2*time.Minute), time.Time{})
		require.Equal(t, webhook.DeliverySucceeded, deliveryState(t, b, d.ID))
	})

	t.Run("PauseHoldsResumeReleases", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		d1 := publish(t, b, webhook.ProposalCreated, base)[0]
		w.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		d2 := publish(t, b, webhook.ProposalCreated, base.Add(time.Second))[0]
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, d1.ID))
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, d2.ID))
		require.Empty(t, claim(t, b.st, base.Add(time.Hour), 10))
		stats, err := b.st.QueueStats(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, stats.Depth, int64(2))

		w.IsActive = true
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		cs := claim(t, b.st, base.Add(time.Hour), 10)
		require.Len(t, cs, 2)
		require.Equal(t, d1.ID, cs[0].ID, "released oldest first")
	})

	t.Run("RetryOfPausedWebhookIsHeld", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		c := claim(t, b.st, base, 1)[0]
		w.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		require.Equal(t, webhook.DeliveryPending, deliveryState(t, b, d.ID), "an attempt in flight finishes")
		complete(t, b.st, c, webhook.DeliveryPending, base, base.Add(time.Second))
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, d.ID))
	})

	t.Run("ReleaseMakesDueAgainOrHolds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		d1 := publish(t, b, webhook.ProposalCreated, base)[0]
		d2 := publish(t, b, webhook.ProposalCreated, base)[0]
		cs := claim(t, b.st, base, 2)
		require.Len(t, cs, 2)
		tx(t, b.st, func(tx store.Tx) error { return tx.DeliveryRelease(ctx, cs[:1], base.Add(time.Second)) })
		again := claim(t, b.st, base.Add(time.Second), 10)
		require.Len(t, again, 1, "the released delivery is due again; the other is still leased")
		require.Equal(t, cs[0].ID, again[0].ID)

		w.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		tx(t, b.st, func(tx store.Tx) error { return tx.DeliveryRelease(ctx, append(again, cs[1]), base.Add(2*time.Second)) })
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, d1.ID), "released for a paused webhook: held")
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, d2.ID))
	})

	t.Run("DeleteCancels", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		tx(t, b.st, func(tx store.Tx) error {
			return tx.WebhookDelete(ctx, &store.WebhookDeleteParams{AccountID: b.acct.ID, ID: w.ID, Now: base})
		})
		require.Equal(t, webhook.DeliveryCancelled, deliveryState(t, b, d.ID))
		require.Empty(t, claim(t, b.st, base.Add(time.Hour), 10))
		require.Empty(t, publish(t, b, webhook.ProposalCreated, base), "a deleted webhook gets nothing new")
	})

	retry := func(t *testing.T, b *bundle, p *store.DeliveryRetryParams) bool {
		t.Helper()
		var ok bool
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			ok, err = tx.DeliveryRetry(ctx, p)
			return err
		})
		return ok
	}

	t.Run("RetryFinishedStartsAFreshSchedule", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		c := claim(t, b.st, base, 1)[0]
		complete(t, b.st, c, webhook.DeliveryFailed, base, time.Time{})
		_, err := b.st.DeliveryGet(ctx, "acct_other", d.ID)
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
		require.False(t, retry(t, b, &store.DeliveryRetryParams{AccountID: "acct_other", ID: d.ID, Now: base, FreshSchedule: true}),
			"another account's delivery is not touched")
		require.True(t, retry(t, b, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: base.Add(time.Hour), FreshSchedule: true}))
		c2 := claim(t, b.st, base.Add(time.Hour), 1)[0]
		require.Equal(t, 0, c2.Retries, "fresh schedule")
		require.Equal(t, 1, c2.Attempts, "attempt numbers go on counting")
		require.Equal(t, c.Body, c2.Body)
		require.Equal(t, c.EventID, c2.EventID)
	})

	t.Run("RetryPendingKeepsItsSchedule", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		c := claim(t, b.st, base, 1)[0]
		complete(t, b.st, c, webhook.DeliveryPending, base, base.Add(4*time.Hour)) // next try in 4 h
		now := base.Add(time.Minute)
		require.Empty(t, claim(t, b.st, now, 1))
		require.True(t, retry(t, b, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: now}))
		c2 := claim(t, b.st, now, 1)[0]
		require.Equal(t, d.ID, c2.ID, "due now")
		require.Equal(t, 1, c2.Retries, "the schedule goes on where it was")
	})

	t.Run("RetryNeverMakesALeasedDeliveryDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		d := publish(t, b, webhook.ProposalCreated, base)[0]
		c := claim(t, b.st, base, 1)[0] // leased for a minute: an attempt is in flight
		require.False(t, retry(t, b, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: base.Add(time.Second)}))
		require.Empty(t, claim(t, b.st, base.Add(time.Second), 10), "a second claim would send it twice")
		got, err := b.st.DeliveryGet(ctx, b.acct.ID, d.ID)
		require.NoError(t, err)
		require.True(t, got.LockedUntil.Equal(c.LeaseUntil), "the lease is untouched")
		// Once the lease has expired (its claimer died), a retry takes it over.
		require.True(t, retry(t, b, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: c.LeaseUntil}))
		require.Len(t, claim(t, b.st, c.LeaseUntil, 10), 1)
	})

	t.Run("RetryRacingAClaimSendsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		newWebhook(t, b)
		const rounds = 20
		ds := make([]*webhook.Delivery, rounds)
		for i := range ds {
			ds[i] = publish(t, b, webhook.ProposalCreated, base)[0]
		}
		now := base.Add(time.Second)
		// Every delivery is due: a claim and a retry-now of each race. Whatever the order, the delivery
		// is leased by at most one claim at a time, so it is claimed exactly once before the lease ends.
		claimed := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		errc := make(chan error, 2*rounds)
		for _, d := range ds {
			wg.Add(2)
			go func() {
				defer wg.Done()
				// No check of the lease here: the store's own guard is what is tested.
				errc <- b.st.Tx(ctx, func(tx store.Tx) error {
					_, err := tx.DeliveryRetry(ctx, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: now})
					return err
				})
			}()
			go func() {
				defer wg.Done()
				var cs []*store.ClaimedDelivery
				err := b.st.Tx(ctx, func(tx store.Tx) error {
					var err error
					cs, err = ClaimDue(ctx, tx, now, now.Add(time.Minute), 1)
					return err
				})
				mu.Lock()
				for _, c := range cs {
					claimed[c.ID]++
				}
				mu.Unlock()
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
		// Whatever was not claimed in the race is due now; claim it all.
		for _, c := range claim(t, b.st, now, 2*rounds) {
			claimed[c.ID]++
		}
		for _, d := range ds {
			require.Equal(t, 1, claimed[d.ID], "delivery %s claimed once while leased", d.ID)
		}
	})

	t.Run("TestDeliveriesAreNeverClaimedAndFailWhenInterrupted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		lease := base.Add(time.Minute)
		e := &webhook.Event{ID: randid.New("evt_"), AccountID: b.acct.ID, Type: webhook.TestEvent, OccurredAt: base, Test: true}
		d := &webhook.Delivery{ID: randid.New("dlv_"), AccountID: b.acct.ID, WebhookID: w.ID, EventID: e.ID,
			EventType: e.Type, Body: []byte(`{"event":"test"}`), State: webhook.DeliveryPending, NextAttemptAt: lease,
			LockedUntil: lease, CreatedAt: base, Test: true}
		tx(t, b.st, func(tx store.Tx) error {
			if err := tx.EventInsert(ctx, e); err != nil {
				return err
			}
			return tx.DeliveryInsert(ctx, []*webhook.Delivery{d})
		})
		got, err := b.st.DeliveryGet(ctx, b.acct.ID, d.ID)
		require.NoError(t, err)
		require.True(t, got.Test)
		// Its sender died: the lease has long expired, and still no dispatcher claims it.
		later := lease.Add(time.Hour)
		require.Empty(t, claim(t, b.st, later, 10))
		require.Empty(t, claim(t, b.st, later, 10, "wh_other"), "nor a claim that excludes webhooks")
		// Pausing does not hold it either (a test goes out paused or not).
		w.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		require.Equal(t, webhook.DeliveryPending, deliveryState(t, b, d.ID))

		var interrupted []*webhook.Delivery
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			if interrupted, err = tx.DeliveryListInterrupted(ctx, lease.Add(-time.Millisecond), 10); err != nil || len(interrupted) > 0 {
				return err // not yet: the lease still runs
			}
			interrupted, err = tx.DeliveryListInterrupted(ctx, later, 10)
			return err
		})
		require.Len(t, interrupted, 1)
		require.Equal(t, d.ID, interrupted[0].ID)
		a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: w.ID, AccountID: b.acct.ID,
			EventID: e.ID, EventType: e.Type, Number: 1, Error: webhook.ErrorTestInterrupted, RequestHeaders: map[string]string{},
			CreatedAt: later}
		tx(t, b.st, func(tx store.Tx) error { return tx.DeliveryFail(ctx, []*webhook.Attempt{a}, later) })
		require.Equal(t, webhook.DeliveryFailed, deliveryState(t, b, d.ID))
		logs, err := b.st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: b.acct.ID, Limit: 10}, WebhookID: w.ID})
		require.NoError(t, err)
		require.Len(t, logs, 1)
		require.Equal(t, webhook.ErrorTestInterrupted, logs[0].Error)
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			interrupted, err = tx.DeliveryListInterrupted(ctx, later, 10)
			return err
		})
		require.Empty(t, interrupted, "failed once, for good")

		// Retried by its sender, a test is leased to it again, never made due for a dispatcher.
		require.True(t, retry(t, b, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: later,
			FreshSchedule: true, LeaseUntil: later.Add(time.Minute)}))
		require.Equal(t, webhook.DeliveryPending, deliveryState(t, b, d.ID), "paused or not")
		require.Empty(t, claim(t, b.st, later.Add(time.Hour), 10))
	})

	t.Run("ExpireHeldAndPrune", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b)
		old := publish(t, b, webhook.ProposalCreated, base)[0]
		c := claim(t, b.st, base, 1)[0]
		complete(t, b.st, c, webhook.DeliverySucceeded, base, time.Time{})
		w.IsActive = false
		tx(t, b.st, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) })
		held := publish(t, b, webhook.ProposalCreated, base.Add(time.Minute))[0]
		recent := publish(t, b, webhook.ProposalCreated, base.Add(48*time.Hour))[0]

		cutoff, now := base.Add(24*time.Hour), base.Add(72*time.Hour)
		var expired []*webhook.Delivery
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			if expired, err = tx.DeliveryListHeld(ctx, cutoff, 10); err != nil {
				return err
			}
			as := make([]*webhook.Attempt, len(expired))
			for i, d := range expired {
				as[i] = &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: d.WebhookID, AccountID: d.AccountID,
					EventID: d.EventID, EventType: d.EventType, Number: d.Attempts + 1, Error: webhook.ErrorExpiredWhilePaused,
					RequestHeaders: map[string]string{}, CreatedAt: now}
			}
			return tx.DeliveryFail(ctx, as, now)
		})
		require.Len(t, expired, 1)
		require.Equal(t, held.ID, expired[0].ID)
		var n int
		require.Equal(t, webhook.DeliveryFailed, deliveryState(t, b, held.ID))
		require.Equal(t, webhook.DeliveryHeld, deliveryState(t, b, recent.ID))
		logs, err := b.st.AttemptList(ctx, &store.AttemptListParams{ListParams: store.ListParams{AccountID: b.acct.ID, Limit: 10}, WebhookID: w.ID})
		require.NoError(t, err)
		require.Equal(t, "expired while paused", logs[0].Error)

		tx(t, b.st, func(tx store.Tx) error {
			var err error
			n, err = tx.AttemptPrune(ctx, cutoff, 10)
			return err
		})
		require.Equal(t, 1, n, "only the old attempt goes")
		_, err = b.st.DeliveryGet(ctx, b.acct.ID, old.ID)
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "its finished delivery goes with it")
	})

	t.Run("SettingsRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var before, after string
		tx(t, b.st, func(tx store.Tx) error {
			var err error
			if before, err = tx.SettingGet(ctx, "x"); err != nil {
				return err
			}
			if err := tx.SettingSet(ctx, "x", "1"); err != nil {
				return err
			}
			if err := tx.SettingSet(ctx, "x", "2"); err != nil {
				return err
			}
			after, err = tx.SettingGet(ctx, "x")
			return err
		})
		require.Equal(t, "", before)
		require.Equal(t, "2", after)
	})

	t.Run("ConcurrentTransactionsFailAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var wg sync.WaitGroup
		results := make([]error, 40)
		ids := make([]string, 40)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i] = randid.New("wh_")
				results[i] = b.st.Tx(ctx, func(tx store.Tx) error {
					w := &webhook.Webhook{ID: ids[i], AccountID: b.acct.ID, Name: "n", URL: "https://x.test", Events: []string{webhook.ProposalCreated},
						IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
					if err := tx.WebhookInsert(ctx, w); err != nil {
						return err
					}
					if i%2 == 1 {
						return fmt.Errorf("caller %d fails", i)
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i, err := range results {
			_, getErr := b.st.WebhookGet(ctx, b.acct.ID, ids[i])
			if i%2 == 1 {
				require.Error(t, err)
				require.Equal(t, errs.NotFound, errs.CodeOf(getErr), "a failed caller's writes are rolled back")
			} else {
				require.NoError(t, err)
				require.NoError(t, getErr, "other callers' writes commit")
			}
		}
	})
}

// publishTx writes an event of eventType at at and one delivery for each of the account's webhooks
// subscribed to it (held for paused ones), through the store alone.
func publishTx(ctx context.Context, tx store.Tx, accountID, eventType string, at time.Time) ([]*webhook.Delivery, error) {
	hooks, err := tx.WebhookListSubscribed(ctx, accountID, eventType)
	if err != nil {
		return nil, err
	}
	e := &webhook.Event{ID: randid.New("evt_"), AccountID: accountID, Type: eventType, OccurredAt: at}
	if err := tx.EventInsert(ctx, e); err != nil {
		return nil, err
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	ds := make([]*webhook.Delivery, len(hooks))
	for i, w := range hooks {
		state := webhook.DeliveryPending
		if !w.IsActive {
			state = webhook.DeliveryHeld
		}
		ds[i] = &webhook.Delivery{ID: randid.New("dlv_"), AccountID: accountID, WebhookID: w.ID, EventID: e.ID,
			EventType: eventType, Body: []byte(`{"event":"` + eventType + `","webhook_id":"` + w.ID + `","data":{"k":"v"}}`),
			State: state, NextAttemptAt: at, CreatedAt: at}
	}
	return ds, tx.DeliveryInsert(ctx, ds)
}
