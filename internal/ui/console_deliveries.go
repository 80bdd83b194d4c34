package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// The console's deliveries view (SPEC §10): a webhook's deliveries, one row each, opening to their
// attempts; retry now; recover failed deliveries with a confirmation that counts them; events by id.

// consoleDeliveryPageSize is how many deliveries a page of the view shows.
const consoleDeliveryPageSize = 25

// deliveryRoutes registers the deliveries view's pages.
func (c *console) deliveryRoutes(mux *http.ServeMux) {
	c.route(mux, "/webhooks/{id}/deliveries", map[string]http.HandlerFunc{"GET": c.authed(c.handleDeliveryList)})
	c.route(mux, "/webhooks/{id}/deliveries/{delivery_id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleDeliveryView)})
	c.route(mux, "/webhooks/{id}/deliveries/{delivery_id}/retry", map[string]http.HandlerFunc{"POST": c.mutate(c.handleDeliveryRetry)})
	c.route(mux, "/webhooks/{id}/recover", map[string]http.HandlerFunc{"GET": c.authed(c.handleRecoverForm), "POST": c.mutate(c.handleRecover)})
	c.route(mux, "/events", map[string]http.HandlerFunc{"GET": c.authed(c.handleEventList)})
	c.route(mux, "/events/{id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleEventView)})
}

// consoleDeliveryNotices are the confirmations of this view's redirects, fixed texts as
// consoleNotices.
var consoleDeliveryNotices = map[string]string{
	"retried":   "Retry queued: the delivery will be attempted right away, with the same body and ids.",
	"recovered": "Failed deliveries recovered: they are being sent again, each with a fresh retry schedule.",
}

func consoleDeliveryNotice(code string) string {
	return cmp.Or(consoleNotice(code), consoleDeliveryNotices[code])
}

// consoleRelative says how far t is from now, both ways: "3 min ago", "in 2 h".
func consoleRelative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	if d := t.Sub(now); d >= time.Minute {
		return "in " + strings.TrimSuffix(consoleAgo(d), " ago")
	} else if d > 0 {
		return "in under a minute"
	}
	return consoleAgo(now.Sub(t))
}

// consoleDelivery is a delivery as pages show it.
type consoleDelivery struct {
	*store.DeliveryInfo
	now time.Time
}

// Badge is the badge class of the delivery's status.
func (d *consoleDelivery) Badge() string {
	switch d.State {
	case webhook.DeliverySucceeded:
		return "ok"
	case webhook.DeliveryFailed:
		return "bad"
	case webhook.DeliveryPending:
		return "pending"
	}
	return "paused"
}

// StatusText is the status in words.
func (d *consoleDelivery) StatusText() string {
	switch d.State {
	case webhook.DeliveryPending:
		if d.Attempts > 0 {
			return "Retrying"
		}
		return "Pending"
	case webhook.DeliveryHeld:
		return "Held (paused)"
	}
	return strings.ToUpper(string(d.State[:1])) + string(d.State[1:])
}

// LastOutcome says in words how the last attempt went: "HTTP 503 Service Unavailable", "timeout",
// or "" when nothing was attempted.
func (d *consoleDelivery) LastOutcome() string {
	switch {
	case d.LastStatusCode != 0:
		return strings.TrimSpace(fmt.Sprintf("HTTP %d %s", d.LastStatusCode, http.StatusText(d.LastStatusCode)))
	case d.LastError != "":
		return d.LastError
	case d.LastAttemptAt.IsZero():
		return ""
	}
	return "no response"
}

// HasNext reports whether the delivery will be attempted at NextAttemptAt.
func (d *consoleDelivery) HasNext() bool {
	return d.State == webhook.DeliveryPending && !d.NextAttemptAt.IsZero()
}

// CanRetry reports whether Retry now applies (held and cancelled deliveries refuse it).
func (d *consoleDelivery) CanRetry() bool {
	return d.State != webhook.DeliveryHeld && d.State != webhook.DeliveryCancelled
}

func (d *consoleDelivery) CreatedRel() string { return consoleRelative(d.CreatedAt, d.now) }
func (d *consoleDelivery) NextRel() string    { return consoleRelative(d.NextAttemptAt, d.now) }
func (d *consoleDelivery) LastRel() string    { return consoleRelative(d.LastAttemptAt, d.now) }

// consoleDeliveriesPage is the data of deliveries.html.
type consoleDeliveriesPage struct {
	consoleBase
	Webhook    *consoleWebhook
	Stats      *store.WebhookStats
	Deliveries []*consoleDelivery
	Status     string
	Event      string
	EventTypes []string
	Statuses   []consoleStatusTab
	NextCursor string
	Paged      bool
}

// consoleStatusTab is one status filter of the deliveries view.
type consoleStatusTab struct{ Value, Label string }

var consoleStatusTabs = []consoleStatusTab{{"pending", "Pending"}, {"held", "Held"}, {"succeeded", "Succeeded"},
	{"failed", "Failed"}, {"cancelled", "Cancelled"}}

// handleDeliveryList handles "GET /webhooks/{id}/deliveries" with ?status=, ?event= and ?cursor=.
func (c *console) handleDeliveryList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	var f app.DeliveryFilter
	for _, tab := range consoleStatusTabs { // an unknown filter shows everything rather than an error page
		if q.Get("status") == tab.Value {
			f.Status = webhook.DeliveryState(tab.Value)
		}
	}
	if ev := q.Get("event"); ev == webhook.TestEvent || webhook.InCatalogue(ev) {
		f.EventType = ev
	}
	cursor := q.Get("cursor")
	p, err := c.app.ListDeliveries(r.Context(), s.Account.ID, wh.ID, f, consoleDeliveryPageSize, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	stats, err := c.app.WebhookStats(r.Context(), s.Account.ID, wh.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	now := c.now()
	v := consoleWebhookOf(wh, now)
	page := &consoleDeliveriesPage{consoleBase: consoleBase{Title: "Deliveries · " + wh.Name, Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Deliveries"}), Wide: true,
		Notice: consoleDeliveryNotice(q.Get("notice"))}, Webhook: v, Stats: stats,
		Status: string(f.Status), Event: f.EventType, Statuses: consoleStatusTabs, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	page.EventTypes = append(page.EventTypes, webhook.TestEvent)
	for _, d := range p.Items {
		page.Deliveries = append(page.Deliveries, &consoleDelivery{d, now})
	}
	c.render(w, r, http.StatusOK, "deliveries.html", page)
}

// consoleDeliveryPage is the data of delivery.html.
type consoleDeliveryPage struct {
	consoleBase
	Webhook  *consoleWebhook
	Delivery *consoleDelivery
	Attempts []*consoleAttempt
	// RetryError explains why Retry now was refused.
	RetryError string
}

func (c *console) deliveryPage(r *http.Request, s *app.Session) (*consoleDeliveryPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d, err := c.app.GetDelivery(r.Context(), s.Account.ID, wh.ID, r.PathValue("delivery_id"))
	if err != nil {
		return nil, err
	}
	v := consoleWebhookOf(wh, c.now())
	page := &consoleDeliveryPage{consoleBase: consoleBase{Title: d.EventType + " · " + d.ID, Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Deliveries", Href: "/webhooks/" + v.ID + "/deliveries"},
			consoleCrumb{Label: d.ID}), Wide: true},
		Webhook: v, Delivery: &consoleDelivery{d.DeliveryInfo, c.now()}}
	for _, a := range d.Attempts {
		page.Attempts = append(page.Attempts, &consoleAttempt{a})
	}
	return page, nil
}

// handleDeliveryView handles "GET /webhooks/{id}/deliveries/{delivery_id}": a delivery and its
// attempts, newest first.
func (c *console) handleDeliveryView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.deliveryPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = consoleDeliveryNotice(r.URL.Query().Get("notice"))
	c.render(w, r, http.StatusOK, "delivery.html", page)
}

// handleDeliveryRetry handles "POST /webhooks/{id}/deliveries/{delivery_id}/retry". A refusal (held
// or cancelled) is explained on the delivery's page; success redirects to it.
func (c *console) handleDeliveryRetry(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id, dlv := r.PathValue("id"), r.PathValue("delivery_id")
	_, err := c.app.RetryDeliveryInfo(r.Context(), s.Account.ID, id, dlv)
	if errs.CodeOf(err) == errs.Conflict {
		page, perr := c.deliveryPage(r, s)
		if perr != nil {
			c.fail(w, r, s, perr)
			return
		}
		page.RetryError = err.Error()
		c.render(w, r, http.StatusConflict, "delivery.html", page)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/webhooks/"+id+"/deliveries/"+dlv+"?notice=retried", http.StatusSeeOther)
}

// consoleTimeInput is how the recover form's datetime-local inputs write a time (UTC).
const consoleTimeInput = "2006-01-02T15:04:05"

// consoleParseTime reads a datetime-local value (seconds optional), taken as UTC, or RFC 3339.
func consoleParseTime(v string) (time.Time, bool) {
	for _, layout := range []string{consoleTimeInput, "2006-01-02T15:04", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// consoleRecoverPage is the data of recover.html: the form, or the confirmation with the count.
type consoleRecoverPage struct {
	consoleBase
	Webhook *consoleWebhook
	Since   string
	Until   string
	Errors  map[string]string
	// Confirm shows the count and the button that recovers; otherwise the form.
	Confirm   bool
	Count     int
	SinceTime time.Time
	UntilTime time.Time
}

// recoverInput reads since and until from the form or query; field problems go to page.Errors.
func (c *console) recoverInput(vals url.Values, page *consoleRecoverPage) (app.RecoverInput, bool) {
	var in app.RecoverInput
	page.Since, page.Until = vals.Get("since"), vals.Get("until")
	page.Errors = map[string]string{}
	if t, ok := consoleParseTime(page.Since); ok {
		in.Since = t
	} else {
		page.Errors["since"] = "Enter a date and time."
	}
	if page.Until != "" {
		if t, ok := consoleParseTime(page.Until); ok {
			in.Until = t
		} else {
			page.Errors["until"] = "Enter a date and time, or leave it empty for “now”."
		}
	}
	page.SinceTime, page.UntilTime = in.Since, in.Until
	return in, len(page.Errors) == 0
}

// fieldErrors moves a validation error's fields into page.Errors; it reports whether err was one.
func (page *consoleRecoverPage) fieldErrors(err error) bool {
	e, ok := err.(*errs.Error)
	if !ok || e.Code != errs.Invalid {
		return false
	}
	for k, v := range e.Fields {
		page.Errors[k] = strings.ToUpper(v[:1]) + v[1:] + "."
	}
	return true
}

func (c *console) recoverPage(r *http.Request, s *app.Session) (*consoleRecoverPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v := consoleWebhookOf(wh, c.now())
	return &consoleRecoverPage{consoleBase: consoleBase{Title: "Recover failed deliveries · " + wh.Name, Session: s,
		Crumbs: consoleWebhookCrumbs(v, consoleCrumb{Label: "Deliveries", Href: "/webhooks/" + v.ID + "/deliveries"},
			consoleCrumb{Label: "Recover"})}, Webhook: v}, nil
}

// handleRecoverForm handles "GET /webhooks/{id}/recover": without ?since= the form (since a day
// ago); with it, the confirmation that says how many failed deliveries would be recovered. Counting
// changes nothing, so it is a GET; the recover itself is the confirmation's POST.
func (c *console) handleRecoverForm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.recoverPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("since") || q.Get("edit") != "" {
		page.Since, page.Until = q.Get("since"), q.Get("until")
		if page.Since == "" {
			page.Since = c.now().UTC().Add(-24 * time.Hour).Format(consoleTimeInput)
		}
		c.render(w, r, http.StatusOK, "recover.html", page)
		return
	}
	in, ok := c.recoverInput(q, page)
	if ok {
		page.Count, err = c.app.CountRecoverable(r.Context(), s.Account.ID, page.Webhook.ID, in)
		if err != nil && !page.fieldErrors(err) {
			c.fail(w, r, s, err)
			return
		}
	}
	if len(page.Errors) > 0 {
		c.render(w, r, http.StatusUnprocessableEntity, "recover.html", page)
		return
	}
	page.Confirm = true
	c.render(w, r, http.StatusOK, "recover.html", page)
}

// handleRecover handles "POST /webhooks/{id}/recover" and redirects to the deliveries view.
func (c *console) handleRecover(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.recoverPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	in, ok := c.recoverInput(r.PostForm, page)
	if ok {
		_, err = c.app.RecoverDeliveries(r.Context(), s.Account.ID, page.Webhook.ID, in)
		if err != nil && !page.fieldErrors(err) {
			c.fail(w, r, s, err)
			return
		}
	}
	if len(page.Errors) > 0 {
		c.render(w, r, http.StatusUnprocessableEntity, "recover.html", page)
		return
	}
	http.Redirect(w, r, "/webhooks/"+page.Webhook.ID+"/deliveries?notice=recovered", http.StatusSeeOther)
}

// consoleEvent is an event as pages show it.
type consoleEvent struct {
	*webhook.Event
	now time.Time
}

func (e *consoleEvent) Rel() string        { return consoleRelative(e.OccurredAt, e.now) }
func (e *consoleEvent) PrettyData() string { return consolePrettyJSON(e.Data) }

// consoleEventsPage is the data of events.html.
type consoleEventsPage struct {
	consoleBase
	Events     []*consoleEvent
	Type       string
	EventTypes []string
	LookupID   string
	NextCursor string
	Paged      bool
}

// handleEventList handles "GET /events": look an event up by id (?id= redirects to it), and the
// account's events, newest first.
func (c *console) handleEventList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	q := r.URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		http.Redirect(w, r, "/events/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	var f app.EventFilter
	if t := q.Get("type"); webhook.InCatalogue(t) {
		f.Type = t
	}
	cursor := q.Get("cursor")
	p, err := c.app.ListEvents(r.Context(), s.Account.ID, f, consoleDeliveryPageSize, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page := &consoleEventsPage{consoleBase: consoleBase{Title: "Events", Session: s, Wide: true,
		Crumbs: []consoleCrumb{{Label: "Events"}}}, Type: f.Type, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	now := c.now()
	for _, e := range p.Items {
		page.Events = append(page.Events, &consoleEvent{e, now})
	}
	c.render(w, r, http.StatusOK, "events.html", page)
}

// consoleEventPage is the data of event.html.
type consoleEventPage struct {
	consoleBase
	Event      *consoleEvent
	Deliveries []*webhook.Delivery
}

// handleEventView handles "GET /events/{id}": the event, its data and its deliveries.
func (c *console) handleEventView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	e, err := c.app.GetEvent(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "event.html", &consoleEventPage{consoleBase: consoleBase{Title: e.Type + " · " + e.ID,
		Session: s, Wide: true, Crumbs: []consoleCrumb{{Label: "Events", Href: "/events"}, {Label: e.ID}}},
		Event: &consoleEvent{e.Event, c.now()}, Deliveries: e.Deliveries})
}
