package app

import (
	"cmp"
	"context"
	"time"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// DeliveryFilter narrows a webhook's deliveries (SPEC §10 list).
type DeliveryFilter struct {
	Status    webhook.DeliveryState // "": all
	EventType string                // "": all
	// Since and Until bound created_at to [Since, Until); zero: unbounded.
	Since, Until time.Time
}

// checkEventType accepts "" (any), a catalogue event and the test event.
func checkEventType(field, t string) error {
	if t != "" && t != webhook.TestEvent && !webhook.InCatalogue(t) {
		return errs.Field(field, "is not an event type; see GET /webhook-events")
	}
	return nil
}

// checkRange rejects a range whose since is not before its until.
func checkRange(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return errs.Field("until", "must be after since")
	}
	return nil
}

// ListDeliveries returns one page of a webhook's deliveries, newest first.
func (a *App) ListDeliveries(ctx context.Context, accountID, webhookID string, f DeliveryFilter, limit int, cursor string) (*Page[*store.DeliveryInfo], error) {
	if _, err := a.GetWebhook(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	if err := checkEventType("event", f.EventType); err != nil {
		return nil, err
	}
	if err := checkRange(f.Since, f.Until); err != nil {
		return nil, err
	}
	p, err := listParams(accountID, limit, cursor)
	if err != nil {
		return nil, err
	}
	ds, err := a.Store.DeliveryList(ctx, &store.DeliveryListParams{ListParams: *p, WebhookID: webhookID,
		State: f.Status, EventType: f.EventType, Since: f.Since, Until: f.Until})
	if err != nil {
		return nil, err
	}
	return page(ds, p.Limit-1, func(d *store.DeliveryInfo) string { return d.ID }), nil
}

// DeliveryDetail is a delivery with its attempts, newest first.
type DeliveryDetail struct {
	*store.DeliveryInfo
	Attempts []*webhook.Attempt
}

// deliveryAttemptsMax bounds the attempts shown with a delivery: a schedule makes six, and only
// resends add more.
const deliveryAttemptsMax = ListLimitMax

// GetDelivery returns one of a webhook's deliveries with its attempts.
func (a *App) GetDelivery(ctx context.Context, accountID, webhookID, id string) (*DeliveryDetail, error) {
	ref := &store.DeliveryRef{AccountID: accountID, WebhookID: webhookID, ID: id}
	if _, err := a.GetWebhook(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	if !webhook.ValidID("dlv_", id) {
		return nil, errs.ErrNotFound
	}
	d, err := a.Store.DeliveryInfoGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	as, err := a.Store.AttemptListByDelivery(ctx, ref, deliveryAttemptsMax)
	if err != nil {
		return nil, err
	}
	if as == nil {
		as = []*webhook.Attempt{}
	}
	return &DeliveryDetail{DeliveryInfo: d, Attempts: as}, nil
}

// RetryDeliveryInfo is RetryDelivery (SPEC §10 retry now) answering with the delivery as the
// deliveries API shows it.
func (a *App) RetryDeliveryInfo(ctx context.Context, accountID, webhookID, id string) (*store.DeliveryInfo, error) {
	if _, err := a.RetryDelivery(ctx, accountID, webhookID, id); err != nil {
		return nil, err
	}
	return a.Store.DeliveryInfoGet(ctx, &store.DeliveryRef{AccountID: accountID, WebhookID: webhookID, ID: id})
}

// RecoverInput is the range of a recover: events whose timestamp is in [Since, Until); a zero Until
// is unbounded.
type RecoverInput struct {
	Since, Until time.Time
}

// recoverParams validates in for the webhook's recover.
func (a *App) recoverParams(accountID, webhookID string, in RecoverInput) (*store.DeliveryRecoverParams, error) {
	now := a.Now()
	f := errs.Fields{}
	retention := cmp.Or(a.LogRetention, delivery.LogRetentionDefault)
	switch {
	case in.Since.IsZero():
		f.Add("since", "is required")
	case in.Since.Before(now.Add(-retention)):
		f.Add("since", "is older than the log retention ("+retention.String()+"): nothing that old is kept")
	}
	if err := checkRange(in.Since, in.Until); err != nil {
		f.Add("until", "must be after since")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return &store.DeliveryRecoverParams{AccountID: accountID, WebhookID: webhookID, Since: in.Since,
		Until: in.Until, Now: now}, nil
}

// CountRecoverable says how many deliveries RecoverDeliveries would recover now, for the console's
// confirmation.
func (a *App) CountRecoverable(ctx context.Context, accountID, webhookID string, in RecoverInput) (int, error) {
	if _, err := a.GetWebhook(ctx, accountID, webhookID); err != nil {
		return 0, err
	}
	p, err := a.recoverParams(accountID, webhookID, in)
	if err != nil {
		return 0, err
	}
	return a.Store.DeliveryCountRecoverable(ctx, p)
}

// RecoverBatch is how many deliveries one transaction of a recover moves (store.DeliveryRecoverBatch).
const RecoverBatch = store.DeliveryRecoverBatch

// RecoverDeliveries makes every failed delivery of the webhook whose event happened in the range
// pending again, due now with a fresh schedule (held while the webhook is paused), and returns how
// many. The dispatcher is woken after the first batch commits.
func (a *App) RecoverDeliveries(ctx context.Context, accountID, webhookID string, in RecoverInput) (int, error) {
	if _, err := a.GetWebhook(ctx, accountID, webhookID); err != nil {
		return 0, err
	}
	p, err := a.recoverParams(accountID, webhookID, in)
	if err != nil {
		return 0, err
	}
	p.Limit = RecoverBatch
	total := 0
	for {
		var n int
		err := a.Store.Tx(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.DeliveryRecover(ctx, p)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n > 0 {
			a.notify()
		}
		if n < RecoverBatch {
			return total, nil
		}
	}
}

// StatsWindow is the window of the stats' outcome counts.
const StatsWindow = 24 * time.Hour

// WebhookStats returns the webhook's pending and held counts and its outcomes of the last 24 h.
func (a *App) WebhookStats(ctx context.Context, accountID, webhookID string) (*store.WebhookStats, error) {
	if _, err := a.GetWebhook(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	return a.Store.WebhookStatsGet(ctx, webhookID, a.Now().Add(-StatsWindow))
}

// EventFilter narrows an account's events.
type EventFilter struct {
	Type string // "": all
	// Since and Until bound the timestamp to [Since, Until); zero: unbounded.
	Since, Until time.Time
}

// ListEvents returns one page of the account's events but test events, newest first.
func (a *App) ListEvents(ctx context.Context, accountID string, f EventFilter, limit int, cursor string) (*Page[*webhook.Event], error) {
	if f.Type != "" && !webhook.InCatalogue(f.Type) {
		return nil, errs.Field("type", "is not an event type; see GET /webhook-events")
	}
	if err := checkRange(f.Since, f.Until); err != nil {
		return nil, err
	}
	p, err := listParams(accountID, limit, cursor)
	if err != nil {
		return nil, err
	}
	es, err := a.Store.EventList(ctx, &store.EventListParams{ListParams: *p, Type: f.Type, Since: f.Since, Until: f.Until})
	if err != nil {
		return nil, err
	}
	return page(es, p.Limit-1, func(e *webhook.Event) string { return e.ID }), nil
}

// EventDetail is an event with its deliveries, oldest first.
type EventDetail struct {
	*webhook.Event
	Deliveries []*webhook.Delivery
}

// GetEvent returns one of the account's events with its deliveries.
func (a *App) GetEvent(ctx context.Context, accountID, id string) (*EventDetail, error) {
	if !webhook.ValidID("evt_", id) {
		return nil, errs.ErrNotFound
	}
	e, err := a.Store.EventGet(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	ds, err := a.Store.DeliveryListByEvent(ctx, accountID, id)
	if err != nil {
		return nil, err
	}
	if ds == nil {
		ds = []*webhook.Delivery{}
	}
	return &EventDetail{Event: e, Deliveries: ds}, nil
}
