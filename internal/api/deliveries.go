package api

import (
	"net/http"
	"time"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// deliveryRoutes registers the routes of SPEC §10.
func (h *Handler) deliveryRoutes() {
	h.route("/webhooks/{id}/deliveries", map[string]http.HandlerFunc{"GET": h.handleDeliveryList})
	h.route("/webhooks/{id}/deliveries/{delivery_id}", map[string]http.HandlerFunc{"GET": h.handleDeliveryGet})
	h.route("/webhooks/{id}/deliveries/{delivery_id}/retry", map[string]http.HandlerFunc{"POST": h.handleDeliveryRetry})
	h.route("/webhooks/{id}/recover", map[string]http.HandlerFunc{"POST": h.handleRecover})
	h.route("/webhooks/{id}/stats", map[string]http.HandlerFunc{"GET": h.handleWebhookStats})
	h.route("/events", map[string]http.HandlerFunc{"GET": h.handleEventList})
	h.route("/events/{id}", map[string]http.HandlerFunc{"GET": h.handleEventGet})
}

// deliveryJSON is the delivery object of SPEC §10.
type deliveryJSON struct {
	ID             string  `json:"id"`
	WebhookID      string  `json:"webhook_id"`
	EventID        string  `json:"event_id"`
	Event          string  `json:"event"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *string `json:"next_attempt_at"`
	LastAttemptAt  *string `json:"last_attempt_at"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
	CreatedAt      string  `json:"created_at"`
}

func toDeliveryJSON(d *store.DeliveryInfo) deliveryJSON {
	j := deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, Event: d.EventType,
		Status: string(d.State), Attempts: d.Attempts, LastAttemptAt: timeOrNil(d.LastAttemptAt),
		CreatedAt: formatTime(d.CreatedAt)}
	// Only a pending delivery will be attempted; a held one waits for its webhook, with no time.
	if d.State == webhook.DeliveryPending {
		j.NextAttemptAt = timeOrNil(d.NextAttemptAt)
	}
	if d.LastStatusCode != 0 {
		j.LastStatusCode = &d.LastStatusCode
	}
	if d.LastError != "" {
		j.LastError = &d.LastError
	}
	return j
}

// queryTime reads an RFC 3339 query parameter; "" is the zero time.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	return parseTime(name, v)
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errs.Field(name, "must be an RFC 3339 time, e.g. 2026-04-03T14:30:00Z")
	}
	return t.UTC(), nil
}

// queryRange reads ?since= and ?until=.
func queryRange(r *http.Request) (since, until time.Time, err error) {
	if since, err = queryTime(r, "since"); err != nil {
		return
	}
	until, err = queryTime(r, "until")
	return
}

// handleDeliveryList handles "GET /webhooks/{id}/deliveries".
func (h *Handler) handleDeliveryList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	var f app.DeliveryFilter
	switch s := webhook.DeliveryState(r.URL.Query().Get("status")); s {
	case "", webhook.DeliveryPending, webhook.DeliveryHeld, webhook.DeliverySucceeded, webhook.DeliveryFailed, webhook.DeliveryCancelled:
		f.Status = s
	default:
		h.error(w, r, errs.Field("status", "must be pending, held, succeeded, failed or cancelled"))
		return
	}
	f.EventType = r.URL.Query().Get("event")
	if f.Since, f.Until, err = queryRange(r); err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.ListDeliveries(r.Context(), accountFrom(r).ID, r.PathValue("id"), f, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, toDeliveryJSON))
}

// handleDeliveryGet handles "GET /webhooks/{id}/deliveries/{delivery_id}".
func (h *Handler) handleDeliveryGet(w http.ResponseWriter, r *http.Request) {
	d, err := h.app.GetDelivery(r.Context(), accountFrom(r).ID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	attempts := make([]attemptJSON, len(d.Attempts))
	for i, a := range d.Attempts {
		attempts[i] = toAttemptJSON(a)
	}
	writeJSON(w, http.StatusOK, struct {
		deliveryJSON
		Attempts []attemptJSON `json:"attempts"`
	}{toDeliveryJSON(d.DeliveryInfo), attempts})
}

// handleDeliveryRetry handles "POST /webhooks/{id}/deliveries/{delivery_id}/retry".
func (h *Handler) handleDeliveryRetry(w http.ResponseWriter, r *http.Request) {
	d, err := h.app.RetryDeliveryInfo(r.Context(), accountFrom(r).ID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
}

type recoverJSON struct {
	Since *string `json:"since"`
	Until *string `json:"until"`
}

// handleRecover handles "POST /webhooks/{id}/recover".
func (h *Handler) handleRecover(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r)
	// Unknown ids answer 404 before the body is judged, as if the webhook did not exist at all.
	if _, err := h.app.GetWebhook(r.Context(), acct.ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	var body recoverJSON
	if err := decode(w, r, &body); err != nil {
		h.error(w, r, err)
		return
	}
	var in app.RecoverInput
	f := errs.Fields{}
	if body.Since == nil {
		f.Add("since", "is required")
	} else if t, err := parseTime("since", *body.Since); err != nil {
		f.Add("since", err.(*errs.Error).Fields["since"])
	} else {
		in.Since = t
	}
	if body.Until != nil {
		if t, err := parseTime("until", *body.Until); err != nil {
			f.Add("until", err.(*errs.Error).Fields["until"])
		} else {
			in.Until = t
		}
	}
	if err := f.Err(); err != nil {
		h.error(w, r, err)
		return
	}
	n, err := h.app.RecoverDeliveries(r.Context(), acct.ID, r.PathValue("id"), in)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"recovered": n})
}

type statsJSON struct {
	Pending       int64   `json:"pending"`
	Held          int64   `json:"held"`
	Succeeded24h  int64   `json:"succeeded_24h"`
	Failed24h     int64   `json:"failed_24h"`
	LastSuccessAt *string `json:"last_success_at"`
	LastFailureAt *string `json:"last_failure_at"`
}

// handleWebhookStats handles "GET /webhooks/{id}/stats".
func (h *Handler) handleWebhookStats(w http.ResponseWriter, r *http.Request) {
	s, err := h.app.WebhookStats(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statsJSON{Pending: s.Pending, Held: s.Held, Succeeded24h: s.Succeeded,
		Failed24h: s.Failed, LastSuccessAt: timeOrNil(s.LastSuccessAt), LastFailureAt: timeOrNil(s.LastFailureAt)})
}
