package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// runDeliveriesRead checks the reads of SPEC §10 and recover against a plain model: pages walked
// with every combination of cursor and range return exactly the rows the rule picks, in order.
func runDeliveriesRead(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st, acct := openWithAccount(t, open)
	w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: acct.ID, Name: "CRM", URL: "https://example.com/hook",
		Events: []string{webhook.ProposalCreated, webhook.ProposalUpdated}, IsActive: true, Secret: webhook.NewSecret(),
		CreatedAt: base, UpdatedAt: base}
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.WebhookInsert(ctx, w) }))
	type row struct {
		id, event, typ string
		at             time.Time
	}
	var rows []row // oldest first
	// 40 events over 20 seconds (two per time, so ties are broken by seq), alternating types, and a
	// test event and an event no webhook takes among them.
	for i := range 40 {
		at := base.Add(time.Duration(i/2) * time.Second)
		typ := webhook.ProposalCreated
		if i%2 == 1 {
			typ = webhook.ProposalUpdated
		}
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			e, ds, err := publishData(ctx, tx, acct.ID, typ, fmt.Sprintf(`{"i":%d}`, i), at)
			if err == nil {
				rows = append(rows, row{ds[0].ID, e.ID, typ, at})
			}
			return err
		}))
	}
	var lonely *webhook.Event
	var testDelivery *webhook.Delivery
	require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
		var err error
		if lonely, _, err = publishData(ctx, tx, acct.ID, webhook.LeadSessionCreated, `{"n":1}`, base.Add(time.Hour)); err != nil {
			return err
		}
		// A test delivery, leased for long as its sender leaves it: its caller attempts it; no claim
		// below takes it.
		at, lease := base.Add(2*time.Hour), base.Add(100*time.Hour)
		e := &webhook.Event{ID: randid.New("evt_"), AccountID: acct.ID, Type: webhook.TestEvent, OccurredAt: at,
			Test: true, Data: []byte(`{"t":1}`)}
		testDelivery = &webhook.Delivery{ID: randid.New("dlv_"), AccountID: acct.ID, WebhookID: w.ID, EventID: e.ID,
			EventType: e.Type, Body: []byte(`{"event":"test"}`), State: webhook.DeliveryPending, NextAttemptAt: lease,
			LockedUntil: lease, CreatedAt: at, Test: true}
		if err = tx.EventInsert(ctx, e); err != nil {
			return err
		}
		return tx.DeliveryInsert(ctx, []*webhook.Delivery{testDelivery})
	}))

	t.Run("DeliveryPages", func(t *testing.T) {
		for _, c := range []struct {
			since, until time.Time
			typ          string
		}{
			{}, {since: base.Add(5 * time.Second)}, {until: base.Add(12 * time.Second)},
			{since: base.Add(3 * time.Second), until: base.Add(9 * time.Second)}, {typ: webhook.ProposalUpdated},
		} {
			var want []string
			if c.until.IsZero() && c.typ == "" { // the test delivery is a delivery like any other, the newest
				want = append(want, testDelivery.ID)
			}
			for i := len(rows) - 1; i >= 0; i-- {
				r := rows[i]
				if (c.since.IsZero() || !r.at.Before(c.since)) && (c.until.IsZero() || r.at.Before(c.until)) && (c.typ == "" || r.typ == c.typ) {
					want = append(want, r.id)
				}
			}
			var got []string
			after := ""
			for {
				ds, err := st.DeliveryList(ctx, &store.DeliveryListParams{ListParams: store.ListParams{AccountID: acct.ID, Limit: 3, After: after},
					WebhookID: w.ID, EventType: c.typ, Since: c.since, Until: c.until})
				require.NoError(t, err)
				for _, d := range ds {
					got = append(got, d.ID)
				}
				if len(ds) < 3 {
					break
				}
				after = ds[len(ds)-1].ID
			}
			require.Equal(t, want, got, "%+v", c)
		}
		_, err := st.DeliveryList(ctx, &store.DeliveryListParams{ListParams: store.ListParams{AccountID: "acct_other", Limit: 3},
			WebhookID: w.ID})
		require.NoError(t, err)
	})

	t.Run("EventPages", func(t *testing.T) {
		var want []string
		for i := len(rows) - 1; i >= 0; i-- {
			if !rows[i].at.Before(base.Add(4*time.Second)) && rows[i].at.Before(base.Add(15*time.Second)) {
				want = append(want, rows[i].event)
			}
		}
		var got []string
		after := ""
		for {
			es, err := st.EventList(ctx, &store.EventListParams{ListParams: store.ListParams{AccountID: acct.ID, Limit: 4, After: after},
				Since: base.Add(4 * time.Second), Until: base.Add(15 * time.Second)})
			require.NoError(t, err)
			for _, e := range es {
				got = append(got, e.ID)
			}
			if len(es) < 4 {
				break
			}
			after = es[len(es)-1].ID
		}
		require.Equal(t, want, got)
		all, err := st.EventList(ctx, &store.EventListParams{ListParams: store.ListParams{AccountID: acct.ID, Limit: 100}})
		require.NoError(t, err)
		require.Len(t, all, 41, "every event but the test one")
		require.Equal(t, lonely.ID, all[0].ID)
		require.JSONEq(t, `{"n":1}`, string(all[0].Data))
		ds, err := st.DeliveryListByEvent(ctx, acct.ID, lonely.ID)
		require.NoError(t, err)
		require.Empty(t, ds)
		_, err = st.EventGet(ctx, "acct_other", lonely.ID)
		require.Error(t, err)
	})

	t.Run("RecoverAndStats", func(t *testing.T) {
		// Fail every delivery: claim them all and record a final failure.
		now := base.Add(3 * time.Hour)
		var cs []*store.ClaimedDelivery
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			var err error
			cs, err = ClaimDue(ctx, tx, now, now.Add(time.Minute), 100)
			return err
		}))
		require.Len(t, cs, 40) // the test delivery is leased by its caller
		var outs []*store.DeliveryOutcome
		for _, c := range cs {
			outs = append(outs, &store.DeliveryOutcome{Attempt: &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID,
				WebhookID: c.WebhookID, AccountID: c.AccountID, EventID: c.EventID, EventType: c.EventType, Number: 1,
				StatusCode: 503, Error: "HTTP 503", CreatedAt: now}, LeaseUntil: c.LeaseUntil, State: webhook.DeliveryFailed})
		}
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryComplete(ctx, outs, nil) }))
		s, err := st.WebhookStatsGet(ctx, w.ID, now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, int64(40), s.Failed)
		require.Equal(t, now, s.LastFailureAt)
		require.True(t, s.LastSuccessAt.IsZero())
		d, err := st.DeliveryInfoGet(ctx, &store.DeliveryRef{AccountID: acct.ID, WebhookID: w.ID, ID: rows[0].id})
		require.NoError(t, err)
		require.Equal(t, 503, d.LastStatusCode)
		require.Equal(t, "HTTP 503", d.LastError)
		require.Equal(t, now, d.LastAttemptAt)

		p := &store.DeliveryRecoverParams{AccountID: acct.ID, WebhookID: w.ID, Since: base.Add(2 * time.Second),
			Until: base.Add(6 * time.Second), Now: now.Add(time.Minute)}
		n, err := st.DeliveryCountRecoverable(ctx, p)
		require.NoError(t, err)
		require.Equal(t, 8, n)
		other := *p
		other.AccountID = "acct_other"
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			n, err := tx.DeliveryRecover(ctx, &other)
			require.Zero(t, n, "another account recovers nothing")
			if errs.CodeOf(err) == errs.NotFound { // PostgreSQL looks the webhook up first to lock it
				return nil
			}
			return err
		}))
		// In two calls, as the app batches it: a limit of 3, then the rest.
		limited := *p
		limited.Limit = 3
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			n, err = tx.DeliveryRecover(ctx, &limited)
			return err
		}))
		require.Equal(t, 3, n)
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			n, err = tx.DeliveryRecover(ctx, p)
			return err
		}))
		require.Equal(t, 5, n)
		pending, err := st.DeliveryList(ctx, &store.DeliveryListParams{ListParams: store.ListParams{AccountID: acct.ID, Limit: 100},
			WebhookID: w.ID, State: webhook.DeliveryPending})
		require.NoError(t, err)
		var got []string
		for _, d := range pending {
			if d.ID == testDelivery.ID {
				continue
			}
			got = append(got, d.ID)
			require.Equal(t, p.Now, d.NextAttemptAt, "due now")
			require.Zero(t, d.Retries, "a fresh schedule")
			require.Equal(t, 1, d.Attempts, "attempts go on counting")
		}
		var want []string
		for _, r := range rows {
			if !r.at.Before(p.Since) && r.at.Before(p.Until) {
				want = append(want, r.id)
			}
		}
		slices.Reverse(want)
		require.Equal(t, want, got)
		s, err = st.WebhookStatsGet(ctx, w.ID, now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, int64(8), s.Pending, "the recovered ones; the pending test delivery is its request's to send")
		require.Equal(t, int64(32), s.Failed)
	})
}

// publishData is publishTx with the event's data kept on the event (as delivery.Publish keeps it,
// which this package cannot import: delivery's tests import storetest). It returns the event too.
func publishData(ctx context.Context, tx store.Tx, accountID, eventType, data string, at time.Time) (*webhook.Event, []*webhook.Delivery, error) {
	hooks, err := tx.WebhookListSubscribed(ctx, accountID, eventType)
	if err != nil {
		return nil, nil, err
	}
	e := &webhook.Event{ID: randid.New("evt_"), AccountID: accountID, Type: eventType, OccurredAt: at, Data: []byte(data)}
	if err := tx.EventInsert(ctx, e); err != nil {
		return nil, nil, err
	}
	ds := make([]*webhook.Delivery, len(hooks))
	for i, w := range hooks {
		state := webhook.DeliveryPending
		if !w.IsActive {
			state = webhook.DeliveryHeld
		}
		ds[i] = &webhook.Delivery{ID: randid.New("dlv_"), AccountID: accountID, WebhookID: w.ID, EventID: e.ID,
			EventType: eventType, Body: []byte(`{"event":"` + eventType + `","data":` + data + `}`),
			State: state, NextAttemptAt: at, CreatedAt: at}
	}
	if len(ds) == 0 {
		return e, nil, nil
	}
	return e, ds, tx.DeliveryInsert(ctx, ds)
}
