package delivery

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// publishHanded publishes one proposal.created event with a Handoff of d in a transaction that
// commits, or fails after the publish when fail is set, and returns the deliveries as written.
func (b *dispatcherBundle) publishHanded(t *testing.T, d *Dispatcher, fail bool) []*webhook.Delivery {
	t.Helper()
	h := d.Handoff()
	var ds []*webhook.Delivery
	err := b.st.Tx(t.Context(), func(tx store.Tx) error {
		var err error
		if _, ds, err = Publish(t.Context(), tx, h, b.accountID, webhook.ProposalCreated, map[string]int{}, b.clock.Now()); err != nil || !fail {
			return err
		}
		return errInjected
	})
	h.Done(err)
	if fail {
		require.ErrorIs(t, err, errInjected)
	} else {
		require.NoError(t, err)
	}
	return ds
}

// inflightNow returns how many attempts the dispatcher counts in flight.
func inflightNow(d *Dispatcher) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inflight.total
}

// TestHandoffAttemptsWithoutAClaim: once a webhook answers, a publish with a Handoff writes its
// delivery leased and the commit starts the attempt: it arrives, and succeeds, while every claim fails.
// The receiver holds that attempt until the lease has been read: an attempt that ended first would
// have cleared it.
func TestHandoffAttemptsWithoutAClaim(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	g := b.gate(t)
	rcv := firstThenGate(t, g)
	id := b.webhook(t, rcv.srv.URL)
	d := b.dispatcher(t, nil)

	ds := b.publishHanded(t, d, false)
	require.True(t, ds[0].LockedUntil.IsZero(), "a webhook that has not answered yet: written due, for a claim")
	d.Notify(id)
	nextReq(t, rcv)
	answeringHere(t, d, id)

	b.st.failClaims.Store(true)
	ds = b.publishHanded(t, d, false)
	require.False(t, ds[0].LockedUntil.IsZero(), "handed off: written leased")
	require.Equal(t, ds[0].EventID, nextReq(t, rcv).header.Get("webhook-id"))
	stored := b.delivery(t, ds[0].ID)
	require.Equal(t, ds[0].LockedUntil, stored.LockedUntil, "leased in the database, so no claim takes it too")
	g.release()
	waitDone(t, b, ds[0].ID)
}

// TestHandoffTakesOnlyWhatWouldStartAtOnce: a transaction that fails gives the slot it took back
// and sends nothing; a webhook at its cap, or with a rate limit, gets its delivery written due.
func TestHandoffTakesOnlyWhatWouldStartAtOnce(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	g := b.gate(t)
	capped := firstThenGate(t, g)
	rated := newReceiver(t, nil)
	cappedID := b.webhook(t, capped.srv.URL)
	ratedID := b.webhook(t, rated.srv.URL)
	require.NoError(t, b.st.Tx(t.Context(), func(tx store.Tx) error {
		w, err := tx.WebhookGet(t.Context(), b.accountID, ratedID)
		if err != nil {
			return err
		}
		w.RateLimit = 1000
		return tx.WebhookUpdate(t.Context(), w)
	}))
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.PerWebhook = 1 })
	b.publish(t, 1)
	d.Notify()
	nextReq(t, capped)
	nextReq(t, rated)
	answeringHere(t, d, cappedID)
	answeringHere(t, d, ratedID)

	ds := b.publishHanded(t, d, true)
	leased := func(id string) bool {
		i := slices.IndexFunc(ds, func(dl *webhook.Delivery) bool { return dl.WebhookID == id })
		return !ds[i].LockedUntil.IsZero()
	}
	require.True(t, leased(cappedID), "taken inside the transaction")
	require.False(t, leased(ratedID), "a webhook with a rate limit: due, for a claim to spend it")
	require.Zero(t, inflightNow(d), "the failed transaction gave its slot back")
	_, err := b.st.DeliveryGet(t.Context(), b.accountID, ds[0].ID)
	require.ErrorIs(t, err, errs.ErrNotFound, "and wrote nothing")

	ds = b.publishHanded(t, d, false)
	require.True(t, leased(cappedID))
	require.Equal(t, eventOf(ds, cappedID), nextReq(t, capped).header.Get("webhook-id"), "the committed one, not the rolled back one")
	ds = b.publishHanded(t, d, false) // the first is held at the receiver
	require.False(t, leased(cappedID), "at its cap: due, for a claim once a slot frees")
	require.Empty(t, capped.reqs, "no second attempt while the first is in flight")
}

// eventOf returns the event id of the delivery to webhookID among ds.
func eventOf(ds []*webhook.Delivery, webhookID string) string {
	i := slices.IndexFunc(ds, func(dl *webhook.Delivery) bool { return dl.WebhookID == webhookID })
	return ds[i].EventID
}
