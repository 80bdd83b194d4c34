package api

import (
	"encoding/json"
	"net/http"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/webhook"
)

// eventJSON is the event object of SPEC §10. Data is the same JSON the deliveries carried (null for
// an event stored before events kept their data and that no webhook took).
type eventJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func toEventJSON(e *webhook.Event) eventJSON {
	j := eventJSON{ID: e.ID, Type: e.Type, Timestamp: formatTime(e.OccurredAt), Data: e.Data}
	if len(j.Data) == 0 {
		j.Data = json.RawMessage("null")
	}
	return j
}

// eventDeliveryJSON is a delivery as an event lists it.
type eventDeliveryJSON struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
}

// handleEventList handles "GET /events".
func (h *Handler) handleEventList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	f := app.EventFilter{Type: r.URL.Query().Get("type")}
	if f.Since, f.Until, err = queryRange(r); err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.ListEvents(r.Context(), accountFrom(r).ID, f, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, toEventJSON))
}

// handleEventGet handles "GET /events/{id}".
func (h *Handler) handleEventGet(w http.ResponseWriter, r *http.Request) {
	e, err := h.app.GetEvent(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	ds := make([]eventDeliveryJSON, len(e.Deliveries))
	for i, d := range e.Deliveries {
		ds[i] = eventDeliveryJSON{ID: d.ID, WebhookID: d.WebhookID, Status: string(d.State), Attempts: d.Attempts}
	}
	writeJSON(w, http.StatusOK, struct {
		eventJSON
		Deliveries []eventDeliveryJSON `json:"deliveries"`
	}{toEventJSON(e.Event), ds})
}
