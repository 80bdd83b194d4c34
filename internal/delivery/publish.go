// Package delivery turns events into signed HTTP POSTs: publishing (events and their deliveries,
// written in the caller's transaction), the dispatcher (claims, leases, per-webhook caps), the sender
// (signing, SSRF-safe dialing, timeouts) and the retry policy.
package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Publish writes an event of eventType with data, in tx, and one delivery for each of the account's
// webhooks subscribed to it (held for paused ones). Nothing is sent unless tx commits. h (nil: none)
// takes the deliveries that can be attempted at once, written leased (LockedUntil set); the rest are
// written due. It returns the event and its deliveries.
func Publish(ctx context.Context, tx store.Tx, h *Handoff, accountID, eventType string, data any, now time.Time) (*webhook.Event, []*webhook.Delivery, error) {
	hooks, err := tx.WebhookListSubscribed(ctx, accountID, eventType)
	if err != nil {
		return nil, nil, fmt.Errorf("publish %s: %w", eventType, err)
	}
	return publishTo(ctx, tx, h, accountID, eventType, data, now, hooks, time.Time{})
}

// publishTest writes a test event of eventType (SPEC §13: any catalogue event, or "test") with data
// for w alone (paused or not) and returns its delivery, already leased until lease by the caller, who
// sends it at once. The event is marked as a test whatever its type: it goes to w alone and is never
// retried.
func publishTest(ctx context.Context, tx store.Tx, w *webhook.Webhook, eventType string, data any, now, lease time.Time) (*webhook.Delivery, error) {
	active := *w
	active.IsActive = true
	_, ds, err := publishTo(ctx, tx, nil, w.AccountID, eventType, data, now, []*webhook.Webhook{&active}, lease)
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

func publishTo(ctx context.Context, tx store.Tx, h *Handoff, accountID, eventType string, data any, now time.Time, hooks []*webhook.Webhook, lease time.Time) (*webhook.Event, []*webhook.Delivery, error) {
	now = now.UTC()
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return nil, nil, fmt.Errorf("publish %s: encode data: %w", eventType, err)
	}
	test := !lease.IsZero() // only a test is inserted leased, to its sender
	// The event keeps its data (GET /events), so events no webhook took can be caught up on too.
	e := &webhook.Event{ID: randid.New("evt_"), AccountID: accountID, Type: eventType, OccurredAt: now, Test: test, Data: dataJSON}
	if err := tx.EventInsert(ctx, e); err != nil {
		return nil, nil, fmt.Errorf("publish %s: %w", eventType, err)
	}
	if len(hooks) == 0 {
		return e, nil, nil
	}
	ds := make([]*webhook.Delivery, len(hooks))
	for i, w := range hooks {
		state := webhook.DeliveryPending
		if !w.IsActive {
			state = webhook.DeliveryHeld
		}
		// Rendered now, in the webhook's format of now: a later change of format affects only the
		// events published after it, and every retry re-sends these bytes.
		body, err := render.Body(render.Format(w.Format), render.Event{Type: eventType, Timestamp: now, WebhookID: w.ID, Data: dataJSON})
		if err != nil {
			return nil, nil, fmt.Errorf("publish %s to %s: %w", eventType, w.ID, err)
		}
		ds[i] = &webhook.Delivery{
			ID: randid.New("dlv_"), AccountID: accountID, WebhookID: w.ID, EventID: e.ID,
			EventType: eventType, Body: body, State: state,
			NextAttemptAt: now, CreatedAt: now, Test: test,
		}
		if !lease.IsZero() {
			ds[i].NextAttemptAt, ds[i].LockedUntil = lease, lease
		} else {
			h.take(w, ds[i], now)
		}
	}
	if err := tx.DeliveryInsert(ctx, ds); err != nil {
		return nil, nil, fmt.Errorf("publish %s: %w", eventType, err)
	}
	return e, ds, nil
}
