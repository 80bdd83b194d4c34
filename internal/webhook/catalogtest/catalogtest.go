// Package catalogtest checks webhook bodies against the event catalogue's JSON Schemas; tests import
// it, the service does not (so the validator stays out of the binary).
package catalogtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/quikly/webhooks/internal/webhook"
)

// envelopeTimestamp is the exact timestamp form of SPEC §5 bodies: RFC 3339, UTC, whole seconds, "Z".
const envelopeTimestamp = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`

// schemas compiles, once, two schemas per documented event: its data schema (as the catalogue
// publishes it) and the whole json-format body around it.
var schemas = sync.OnceValues(func() (map[string][2]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // format is only an annotation in 2020-12 unless asserted
	out := map[string][2]*jsonschema.Schema{}
	for _, event := range webhook.Documented() {
		dataURL := "https://quikly.example/schemas/webhooks/" + event + ".json"
		bodyURL := "https://quikly.example/schemas/webhooks/" + event + ".body.json"
		data, err := jsonschema.UnmarshalJSON(bytes.NewReader(webhook.Schema(event)))
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", event, err)
		}
		if err := c.AddResource(dataURL, data); err != nil {
			return nil, fmt.Errorf("schema of %s: %w", event, err)
		}
		body := map[string]any{
			"$schema":              webhook.SchemaDialect,
			"type":                 "object",
			"required":             []any{"event", "timestamp", "webhook_id", "data"},
			"additionalProperties": false,
			"properties": map[string]any{
				"event":      map[string]any{"const": event},
				"timestamp":  map[string]any{"type": "string", "format": "date-time", "pattern": envelopeTimestamp},
				"webhook_id": map[string]any{"type": "string", "pattern": "^wh_[0-9A-Za-z]+$"},
				"data":       map[string]any{"$ref": dataURL},
			},
		}
		if err := c.AddResource(bodyURL, body); err != nil {
			return nil, fmt.Errorf("body schema of %s: %w", event, err)
		}
		var pair [2]*jsonschema.Schema
		for i, u := range []string{dataURL, bodyURL} {
			if pair[i], err = c.Compile(u); err != nil {
				return nil, fmt.Errorf("compile %s: %w", u, err)
			}
		}
		out[event] = pair
	}
	return out, nil
})

// ValidateBody returns nil when body is a json-format webhook body (SPEC §5) as Quikly sends it:
// exactly the keys event, timestamp (RFC 3339, UTC, whole seconds), webhook_id ("wh_…") and data,
// where event is a documented type (webhook.Documented: the catalogue or "test") and data validates
// against that event's published schema (webhook.Schema). Otherwise the error says what is wrong.
// It is safe for concurrent use.
func ValidateBody(body []byte) error {
	var head struct {
		Event string `json:"event"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return fmt.Errorf("body is not a JSON object: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return validate(head.Event, 1, inst)
}

// ValidateData returns nil when data validates against the schema of event (webhook.Schema).
func ValidateData(event string, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return validate(event, 0, inst)
}

func validate(event string, which int, inst any) error {
	all, err := schemas()
	if err != nil {
		return err
	}
	pair, ok := all[event]
	if !ok {
		return fmt.Errorf("event %q has no schema in the catalogue", event)
	}
	if err := pair[which].Validate(inst); err != nil {
		return fmt.Errorf("%s: %w", event, err)
	}
	return nil
}

// RequireBody fails t at once unless body passes ValidateBody.
func RequireBody(t testing.TB, body []byte) {
	t.Helper()
	if err := ValidateBody(body); err != nil {
		t.Fatalf("body does not match the catalogue: %v\nbody: %s", err, body)
	}
}
