package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/render"
	"github.com/quikly/webhooks/internal/webhook"
)

// formExtra is the part of the webhook form for SPEC §12: the format with a preview of each, the
// custom headers (names only: values are never shown back) and the rate limit.
type formExtra struct {
	Formats []formatOption
	// Headers are the webhook's stored header names, each kept unless replaced or removed.
	Headers []string
	// NewRows numbers the blank name/value rows for headers to add.
	NewRows   []int
	RateLimit string
	// PreviewEvent is the example event the previews show.
	PreviewEvent string
}

// formatOption is one choice of the format picker, with how its message looks.
type formatOption struct {
	Value, Label, Hint string
	Checked            bool
	Preview            formatPreview
}

// formatPreview is what a receiver gets for the preview event: the human sentence a chat shows
// (empty for json) and the whole body, indented.
type formatPreview struct {
	Sentence string
	Title    string
	Body     string
}

// previewEvent is the example event of the format previews: the one most people wire to a chat.
const previewEvent = webhook.ProposalAccepted

// newHeaderRows is how many blank rows the form offers for new headers (more after saving).
const newHeaderRows = 2

// formExtraOf returns the extra form data for format, the stored header names and the rate limit
// as typed.
func formExtraOf(format string, headers map[string]string, rateLimit string) formExtra {
	if format == "" {
		format = webhook.FormatJSON
	}
	fe := formExtra{RateLimit: rateLimit, PreviewEvent: previewEvent}
	for _, o := range []struct{ v, label, hint string }{
		{webhook.FormatJSON, "JSON", "The signed JSON body of the docs: for your own code, CRMs, n8n or Zapier."},
		{webhook.FormatSlack, "Slack", "A Slack message: paste a Slack incoming-webhook URL as the endpoint."},
		{webhook.FormatDiscord, "Discord", "A Discord message: paste a Discord webhook URL as the endpoint."},
	} {
		fe.Formats = append(fe.Formats, formatOption{Value: o.v, Label: o.label, Hint: o.hint,
			Checked: o.v == format, Preview: previewOf(o.v, previewEvent)})
	}
	fe.Headers = webhook.SortedHeaderNames(headers)
	for i := range max(newHeaderRows, 1) {
		fe.NewRows = append(fe.NewRows, i)
	}
	return fe
}

// previewOf renders the catalogue's example of event in format, as publishing would.
func previewOf(format, event string) formatPreview {
	ts, _ := time.Parse(time.RFC3339, webhook.ExampleTimestamp)
	body, err := render.Body(render.Format(format), render.Event{Type: event, Timestamp: ts,
		WebhookID: webhook.ExampleWebhookID, Data: webhook.ExampleData(event)})
	if err != nil {
		return formatPreview{Body: err.Error()}
	}
	p := formatPreview{Body: indent(body)}
	var msg struct {
		Text    string `json:"text"`
		Content string `json:"content"`
		Embeds  []struct {
			Title string `json:"title"`
		} `json:"embeds"`
	}
	if json.Unmarshal(body, &msg) == nil {
		p.Sentence = msg.Text + msg.Content
		if len(msg.Embeds) > 0 {
			p.Title = msg.Embeds[0].Title
		}
	}
	return p
}

// indent returns a JSON document indented for reading.
func indent(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// extraInput reads the format, headers and rate limit of the create/edit form. existing are the
// webhook's stored headers (nil when creating): a stored header whose value is left empty keeps its
// value, one ticked for removal goes. fieldErrs gets what cannot even be handed to validation.
//
// A field missing from the form altogether (a form of an older page) is left out, so it keeps its
// value; the fields of this page are always present.
func extraInput(r *http.Request, existing map[string]string, fieldErrs map[string]string) (format *string, headers *map[string]string, rateLimit *int) {
	if _, ok := r.PostForm["format"]; ok {
		f := r.PostForm.Get("format")
		format = &f
	}
	if _, ok := r.PostForm["rate_limit"]; ok {
		n := 0
		if v := strings.TrimSpace(r.PostForm.Get("rate_limit")); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				fieldErrs["rate_limit"] = "must be empty (no limit) or a whole number from 1 to 10000"
			}
		}
		rateLimit = &n
	}
	_, named := r.PostForm["header_name"]
	_, kept := r.PostForm["header_kept"]
	if !named && !kept {
		return format, nil, rateLimit
	}
	h := map[string]string{}
	remove := map[string]bool{}
	for _, n := range r.PostForm["header_remove"] {
		remove[strings.ToLower(n)] = true
	}
	for _, name := range r.PostForm["header_kept"] {
		if !remove[strings.ToLower(name)] {
			if v, ok := existing[name]; ok {
				h[name] = v
			}
		}
	}
	values := r.PostForm["header_value"]
	for i, name := range r.PostForm["header_name"] {
		name = strings.TrimSpace(name)
		value := ""
		if i < len(values) {
			value = values[i]
		}
		if name == "" {
			if value != "" {
				fieldErrs["headers"] = "need a name for every value"
			}
			continue
		}
		for k := range h { // a new value for a kept name replaces it
			if strings.EqualFold(k, name) {
				delete(h, k)
			}
		}
		h[name] = value
	}
	return format, &h, rateLimit
}

// testEventOptions are the choices of the test form: test first, then the catalogue.
func testEventOptions() []string {
	out := []string{webhook.TestEvent}
	for _, e := range webhook.Catalogue {
		out = append(out, e.Event)
	}
	return out
}

// cataloguePage is the data of catalogue.html.
type cataloguePage struct {
	pageBase
	Events []catalogueEntry
}

type catalogueEntry struct {
	Event, Description, Schema, Example string
}

// handleCatalogue handles "GET /webhook-events": each event's description, example body and the
// JSON Schema of its data.
func (c *handler) handleCatalogue(w http.ResponseWriter, r *http.Request, s *app.Session) {
	page := &cataloguePage{pageBase: pageBase{Title: "Event catalogue", Session: s, Section: "catalogue",
		Crumbs: []crumb{{Label: "Event catalogue"}}}}
	for _, e := range webhook.Catalogue {
		page.Events = append(page.Events, catalogueEntry{Event: e.Event, Description: e.Description,
			Schema: indent(webhook.Schema(e.Event)), Example: indent(webhook.Example(e.Event))})
	}
	c.render(w, r, http.StatusOK, "catalogue.html", page)
}
