package api

import (
	"cmp"
	"encoding/json"
	"net/http"
	"time"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/webhook"
)

// webhookJSON is the webhook object of SPEC §4; Secret appears only on create and regenerate.
type webhookJSON struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	IsActive bool     `json:"is_active"`
	// DisabledReason is "failing" once the service disabled the webhook (SPEC §11), null otherwise.
	DisabledReason *string `json:"disabled_reason"`
	DisabledAt     *string `json:"disabled_at"`
	// Format, Headers (values masked) and RateLimit (null: none) are SPEC §12's.
	Format    string            `json:"format"`
	Headers   map[string]string `json:"headers"`
	RateLimit *int              `json:"rate_limit"`
	CreatedAt string            `json:"created_at"`
	UpdatedAt string            `json:"updated_at"`
	Secret    string            `json:"secret,omitempty"`
}

func toWebhookJSON(w *webhook.Webhook, withSecret bool) webhookJSON {
	j := webhookJSON{ID: w.ID, Name: w.Name, URL: w.URL, Events: w.Events, IsActive: w.IsActive,
		DisabledAt: timeOrNil(w.DisabledAt), Format: cmp.Or(w.Format, webhook.FormatJSON),
		Headers: webhook.MaskedHeaders(w.Headers), CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt)}
	if w.RateLimit > 0 {
		j.RateLimit = &w.RateLimit
	}
	if w.DisabledReason != "" {
		j.DisabledReason = &w.DisabledReason
	}
	if withSecret {
		j.Secret = w.Secret
	}
	return j
}

func formatTime(t time.Time) string { return t.UTC().Format(webhook.TimeFormat) }

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

type listJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func toList[T, J any](p *app.Page[T], conv func(T) J) listJSON[J] {
	l := listJSON[J]{Data: make([]J, len(p.Items))}
	for i, it := range p.Items {
		l.Data[i] = conv(it)
	}
	if p.NextCursor != "" {
		l.NextCursor = &p.NextCursor
	}
	return l
}

type webhookInputJSON struct {
	Name     *string   `json:"name"`
	URL      *string   `json:"url"`
	Events   *[]string `json:"events"`
	IsActive *bool     `json:"is_active"`
	Format   *string   `json:"format"`
	// Headers and RateLimit are read by input, which names them in its errors.
	Headers   json.RawMessage `json:"headers"`
	RateLimit json.RawMessage `json:"rate_limit"`
}

// webhookClearable are the fields where null means "none" (decode turns it into "").
var webhookClearable = []string{"rate_limit"}

func (j webhookInputJSON) input() (app.WebhookInput, error) {
	in := app.WebhookInput{Name: j.Name, URL: j.URL, Events: j.Events, IsActive: j.IsActive, Format: j.Format}
	if j.Headers != nil {
		var raw map[string]*string
		if err := json.Unmarshal(j.Headers, &raw); err != nil || raw == nil {
			return in, errs.Field("headers", "must be an object of header names to string values")
		}
		h := make(map[string]string, len(raw))
		for k, v := range raw {
			if v == nil {
				return in, errs.Field("headers", "must be an object of header names to string values")
			}
			h[k] = *v
		}
		in.Headers = &h
	}
	if j.RateLimit != nil {
		n := 0 // null: no limit
		if string(j.RateLimit) != `""` {
			if err := json.Unmarshal(j.RateLimit, &n); err != nil || n < 1 {
				return in, errs.Field("rate_limit", "must be null or an integer from 1 to 10000")
			}
		}
		in.RateLimit = &n
	}
	return in, nil
}

// decodeWebhookInput reads the webhook body of a create or an update.
func decodeWebhookInput(w http.ResponseWriter, r *http.Request) (app.WebhookInput, error) {
	var body webhookInputJSON
	if err := decode(w, r, &body, webhookClearable...); err != nil {
		return app.WebhookInput{}, err
	}
	return body.input()
}

// handleWebhookCreate handles "POST /webhooks".
func (h *Handler) handleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	in, err := decodeWebhookInput(w, r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	wh, err := h.app.CreateWebhook(r.Context(), accountFrom(r).ID, in)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toWebhookJSON(wh, true))
}

// handleWebhookList handles "GET /webhooks".
func (h *Handler) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	p, err := h.app.ListWebhooks(r.Context(), accountFrom(r).ID, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, func(wh *webhook.Webhook) webhookJSON { return toWebhookJSON(wh, false) }))
}

// handleWebhookGet handles "GET /webhooks/{id}".
func (h *Handler) handleWebhookGet(w http.ResponseWriter, r *http.Request) {
	wh, err := h.app.GetWebhook(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(wh, false))
}

// handleWebhookUpdate handles "PUT /webhooks/{id}".
func (h *Handler) handleWebhookUpdate(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r)
	// Unknown ids answer 404 before the body is judged, as if the webhook did not exist at all.
	if _, err := h.app.GetWebhook(r.Context(), acct.ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	in, err := decodeWebhookInput(w, r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	wh, err := h.app.UpdateWebhook(r.Context(), acct.ID, r.PathValue("id"), in)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(wh, false))
}

// handleWebhookDelete handles "DELETE /webhooks/{id}".
func (h *Handler) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.app.DeleteWebhook(r.Context(), accountFrom(r).ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleWebhookRegenerate handles "POST /webhooks/{id}/regenerate-secret".
func (h *Handler) handleWebhookRegenerate(w http.ResponseWriter, r *http.Request) {
	wh, err := h.app.RegenerateSecret(r.Context(), accountFrom(r).ID, r.PathValue("id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(wh, true))
}

// handleWebhookTest handles "POST /webhooks/{id}/test", with an optional body {"event": …}.
func (h *Handler) handleWebhookTest(w http.ResponseWriter, r *http.Request) {
	acct := accountFrom(r)
	// Unknown ids answer 404 before the body is judged, as for updates.
	if _, err := h.app.GetWebhook(r.Context(), acct.ID, r.PathValue("id")); err != nil {
		h.error(w, r, err)
		return
	}
	var body struct {
		Event *string `json:"event"`
	}
	if err := decode(w, r, &body); err != nil {
		h.error(w, r, err)
		return
	}
	event := webhook.TestEvent
	if body.Event != nil {
		event = *body.Event
		if event == "" {
			h.error(w, r, errs.Field("event", "must be \"test\" or an event type; see GET /webhook-events"))
			return
		}
	}
	a, err := h.app.TestWebhookEvent(r.Context(), acct.ID, r.PathValue("id"), event)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAttemptJSON(a))
}

// attemptJSON is a log entry of SPEC §4.
type attemptJSON struct {
	ID             string            `json:"id"`
	DeliveryID     string            `json:"delivery_id"`
	Event          string            `json:"event"`
	EventID        string            `json:"event_id"`
	Attempt        int               `json:"attempt"`
	Status         string            `json:"status"`
	StatusCode     *int              `json:"status_code"`
	Error          *string           `json:"error"`
	ResponseBody   string            `json:"response_body"`
	ResponseTimeMS int64             `json:"response_time_ms"`
	RequestHeaders map[string]string `json:"request_headers"`
	Payload        string            `json:"payload"`
	CreatedAt      string            `json:"created_at"`
	NextAttemptAt  *string           `json:"next_attempt_at"`
}

func toAttemptJSON(a *webhook.Attempt) attemptJSON {
	j := attemptJSON{ID: a.ID, DeliveryID: a.DeliveryID, Event: a.EventType, EventID: a.EventID,
		Attempt: a.Number, Status: "failed", ResponseBody: a.ResponseBody,
		ResponseTimeMS: a.ResponseTime.Milliseconds(), RequestHeaders: a.RequestHeaders,
		Payload: string(a.Payload), CreatedAt: formatTime(a.CreatedAt), NextAttemptAt: timeOrNil(a.NextAttemptAt)}
	if a.Succeeded {
		j.Status = "succeeded"
	}
	if a.StatusCode != 0 {
		j.StatusCode = &a.StatusCode
	}
	if a.Error != "" {
		j.Error = &a.Error
	}
	if j.RequestHeaders == nil {
		j.RequestHeaders = map[string]string{}
	}
	return j
}

// handleLogList handles "GET /webhooks/{id}/logs".
func (h *Handler) handleLogList(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageQuery(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	var f app.LogFilter
	switch s := r.URL.Query().Get("status"); s {
	case "":
	case "succeeded", "failed":
		ok := s == "succeeded"
		f.Succeeded = &ok
	default:
		h.error(w, r, errs.Field("status", "must be succeeded or failed"))
		return
	}
	f.EventType = r.URL.Query().Get("event")
	p, err := h.app.ListLogs(r.Context(), accountFrom(r).ID, r.PathValue("id"), f, limit, cursor)
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toList(p, toAttemptJSON))
}

// handleLogGet handles "GET /webhooks/{id}/logs/{log_id}".
func (h *Handler) handleLogGet(w http.ResponseWriter, r *http.Request) {
	a, err := h.app.GetLog(r.Context(), accountFrom(r).ID, r.PathValue("id"), r.PathValue("log_id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAttemptJSON(a))
}

// handleLogResend handles "POST /webhooks/{id}/logs/{log_id}/resend".
func (h *Handler) handleLogResend(w http.ResponseWriter, r *http.Request) {
	d, err := h.app.Resend(r.Context(), accountFrom(r).ID, r.PathValue("id"), r.PathValue("log_id"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"delivery_id": d.ID, "event_id": d.EventID,
		"status": string(d.State), "next_attempt_at": formatTime(d.NextAttemptAt)})
}

type catalogueEntryJSON struct {
	Event       string `json:"event"`
	Description string `json:"description"`
	// Schema is the JSON Schema 2020-12 of data; Example a whole body as sent (SPEC §13).
	Schema  json.RawMessage `json:"schema"`
	Example json.RawMessage `json:"example"`
}

// handleEventCatalogue handles "GET /webhook-events".
func (h *Handler) handleEventCatalogue(w http.ResponseWriter, r *http.Request) {
	out := make([]catalogueEntryJSON, len(webhook.Catalogue))
	for i, e := range webhook.Catalogue {
		out[i] = catalogueEntryJSON{e.Event, e.Description, webhook.Schema(e.Event), webhook.Example(e.Event)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}
