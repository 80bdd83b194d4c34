package console

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

// deliveryPageSize is how many deliveries a page of the view shows.
const deliveryPageSize = 25

// deliveryRoutes registers the deliveries view's pages.
func (c *handler) deliveryRoutes(mux *http.ServeMux) {
	c.route(mux, "/webhooks/{id}/deliveries", map[string]http.HandlerFunc{"GET": c.authed(c.handleDeliveryList)})
	c.route(mux, "/webhooks/{id}/deliveries/{delivery_id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleDeliveryView)})
	c.route(mux, "/webhooks/{id}/deliveries/{delivery_id}/retry", map[string]http.HandlerFunc{"POST": c.mutate(c.handleDeliveryRetry)})
	c.route(mux, "/webhooks/{id}/recover", map[string]http.HandlerFunc{"GET": c.authed(c.handleRecoverForm), "POST": c.mutate(c.handleRecover)})
	c.route(mux, "/events", map[string]http.HandlerFunc{"GET": c.authed(c.handleEventList)})
	c.route(mux, "/events/{id}", map[string]http.HandlerFunc{"GET": c.authed(c.handleEventView)})
}

// deliveryNotices are the confirmations of this view's redirects, fixed texts as
// notices.
var deliveryNotices = map[string]string{
	"retried":   "Retry queued: the delivery will be attempted right away, with the same body and ids.",
	"recovered": "Failed deliveries recovered: they are being sent again, each with a fresh retry schedule.",
}

func deliveryNotice(code string) string {
	return cmp.Or(noticeText(code), deliveryNotices[code])
}

// relative says how far t is from now, both ways: "3 min ago", "in 2 h".
func relative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	if d := t.Sub(now); d >= time.Minute {
		return "in " + strings.TrimSuffix(ago(d), " ago")
	} else if d > 0 {
		return "in under a minute"
	}
	return ago(now.Sub(t))
}

// deliveryView is a delivery as pages show it.
type deliveryView struct {
	*store.DeliveryInfo
	now time.Time
}

// Badge is the badge class of the delivery's status.
func (d *deliveryView) Badge() string {
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
func (d *deliveryView) StatusText() string {
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
func (d *deliveryView) LastOutcome() string {
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
func (d *deliveryView) HasNext() bool {
	return d.State == webhook.DeliveryPending && !d.NextAttemptAt.IsZero()
}

// CanRetry reports whether Retry now applies (held and cancelled deliveries refuse it).
func (d *deliveryView) CanRetry() bool {
	return d.State != webhook.DeliveryHeld && d.State != webhook.DeliveryCancelled
}

func (d *deliveryView) CreatedRel() string { return relative(d.CreatedAt, d.now) }
func (d *deliveryView) NextRel() string    { return relative(d.NextAttemptAt, d.now) }
func (d *deliveryView) LastRel() string    { return relative(d.LastAttemptAt, d.now) }

// deliveriesPage is the data of deliveries.html.
type deliveriesPage struct {
	pageBase
	Webhook    *webhookView
	Stats      *store.WebhookStats
	Deliveries []*deliveryView
	Status     string
	Event      string
	EventTypes []string
	Statuses   []statusTab
	NextCursor string
	Paged      bool
}

// statusTab is one status filter of the deliveries view.
type statusTab struct{ Value, Label string }

var statusTabs = []statusTab{{"pending", "Pending"}, {"held", "Held"}, {"succeeded", "Succeeded"},
	{"failed", "Failed"}, {"cancelled", "Cancelled"}}

// handleDeliveryList handles "GET /webhooks/{id}/deliveries" with ?status=, ?event= and ?cursor=.
func (c *handler) handleDeliveryList(w http.ResponseWriter, r *http.Request, s *app.Session) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	var f app.DeliveryFilter
	for _, tab := range statusTabs { // an unknown filter shows everything rather than an error page
		if q.Get("status") == tab.Value {
			f.Status = webhook.DeliveryState(tab.Value)
		}
	}
	if ev := q.Get("event"); ev == webhook.TestEvent || webhook.InCatalogue(ev) {
		f.EventType = ev
	}
	cursor := q.Get("cursor")
	p, err := c.app.ListDeliveries(r.Context(), s.Account.ID, wh.ID, f, deliveryPageSize, cursor)
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
	v := webhookViewOf(wh, now)
	page := &deliveriesPage{pageBase: pageBase{Title: "Deliveries · " + wh.Name, Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Deliveries"}), Wide: true,
		Notice: deliveryNotice(q.Get("notice"))}, Webhook: v, Stats: stats,
		Status: string(f.Status), Event: f.EventType, Statuses: statusTabs, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	page.EventTypes = append(page.EventTypes, webhook.TestEvent)
	for _, d := range p.Items {
		page.Deliveries = append(page.Deliveries, &deliveryView{d, now})
	}
	c.render(w, r, http.StatusOK, "deliveries.html", page)
}

// deliveryPage is the data of delivery.html.
type deliveryPage struct {
	pageBase
	Webhook  *webhookView
	Delivery *deliveryView
	Attempts []*attemptView
	// RetryError explains why Retry now was refused.
	RetryError string
}

func (c *handler) loadDeliveryPage(r *http.Request, s *app.Session) (*deliveryPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d, err := c.app.GetDelivery(r.Context(), s.Account.ID, wh.ID, r.PathValue("delivery_id"))
	if err != nil {
		return nil, err
	}
	v := webhookViewOf(wh, c.now())
	page := &deliveryPage{pageBase: pageBase{Title: d.EventType + " · " + d.ID, Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Deliveries", Href: "/webhooks/" + v.ID + "/deliveries"},
			crumb{Label: d.ID}), Wide: true},
		Webhook: v, Delivery: &deliveryView{d.DeliveryInfo, c.now()}}
	for _, a := range d.Attempts {
		page.Attempts = append(page.Attempts, &attemptView{a})
	}
	return page, nil
}

// handleDeliveryView handles "GET /webhooks/{id}/deliveries/{delivery_id}": a delivery and its
// attempts, newest first.
func (c *handler) handleDeliveryView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.loadDeliveryPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page.Notice = deliveryNotice(r.URL.Query().Get("notice"))
	c.render(w, r, http.StatusOK, "delivery.html", page)
}

// handleDeliveryRetry handles "POST /webhooks/{id}/deliveries/{delivery_id}/retry". A refusal (held
// or cancelled) is explained on the delivery's page; success redirects to it.
func (c *handler) handleDeliveryRetry(w http.ResponseWriter, r *http.Request, s *app.Session) {
	id, dlv := r.PathValue("id"), r.PathValue("delivery_id")
	_, err := c.app.RetryDeliveryInfo(r.Context(), s.Account.ID, id, dlv)
	if errs.CodeOf(err) == errs.Conflict {
		page, perr := c.loadDeliveryPage(r, s)
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

// timeInput is how the recover form's datetime-local inputs write a time (UTC).
const timeInput = "2006-01-02T15:04:05"

// parseTime reads a datetime-local value (seconds optional), taken as UTC, or RFC 3339.
func parseTime(v string) (time.Time, bool) {
	for _, layout := range []string{timeInput, "2006-01-02T15:04", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// recoverPage is the data of recover.html: the form, or the confirmation with the count.
type recoverPage struct {
	pageBase
	Webhook *webhookView
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
func (c *handler) recoverInput(vals url.Values, page *recoverPage) (app.RecoverInput, bool) {
	var in app.RecoverInput
	page.Since, page.Until = vals.Get("since"), vals.Get("until")
	page.Errors = map[string]string{}
	if t, ok := parseTime(page.Since); ok {
		in.Since = t
	} else {
		page.Errors["since"] = "Enter a date and time."
	}
	if page.Until != "" {
		if t, ok := parseTime(page.Until); ok {
			in.Until = t
		} else {
			page.Errors["until"] = "Enter a date and time, or leave it empty for “now”."
		}
	}
	page.SinceTime, page.UntilTime = in.Since, in.Until
	return in, len(page.Errors) == 0
}

// fieldErrors moves a validation error's fields into page.Errors; it reports whether err was one.
func (page *recoverPage) fieldErrors(err error) bool {
	e, ok := err.(*errs.Error)
	if !ok || e.Code != errs.Invalid {
		return false
	}
	for k, v := range e.Fields {
		page.Errors[k] = strings.ToUpper(v[:1]) + v[1:] + "."
	}
	return true
}

func (c *handler) loadRecoverPage(r *http.Request, s *app.Session) (*recoverPage, error) {
	wh, err := c.app.GetWebhook(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v := webhookViewOf(wh, c.now())
	return &recoverPage{pageBase: pageBase{Title: "Recover failed deliveries · " + wh.Name, Session: s,
		Crumbs: webhookCrumbs(v, crumb{Label: "Deliveries", Href: "/webhooks/" + v.ID + "/deliveries"},
			crumb{Label: "Recover"})}, Webhook: v}, nil
}

// handleRecoverForm handles "GET /webhooks/{id}/recover": without ?since= the form (since a day
// ago); with it, the confirmation that says how many failed deliveries would be recovered. Counting
// changes nothing, so it is a GET; the recover itself is the confirmation's POST.
func (c *handler) handleRecoverForm(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.loadRecoverPage(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("since") || q.Get("edit") != "" {
		page.Since, page.Until = q.Get("since"), q.Get("until")
		if page.Since == "" {
			page.Since = c.now().UTC().Add(-24 * time.Hour).Format(timeInput)
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
func (c *handler) handleRecover(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page, err := c.loadRecoverPage(r, s)
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

// eventView is an event as pages show it.
type eventView struct {
	*webhook.Event
	now time.Time
}

func (e *eventView) Rel() string        { return relative(e.OccurredAt, e.now) }
func (e *eventView) PrettyData() string { return prettyJSON(e.Data) }

// eventsPage is the data of events.html.
type eventsPage struct {
	pageBase
	Events     []*eventView
	Type       string
	EventTypes []string
	LookupID   string
	NextCursor string
	Paged      bool
}

// handleEventList handles "GET /events": look an event up by id (?id= redirects to it), and the
// account's events, newest first.
func (c *handler) handleEventList(w http.ResponseWriter, r *http.Request, s *app.Session) {
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
	p, err := c.app.ListEvents(r.Context(), s.Account.ID, f, deliveryPageSize, cursor)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	page := &eventsPage{pageBase: pageBase{Title: "Events", Session: s, Wide: true, Section: "events",
		Crumbs: []crumb{{Label: "Events"}}}, Type: f.Type, NextCursor: p.NextCursor, Paged: cursor != ""}
	for _, e := range webhook.Catalogue {
		page.EventTypes = append(page.EventTypes, e.Event)
	}
	now := c.now()
	for _, e := range p.Items {
		page.Events = append(page.Events, &eventView{e, now})
	}
	c.render(w, r, http.StatusOK, "events.html", page)
}

// eventPage is the data of event.html.
type eventPage struct {
	pageBase
	Event      *eventView
	Deliveries []*webhook.Delivery
}

// handleEventView handles "GET /events/{id}": the event, its data and its deliveries.
func (c *handler) handleEventView(w http.ResponseWriter, r *http.Request, s *app.Session) {
	e, err := c.app.GetEvent(r.Context(), s.Account.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "event.html", &eventPage{pageBase: pageBase{Title: e.Type + " · " + e.ID,
		Session: s, Wide: true, Section: "events", Crumbs: []crumb{{Label: "Events", Href: "/events"}, {Label: e.ID}}},
		Event: &eventView{e.Event, c.now()}, Deliveries: e.Deliveries})
}
