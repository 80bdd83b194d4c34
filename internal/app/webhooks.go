package app

import (
	"cmp"
	"context"
	"net/netip"
	"net/url"
	"time"

	"golang.org/x/net/idna"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/netguard"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// WebhookInput is a create or update request; nil fields are left out (on update: keep their value).
type WebhookInput struct {
	Name     *string
	URL      *string
	Events   *[]string
	IsActive *bool
	// Format is "json", "slack" or "discord" (SPEC §12).
	Format *string
	// Headers replaces every custom header; an empty map removes them all.
	Headers *map[string]string
	// RateLimit is attempts started per second; 0 removes the limit.
	RateLimit *int
}

// validate checks in and applies it to w.
func (a *App) validate(in WebhookInput, w *webhook.Webhook) error {
	f := errs.Fields{}
	if in.Name != nil {
		w.Name = webhook.ValidateName(f, *in.Name)
	}
	if in.URL != nil {
		if u := webhook.ValidateURL(f, *in.URL, a.AllowPrivateTargets); u != nil && !a.AllowPrivateTargets {
			if ip, err := netip.ParseAddr(dialledHost(u)); err == nil && netguard.Refused(ip) {
				f.Add("url", "must not point to a private, loopback or link-local address")
			}
		}
		w.URL = *in.URL
	}
	if in.Events != nil {
		w.Events = webhook.NormalizeEvents(f, *in.Events)
	}
	if in.IsActive != nil {
		w.SetActive(*in.IsActive)
	}
	if in.Format != nil {
		webhook.ValidateFormat(f, *in.Format)
		w.Format = *in.Format
	}
	if in.Headers != nil {
		webhook.ValidateHeaders(f, *in.Headers)
		w.Headers = *in.Headers
	}
	if in.RateLimit != nil {
		webhook.ValidateRateLimit(f, *in.RateLimit)
		w.RateLimit = *in.RateLimit
	}
	return f.Err()
}

// CreateWebhook creates a webhook and returns it with its secret, which is never shown again.
func (a *App) CreateWebhook(ctx context.Context, accountID string, in WebhookInput) (*webhook.Webhook, error) {
	f := errs.Fields{}
	if in.Name == nil {
		f.Add("name", "is required")
	}
	if in.URL == nil {
		f.Add("url", "is required")
	}
	if in.Events == nil {
		f.Add("events", "is required")
	}
	now := a.Now()
	w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: accountID, IsActive: true,
		Secret: webhook.NewSecret(), Format: webhook.FormatJSON, CreatedAt: now, UpdatedAt: now}
	if err := a.validate(in, w); err != nil {
		for k, v := range err.(*errs.Error).Fields {
			f.Add(k, v)
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		// Counted in the transaction that inserts, with the lock that makes concurrent creates of the
		// account count one after the other, so none of them can pass the cap.
		n, err := tx.WebhookCountForUpdate(ctx, accountID)
		if err != nil {
			return err
		}
		if max := cmp.Or(a.MaxWebhooks, MaxWebhooksDefault); max >= 0 && n >= max {
			return errs.Errorf(errs.LimitReached, "This account already has %d webhooks, the most it may have; delete one to create another.", max)
		}
		return tx.WebhookInsert(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ListWebhooks returns one page of the account's webhooks, newest first.
func (a *App) ListWebhooks(ctx context.Context, accountID string, limit int, cursor string) (*Page[*webhook.Webhook], error) {
	p, err := listParams(accountID, limit, cursor)
	if err != nil {
		return nil, err
	}
	ws, err := a.Store.WebhookList(ctx, p)
	if err != nil {
		return nil, err
	}
	return page(ws, p.Limit-1, func(w *webhook.Webhook) string { return w.ID }), nil
}

// GetWebhook returns one of the account's webhooks.
func (a *App) GetWebhook(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	if !idsValid(id) {
		return nil, errs.ErrNotFound
	}
	return a.Store.WebhookGet(ctx, accountID, id)
}

// UpdateWebhook changes the fields given; is_active pauses or resumes delivery.
func (a *App) UpdateWebhook(ctx context.Context, accountID, id string, in WebhookInput) (*webhook.Webhook, error) {
	if !idsValid(id) {
		return nil, errs.ErrNotFound
	}
	var w *webhook.Webhook
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		var err error
		if w, err = tx.WebhookGetForUpdate(ctx, accountID, id); err != nil {
			return err
		}
		if err := a.validate(in, w); err != nil {
			return err
		}
		w.UpdatedAt = a.Now()
		return tx.WebhookUpdate(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	a.notify() // a resume releases held deliveries
	return w, nil
}

// DeleteWebhook deletes a webhook and cancels its pending deliveries.
func (a *App) DeleteWebhook(ctx context.Context, accountID, id string) error {
	if !idsValid(id) {
		return errs.ErrNotFound
	}
	return a.Store.Tx(ctx, func(tx store.Tx) error {
		return tx.WebhookDelete(ctx, &store.WebhookDeleteParams{AccountID: accountID, ID: id, Now: a.Now()})
	})
}

// RegenerateSecret gives the webhook a new secret and returns it; the previous one keeps signing
// webhook-signature for webhook.SecretOverlap.
func (a *App) RegenerateSecret(ctx context.Context, accountID, id string) (*webhook.Webhook, error) {
	if !idsValid(id) {
		return nil, errs.ErrNotFound
	}
	var w *webhook.Webhook
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		var err error
		if w, err = tx.WebhookGetForUpdate(ctx, accountID, id); err != nil {
			return err
		}
		now := a.Now()
		w.PreviousSecret, w.PreviousSecretExpiresAt = w.Secret, now.Add(webhook.SecretOverlap)
		w.Secret, w.UpdatedAt = webhook.NewSecret(), now
		return tx.WebhookUpdate(ctx, w)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// TestWebhook sends one test event to the webhook now, paused or not, and returns the attempt's log
// entry. The attempt is not retried.
func (a *App) TestWebhook(ctx context.Context, accountID, id string) (*webhook.Attempt, error) {
	return a.TestWebhookEvent(ctx, accountID, id, webhook.TestEvent)
}

// TestWebhookEvent is TestWebhook of an event of type event (SPEC §13): any catalogue event, with
// the catalogue's example data, or "test" ("" too), with the sample proposal. The body is written in
// the webhook's format and the attempt carries X-Quikly-Test: true.
func (a *App) TestWebhookEvent(ctx context.Context, accountID, id, event string) (*webhook.Attempt, error) {
	if !idsValid(id) {
		return nil, errs.ErrNotFound
	}
	if event == "" {
		event = webhook.TestEvent
	}
	if event != webhook.TestEvent && !webhook.InCatalogue(event) {
		return nil, errs.Field("event", "must be \"test\" or an event type; see GET /webhook-events")
	}
	return a.Tester.Send(ctx, &delivery.TestSendParams{AccountID: accountID, WebhookID: id, EventType: event,
		Data: func(now time.Time) any {
			if event == webhook.TestEvent {
				return proposal.SampleProposalData(a.BaseURL, now)
			}
			return webhook.ExampleData(event)
		}})
}

// LogFilter narrows a webhook's logs.
type LogFilter struct {
	Succeeded *bool
	EventType string
}

// ListLogs returns one page of a webhook's attempts, newest first.
func (a *App) ListLogs(ctx context.Context, accountID, webhookID string, f LogFilter, limit int, cursor string) (*Page[*webhook.Attempt], error) {
	if !idsValid(webhookID) {
		return nil, errs.ErrNotFound
	}
	if _, err := a.Store.WebhookGet(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	if f.EventType != "" && f.EventType != webhook.TestEvent && !webhook.InCatalogue(f.EventType) {
		return nil, errs.Field("event", "is not an event type; see GET /webhook-events")
	}
	p, err := listParams(accountID, limit, cursor)
	if err != nil {
		return nil, err
	}
	as, err := a.Store.AttemptList(ctx, &store.AttemptListParams{ListParams: *p, WebhookID: webhookID,
		Succeeded: f.Succeeded, EventType: f.EventType})
	if err != nil {
		return nil, err
	}
	return page(as, p.Limit-1, func(at *webhook.Attempt) string { return at.ID }), nil
}

// GetLog returns one attempt of a webhook.
func (a *App) GetLog(ctx context.Context, accountID, webhookID, logID string) (*webhook.Attempt, error) {
	if !idsValid(webhookID, logID) {
		return nil, errs.ErrNotFound
	}
	if _, err := a.Store.WebhookGet(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	return a.Store.AttemptGet(ctx, &store.AttemptGetParams{AccountID: accountID, WebhookID: webhookID, ID: logID})
}

// Resend retries the delivery of a log entry (SPEC §4, §15): RetryDelivery of that delivery.
func (a *App) Resend(ctx context.Context, accountID, webhookID, logID string) (*webhook.Delivery, error) {
	if !idsValid(webhookID, logID) {
		return nil, errs.ErrNotFound
	}
	at, err := a.GetLog(ctx, accountID, webhookID, logID)
	if err != nil {
		return nil, err
	}
	return a.RetryDelivery(ctx, accountID, webhookID, at.DeliveryID)
}

// RetryDelivery attempts a delivery now (SPEC §10 "retry now"). A pending one is made due now and
// its schedule goes on where it was; one already being attempted (leased) is left to that attempt.
// A succeeded or failed one is pending again, due now, with a fresh schedule, the same body and
// ids. A held or cancelled one is errs.Conflict. A test delivery is attempted here and now, once,
// as the test operation does: no dispatcher ever claims a test.
func (a *App) RetryDelivery(ctx context.Context, accountID, webhookID, deliveryID string) (*webhook.Delivery, error) {
	if !webhook.ValidID("wh_", webhookID) || !webhook.ValidID("dlv_", deliveryID) {
		return nil, errs.ErrNotFound
	}
	if err := a.waitTestTurn(ctx, accountID, webhookID, deliveryID); err != nil {
		return nil, err
	}
	now := a.Now()
	var d *webhook.Delivery
	var test *delivery.TestAttemptParams
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		w, err := tx.WebhookGet(ctx, accountID, webhookID)
		if err != nil {
			return err
		}
		if d, err = tx.DeliveryGetForUpdate(ctx, accountID, deliveryID); err != nil {
			return err
		}
		if d.WebhookID != webhookID {
			return errs.ErrNotFound
		}
		switch d.State {
		case webhook.DeliveryHeld:
			return errs.Errorf(errs.Conflict, "The delivery is held while its webhook is paused; resume the webhook to send it.")
		case webhook.DeliveryCancelled:
			return errs.Errorf(errs.Conflict, "The delivery was cancelled when its webhook was deleted; it cannot be sent again.")
		case webhook.DeliveryPending:
			if d.LockedUntil.After(now) {
				return nil // being attempted right now: a second attempt alongside would be a duplicate
			}
		}
		p := &store.DeliveryRetryParams{AccountID: accountID, ID: deliveryID, Now: now,
			FreshSchedule: d.State != webhook.DeliveryPending}
		if d.Test {
			p.LeaseUntil = a.Tester.LeaseUntil(now)
		}
		ok, err := tx.DeliveryRetry(ctx, p)
		if err != nil {
			return err
		}
		if !ok { // cannot happen under DeliveryGetForUpdate's lock; say so rather than claim success
			return errs.Errorf(errs.Conflict, "The delivery changed while it was being retried; try again.")
		}
		if d, err = tx.DeliveryGet(ctx, accountID, deliveryID); err != nil {
			return err
		}
		if d.Test {
			test = &delivery.TestAttemptParams{Webhook: w, Delivery: d, Now: now, LeaseUntil: p.LeaseUntil}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if test == nil {
		a.notify()
		return d, nil
	}
	if _, err := a.Tester.Attempt(ctx, test); err != nil {
		return nil, err
	}
	return a.Store.DeliveryGet(ctx, accountID, deliveryID)
}

// waitTestTurn waits for a test delivery's turn under its webhook's rate limit
// (delivery.Tester.WaitTurn), before RetryDelivery leases it; for any other delivery it returns at
// once, and so it does when a read fails: RetryDelivery's transaction reads them again and answers.
// A retry that then finds the test already being attempted has spent a turn, as an attempt would.
func (a *App) waitTestTurn(ctx context.Context, accountID, webhookID, deliveryID string) error {
	d, err := a.Store.DeliveryGet(ctx, accountID, deliveryID)
	if err != nil || !d.Test || d.WebhookID != webhookID {
		return nil
	}
	w, err := a.Store.WebhookGet(ctx, accountID, webhookID)
	if err != nil {
		return nil
	}
	return a.Tester.WaitTurn(ctx, w)
}

// idsValid reports whether webhookID (and attemptID, when given) have the shape of ids of their
// kind. Others name nothing: callers answer not found without a query, for the API and the console
// alike (PostgreSQL answers NUL or invalid UTF-8 with an error, not with no rows).
func idsValid(webhookID string, attemptID ...string) bool {
	return webhook.ValidID("wh_", webhookID) && (len(attemptID) == 0 || webhook.ValidID("att_", attemptID[0]))
}

// dialledHost is the host that the sender's HTTP client dials for u. net/http passes a host that is
// not ASCII through IDNA's lookup mapping first, which turns full-width digits and ideographic dots
// into ASCII ones: "https://１２７.０.０.１/" is a request to 127.0.0.1 (refused again at dial). The
// mapping leaves an ASCII IP address as it is and fails on an IPv6 one (its colons), which is then
// taken as it is.
func dialledHost(u *url.URL) string {
	if a, err := idna.Lookup.ToASCII(u.Hostname()); err == nil {
		return a
	}
	return u.Hostname()
}
