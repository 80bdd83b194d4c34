package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// The JSON Schemas (2020-12) of every event's data, and an example body of each, for
// GET /webhook-events (SPEC §13), the test operation and the API description. They are built once at
// start from the ordered objects below, so that a schema reads in the SPEC's field order.
//
// Data schemas are closed (additionalProperties: false): SPEC §5 fixes the data exactly, and a field
// added without its schema is a mistake the catalogue tests should catch. They state what each event
// guarantees (proposal.accepted always has share_url and responded_at, lead_session.created is always
// gathering_info), so a consumer knows which values can be null when.

// SchemaDialect is the $schema of every data schema.
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// ExampleTimestamp and ExampleWebhookID are the made-up envelope of every example body.
const (
	ExampleTimestamp = "2026-04-03T14:30:00Z"
	ExampleWebhookID = "wh_2mZ9fQkT3xYcLp8R"
)

// DisabledData is the data of webhook.disabled (SPEC §11): the webhook that was disabled.
type DisabledData struct {
	WebhookID    string `json:"webhook_id"`
	Name         string `json:"name"`
	URL          string `json:"url"`
	FailingSince string `json:"failing_since"` // RFC 3339, UTC, whole seconds
	LastError    string `json:"last_error"`    // the error of the last failed attempt
}

// NewDisabledData returns the data of the webhook.disabled event for w, failing since failingSince
// (its first failure after its last success), whose last attempt failed with lastError.
func NewDisabledData(w *Webhook, failingSince time.Time, lastError string) DisabledData {
	return DisabledData{
		WebhookID:    w.ID,
		Name:         w.Name,
		URL:          w.URL,
		FailingSince: failingSince.UTC().Format("2006-01-02T15:04:05Z"),
		LastError:    lastError,
	}
}

// Documented returns every event type that has a schema and an example: the catalogue, in its
// order, then TestEvent.
func Documented() []string {
	out := make([]string, 0, len(Catalogue)+1)
	for _, e := range Catalogue {
		out = append(out, e.Event)
	}
	return append(out, TestEvent)
}

// Schema returns the JSON Schema 2020-12 of the data of event (any of Documented), or nil for
// another type. The caller owns the returned bytes.
func Schema(event string) json.RawMessage {
	d, ok := docs[event]
	if !ok {
		return nil
	}
	return bytes.Clone(d.schema)
}

// ExampleData returns made-up data of event (any of Documented) that validates against its schema,
// or nil for another type: what a typed test event carries. For TestEvent every field is non-null.
// The caller owns the returned bytes.
func ExampleData(event string) json.RawMessage {
	d, ok := docs[event]
	if !ok {
		return nil
	}
	return bytes.Clone(d.data)
}

// Example returns a whole example body of event as it would be sent in the json format:
// {"event","timestamp","webhook_id","data"} with ExampleTimestamp, ExampleWebhookID and
// ExampleData(event); nil for a type not in Documented. The caller owns the returned bytes.
func Example(event string) json.RawMessage {
	d, ok := docs[event]
	if !ok {
		return nil
	}
	b := make([]byte, 0, len(d.data)+128)
	b = append(b, `{"event":`...)
	b = strconv.AppendQuote(b, event) // event types are plain ASCII
	b = append(b, `,"timestamp":"`+ExampleTimestamp+`","webhook_id":"`+ExampleWebhookID+`","data":`...)
	b = append(b, d.data...)
	return append(b, '}')
}

// doc is the schema and example data of one event type.
type doc struct {
	schema, data json.RawMessage
}

var docs = buildDocs()

func buildDocs() map[string]doc {
	m := map[string]doc{}
	add := func(event string, schema, data object) {
		m[event] = doc{schema: mustJSON(schema), data: mustJSON(data)}
	}
	const shareURL = "https://app.quikly.example/p/q8Vx2LrT0bNc4KdW9sYe3HfA"
	proposal := func(status string, shared, responded bool, comment string) object {
		o := object{
			{"proposal_id", "3f2b8c1e-7d4a-4b9e-9c61-2a5e8f0d4b17"},
			{"name", "Website redesign"},
			{"status", status},
			{"client_name", "Acme Corp"},
			{"total", json.Number("12450.50")},
			{"currency", "USD"},
			{"share_url", nil},
			{"responded_at", nil},
			{"revision_comment", nil},
		}
		if shared {
			o[6].v = shareURL
		}
		if responded {
			o[7].v = ExampleTimestamp
		}
		if comment != "" {
			o[8].v = comment
		}
		return o
	}
	all := []string{"draft", "shared", "accepted", "rejected", "revision_requested"}

	add(ProposalCreated, proposalSchema(ProposalCreated, []string{"draft"}, never, never, never),
		proposal("draft", false, false, ""))
	add(ProposalUpdated, proposalSchema(ProposalUpdated, []string{"draft", "shared", "revision_requested"}, maybe, maybe, maybe),
		proposal("shared", true, false, ""))
	add(ProposalShared, proposalSchema(ProposalShared, []string{"shared"}, always, never, never),
		proposal("shared", true, false, ""))
	add(ProposalAccepted, proposalSchema(ProposalAccepted, []string{"accepted"}, always, always, never),
		proposal("accepted", true, true, ""))
	add(ProposalRejected, proposalSchema(ProposalRejected, []string{"rejected"}, always, always, never),
		proposal("rejected", true, true, ""))
	add(ProposalRevisionRequested, proposalSchema(ProposalRevisionRequested, []string{"revision_requested"}, always, always, maybe),
		proposal("revision_requested", true, true, "Could you split the design work into two phases?"))
	// The test event's sample mirrors proposal.SampleProposal: every field set.
	add(TestEvent, proposalSchema(TestEvent, all, maybe, maybe, maybe), object{
		{"proposal_id", "00000000-0000-4000-8000-000000000000"},
		{"name", "Website redesign"},
		{"status", "revision_requested"},
		{"client_name", "Acme Corp"},
		{"total", json.Number("6606.00")},
		{"currency", "USD"},
		{"share_url", "https://app.quikly.example/p/SampleShareTokenOfTheTestEvent00"},
		{"responded_at", ExampleTimestamp},
		{"revision_comment", "Could you split the design work into two phases?"},
	})

	lead := func(status string) object {
		return object{
			{"lead_session_id", "9b1d7e4a-52c3-4f0e-8a6d-1c2b3e4f5a60"},
			{"channel", "telegram"},
			{"channel_id", "482913057"},
			{"client_name", "Jane Doe"},
			{"brief", "A five-page website for a bakery, with online orders."},
			{"status", status},
		}
	}
	add(LeadSessionCreated, leadSchema(LeadSessionCreated, []string{"gathering_info"}), lead("gathering_info"))
	add(LeadSessionUpdated, leadSchema(LeadSessionUpdated, []string{"proposal_ready", "completed", "abandoned"}), lead("proposal_ready"))

	add(WebhookDisabled, disabledSchema(), object{
		{"webhook_id", "wh_7KpQ3vNx9TzB2mLc"},
		{"name", "CRM sync"},
		{"url", "https://crm.example.com/hooks/quikly"},
		{"failing_since", "2026-03-29T09:12:44Z"},
		{"last_error", "connection refused"},
	})
	return m
}

// presence says whether a nullable field of a proposal event is set.
type presence int

const (
	maybe  presence = iota // a value or null
	always                 // never null
	never                  // always null
)

func nullableString(p presence, format, description string) object {
	o := object{}
	switch p {
	case maybe:
		o = append(o, kv{"type", []string{"string", "null"}})
	case always:
		o = append(o, kv{"type", "string"})
	case never:
		o = append(o, kv{"type", "null"})
	}
	if format != "" && p != never {
		o = append(o, kv{"format", format})
	}
	return append(o, kv{"description", description})
}

func statusSchema(statuses []string, description string) object {
	if len(statuses) == 1 {
		return object{{"const", statuses[0]}, {"description", description}}
	}
	return object{{"enum", statuses}, {"description", description}}
}

func objectSchema(event, title string, props object) object {
	required := make([]string, len(props))
	for i, p := range props {
		required[i] = p.k
	}
	return object{
		{"$schema", SchemaDialect},
		{"$id", "https://quikly.example/schemas/webhooks/" + event + ".json"},
		{"title", title},
		{"type", "object"},
		{"required", required},
		{"additionalProperties", false},
		{"properties", props},
	}
}

func proposalSchema(event string, statuses []string, shareURL, respondedAt, comment presence) object {
	return objectSchema(event, "Data of "+event, object{
		{"proposal_id", object{{"type", "string"}, {"format", "uuid"}, {"description", "The proposal's id."}}},
		{"name", object{{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"description", "The proposal's name."}}},
		{"status", statusSchema(statuses, "The proposal's status after the event.")},
		{"client_name", object{{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"description", "Who the proposal is for."}}},
		{"total", object{{"type", "number"}, {"minimum", 0}, {"description", "Sum of quantity × unit price, with exactly the currency's decimals."}}},
		{"currency", object{{"type", "string"}, {"pattern", "^[A-Z]{3}$"}, {"description", "ISO 4217 code."}}},
		{"share_url", nullableString(shareURL, "uri", "The link the client opens; null until the proposal was first shared.")},
		{"responded_at", nullableString(respondedAt, "date-time", "When the client answered (RFC 3339, UTC); null while unanswered.")},
		{"revision_comment", nullableString(comment, "", "The client's comment with a request for changes; null when none.")},
	})
}

func leadSchema(event string, statuses []string) object {
	return objectSchema(event, "Data of "+event, object{
		{"lead_session_id", object{{"type", "string"}, {"format", "uuid"}, {"description", "The lead session's id."}}},
		{"channel", object{{"enum", []string{"widget", "telegram", "api"}}, {"description", "Where the lead came from."}}},
		{"channel_id", object{{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"description", "The conversation's id in its channel."}}},
		{"client_name", object{{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"description", "The lead's name."}}},
		{"brief", object{{"type", "string"}, {"maxLength", 10000}, {"description", "What the lead asked for; may be empty."}}},
		{"status", statusSchema(statuses, "The lead session's status after the event.")},
	})
}

func disabledSchema() object {
	return objectSchema(WebhookDisabled, "Data of "+WebhookDisabled, object{
		{"webhook_id", object{{"type", "string"}, {"pattern", "^wh_"}, {"description", "The id of the webhook that was disabled (never the one receiving this event)."}}},
		{"name", object{{"type", "string"}, {"minLength", 1}, {"maxLength", NameMaxLen}, {"description", "Its name."}}},
		{"url", object{{"type", "string"}, {"format", "uri"}, {"description", "Its endpoint URL."}}},
		{"failing_since", object{{"type", "string"}, {"format", "date-time"}, {"description", "Its first failure after its last success (RFC 3339, UTC)."}}},
		{"last_error", object{{"type", "string"}, {"description", "Why its last attempt failed."}}},
	})
}

// object is a JSON object that keeps its keys in order.
type object []kv

type kv struct {
	k string
	v any
}

// MarshalJSON writes the keys in order.
func (o object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, p := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(p.k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(p.v)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

func mustJSON(o object) json.RawMessage {
	b, err := json.Marshal(o)
	if err != nil {
		panic("webhook: catalogue document: " + err.Error()) // static data: a bug, caught by every test
	}
	return b
}
