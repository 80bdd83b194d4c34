package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/quikly/webhooks/internal/errs"
)

// decodeSeeds are request bodies for the decode and handler fuzz targets: valid ones of each input
// type, and the hostile shapes SPEC §3 names (wrong types, nulls, unknown fields, not an object).
var decodeSeeds = []string{
	``, `{}`, `null`, `[]`, `"x"`, `1`, `{`, `{"name":`, "\xff", `{"name":"a"}{}`,
	`{"name":"CRM sync","url":"https://crm.example.com/hooks","events":["proposal.created"],"is_active":true}`,
	`{"name":null}`, `{"events":null}`, `{"events":"proposal.created"}`, `{"events":[1]}`, `{"is_active":"yes"}`,
	`{"url":"https://１２７.０.０.１/"}`, `{"name":"a","NAME":"b"}`, `{"Name":"x"}`, `{"unknown":1}`,
	`{"name":"Website","client_name":"Acme","client_email":null,"requirements":null,"currency":"USD","line_items":[{"description":"Design","quantity":2,"unit_price":1500.50}]}`,
	`{"currency":"JPY","line_items":[{"quantity":1e3,"unit_price":"10"}]}`,
	`{"line_items":[null,1,"x",[],{"quantity":null},{"extra":1},{"unit_price":-0.0},{"quantity":1.5e400}]}`,
	`{"line_items":{}}`, `{"client_email":null,"CLIENT_EMAIL":"a@b.c"}`, `{"client_email":"a@b.c","client_email":null}`,
	`{"channel":"widget","channel_id":"c1","client_name":"Ann","brief":"A site"}`, `{"status":"completed"}`, `{"status":1}`,
	`{"name":"\u202e\u0000"}`, `{"name":"\ud800"}`, ` {"name":"a"} `, `{"name":"a"} x`,
}

// inputTypes are the request types of the API, each with the fields it lets a client clear with null.
var inputTypes = []struct {
	name      string
	new       func() any
	clearable []string
}{
	{"webhook", func() any { return new(webhookInputJSON) }, nil},
	{"proposal", func() any { return new(proposalInputJSON) }, []string{"client_email", "requirements"}},
	{"lead session create", func() any { return new(leadSessionCreateJSON) }, nil},
	{"lead session update", func() any { return new(leadSessionUpdateJSON) }, nil},
}

// FuzzDecode: decode never panics on any body, for every request type of the API. It either fails
// with a SPEC §3 error of a request-body code (a validation error names at least one field), or it
// round-trips: the decoded value, encoded as a client would send it (left-out fields left out),
// decodes to the same value. Proposals' line items then go through lineItemInputs, which either
// names a line_items[i] field or gives one input per item. Seeds: testdata/fuzz/FuzzDecode. Run:
// go test ./internal/api -run '^$' -fuzz '^FuzzDecode$'.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range inputTypes {
			first := typ.new()
			err := decodeBody(body, first, typ.clearable)
			if err != nil {
				requireBodyError(t, typ.name, body, err)
				continue
			}
			encoded := clientEncoding(t, first)
			second := typ.new()
			if err := decodeBody(encoded, second, typ.clearable); err != nil {
				t.Fatalf("%s: %q decoded, was encoded as %s, which does not decode: %v", typ.name, body, encoded, err)
			}
			if !reflect.DeepEqual(normalize(first), normalize(second)) {
				t.Fatalf("%s: %q → %s → %#v: not the value first decoded, %#v", typ.name, body, encoded, second, first)
			}
			if p, ok := first.(*proposalInputJSON); ok && p.LineItems != nil {
				items, err := lineItemInputs(*p.LineItems)
				if err != nil {
					var e *errs.Error
					if !errors.As(err, &e) || e.Code != errs.Invalid || len(e.Fields) == 0 {
						t.Fatalf("line items of %q: want a validation error, got %#v", body, err)
					}
					for name := range e.Fields {
						if !strings.HasPrefix(name, "line_items[") {
							t.Fatalf("line items of %q: problem on %q, not a line item field", body, name)
						}
					}
				} else if len(items) != len(*p.LineItems) {
					t.Fatalf("line items of %q: %d inputs for %d items", body, len(items), len(*p.LineItems))
				}
			}
		}
	})
}

// decodeBody runs decode on body as a JSON request.
func decodeBody(body []byte, dst any, clearable []string) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return decode(httptest.NewRecorder(), r, dst, clearable...)
}

// requireBodyError checks that err is one decode may give: a SPEC §3 error with a request-body code.
func requireBodyError(t *testing.T, typ string, body []byte, err error) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %q: an error without a code (a 500): %v", typ, body, err)
	}
	switch e.Code {
	case errs.InvalidJSON, errs.TooLarge:
	case errs.Invalid:
		if len(e.Fields) == 0 {
			t.Fatalf("%s: %q: a validation error naming no field", typ, body)
		}
		// Each field named is the whole body or one the client sent (a key, matched as encoding/json
		// matches them, without regard to case), so the client can tell which of its fields is wrong.
		var sent map[string]json.RawMessage
		json.Unmarshal(body, &sent)
		for name, problem := range e.Fields {
			if problem == "" {
				t.Fatalf("%s: %q: no problem given for %q", typ, body, name)
			}
			if name == "body" || sentKey(sent, name) {
				continue
			}
			t.Fatalf("%s: %q: the error names %q, which the body does not hold: %v", typ, body, name, e.Fields)
		}
	default:
		t.Fatalf("%s: %q: code %s is not about a request body", typ, body, e.Code)
	}
	if e.Message == "" {
		t.Fatalf("%s: %q: error without a message", typ, body)
	}
}

// sentKey reports whether name is a key of sent, or a path into one ("events[0]", "a.b").
func sentKey(sent map[string]json.RawMessage, name string) bool {
	for k := range sent {
		if len(name) >= len(k) && strings.EqualFold(name[:len(k)], k) &&
			(len(name) == len(k) || name[len(k)] == '.' || name[len(k)] == '[') {
			return true
		}
	}
	return false
}

// clientEncoding is v as JSON without its nil fields: a client leaves out what it does not set
// (null means "clear" only for the clearable fields, and "" is how decode reports that).
func clientEncoding(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %#v: %v", v, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("re-reading %s: %v", b, err)
	}
	for k, raw := range fields {
		if string(raw) == "null" {
			delete(fields, k)
		}
	}
	out, err := json.Marshal(fields)
	if err != nil {
		t.Fatalf("encoding %v: %v", fields, err)
	}
	return out
}

// normalize compacts the raw JSON of proposal line items, which encoding rewrites without white
// space; every other value compares as decoded.
func normalize(v any) any {
	p, ok := v.(*proposalInputJSON)
	if !ok || p.LineItems == nil {
		return v
	}
	c := *p
	items := make([]json.RawMessage, len(*p.LineItems))
	for i, raw := range *p.LineItems {
		items[i] = canonical(raw)
	}
	c.LineItems = &items
	return &c
}

// canonical returns raw re-encoded by encoding/json (keys sorted, its escaping, numbers as written),
// so that two spellings of one JSON value compare equal: a client's "&" and the encoder's "\u0026".
func canonical(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}
