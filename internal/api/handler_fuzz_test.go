package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/store/sqlite"
)

// FuzzAPIRequest sends fuzzed bodies, with fuzzed Content-Type headers, to every API route that
// reads a JSON body (create and update of webhooks, proposals and lead sessions), and fuzzed
// ?limit= and ?cursor= to every list, through the real handler over a real SQLite store, and checks
// SPEC §3: never a 5xx (a list answers 200 or 422); every answer is JSON; an error
// is exactly {"error":{code,message[,fields]}} with the status of its code and, for a validation
// error, at least one field; a refused request changes nothing stored; and what a successful
// request answers is what is stored. Seeds: testdata/fuzz/FuzzAPIRequest. Run:
// go test ./internal/api -run '^$' -fuzz '^FuzzAPIRequest$'.
func FuzzAPIRequest(f *testing.F) {
	for i, s := range decodeSeeds {
		f.Add(uint8(i), "application/json", []byte(s))
	}
	f.Add(uint8(0), "text/plain", []byte(`{}`))
	f.Add(uint8(1), "application/json; charset=utf-8", []byte(`{"is_active":false}`))
	f.Add(uint8(3), "APPLICATION/JSON ; x=\"y\"", []byte(`{"line_items":[]}`))
	f.Add(uint8(2), "", []byte(`{"name":"n","client_name":"c","currency":"KWD","line_items":[{"description":"d","quantity":1,"unit_price":0.001}]}`))
	f.Add(uint8(5), "application/json", []byte(`{"status":"abandoned","brief":"  "}`))
	f.Add(uint8(6), "", []byte("YzE6d2hfMQ"))
	f.Add(uint8(7), "201", []byte("YzE6d2hfMQ\x00"))
	f.Add(uint8(8), "1", []byte("YzE6MGI5ZTVjMWUtOGQwYS00YjhlLTljM2YtMmExZDVlNmY3YThi"))
	f.Add(uint8(9), "-1", []byte("\xff"))

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "quikly.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	a := &app.App{Store: db, BaseURL: "http://localhost:8080", MaxWebhooks: -1}
	key, err := a.CreateAPIKey(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	acct, err := a.Authenticate(ctx, key)
	if err != nil {
		f.Fatal(err)
	}
	name, target, events := "Fuzz target", "https://hooks.example.com/in", []string{"proposal.created"}
	wh, err := a.CreateWebhook(ctx, acct.ID, app.WebhookInput{Name: &name, URL: &target, Events: &events})
	if err != nil {
		f.Fatal(err)
	}
	p, err := a.CreateProposal(ctx, acct.ID, proposal.ProposalCreate{Name: "Site", ClientName: "Acme", Currency: "USD",
		LineItems: []proposal.LineItemInput{{Description: "Design", Quantity: "1", UnitPrice: "10.00"}}})
	if err != nil {
		f.Fatal(err)
	}
	l, err := a.CreateLeadSession(ctx, acct.ID, proposal.LeadSessionCreate{Channel: "api", ChannelID: "c1", ClientName: "Ann", Brief: "A site"})
	if err != nil {
		f.Fatal(err)
	}
	h := New(a, Config{RateLimit: -1})

	type route struct{ method, path, list string }
	routes := []route{
		{"POST", "/webhooks", "/webhooks"},
		{"PUT", "/webhooks/" + wh.ID, "/webhooks"},
		{"POST", "/proposals", "/proposals"},
		{"PUT", "/proposals/" + p.ID, "/proposals"},
		{"POST", "/lead-sessions", "/lead-sessions"},
		{"PUT", "/lead-sessions/" + l.ID, "/lead-sessions"},
		// Lists: the fuzzed Content-Type is sent as ?limit= and the body as ?cursor=.
		{"GET", "/webhooks", "/webhooks"},
		{"GET", "/webhooks/" + wh.ID + "/logs", "/webhooks"},
		{"GET", "/proposals", "/proposals"},
		{"GET", "/lead-sessions", "/lead-sessions"},
	}
	do := func(t *testing.T, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, Prefix+path, bytes.NewReader(body))
		r.Header.Set("X-API-Key", key)
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType} // raw, as a hostile client sends it
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	get := func(t *testing.T, path string) []byte {
		w := do(t, "GET", path, "", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		return w.Body.Bytes()
	}

	f.Fuzz(func(t *testing.T, pick uint8, contentType string, body []byte) {
		rt := routes[int(pick)%len(routes)]
		if rt.method == "GET" {
			q := url.Values{"limit": {contentType}, "cursor": {string(body)}}
			w := do(t, "GET", rt.path+"?"+q.Encode(), "", nil)
			switch {
			case w.Code == http.StatusOK:
				if !json.Valid(w.Body.Bytes()) {
					t.Fatalf("GET %s limit=%q cursor=%q: 200 with a body that is not JSON: %s", rt.path, contentType, body, w.Body)
				}
			case w.Code == http.StatusUnprocessableEntity:
				requireErrorJSON(t, w)
			default:
				t.Fatalf("GET %s limit=%q cursor=%q: %d %s", rt.path, contentType, body, w.Code, w.Body)
			}
			return
		}
		// What is stored before: the object updated, or the newest of the list created into.
		watched := rt.path
		if rt.method == "POST" {
			watched = rt.list + "?limit=1"
		}
		before := get(t, watched)

		w := do(t, rt.method, rt.path, contentType, body)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s %q: Content-Type %q", rt.method, rt.path, body, ct)
		}
		if w.Code >= 400 {
			requireErrorJSON(t, w)
			if after := get(t, watched); !bytes.Equal(before, after) {
				t.Fatalf("%s %s %q was refused (%d) but changed what is stored:\n%s\n%s", rt.method, rt.path, body, w.Code, before, after)
			}
			return
		}
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s %s %q: %d with a body that is not a JSON object: %s", rt.method, rt.path, body, w.Code, w.Body)
		}
		id, _ := got["id"].(string)
		if id == "" {
			t.Fatalf("%s %s %q: %d without an id: %s", rt.method, rt.path, body, w.Code, w.Body)
		}
		delete(got, "secret") // shown on create only
		var stored map[string]any
		json.Unmarshal(get(t, rt.list+"/"+id), &stored)
		if !jsonEqual(got, stored) {
			t.Fatalf("%s %s %q answered\n%v\nbut stored\n%v", rt.method, rt.path, body, got, stored)
		}
	})
}

// requireErrorJSON checks a SPEC §3 error answer.
func requireErrorJSON(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		t.Fatalf("%d: error body is not {\"error\":{…}}: %v: %s", w.Code, err, w.Body)
	}
	switch {
	case e.Error.Code == "" || e.Error.Message == "":
		t.Fatalf("%d: error without code or message: %s", w.Code, w.Body)
	case errs.Status(e.Error.Code) != w.Code:
		t.Fatalf("%d: code %s has status %d: %s", w.Code, e.Error.Code, errs.Status(e.Error.Code), w.Body)
	case e.Error.Code == errs.Invalid && len(e.Error.Fields) == 0:
		t.Fatalf("%d: validation error naming no field: %s", w.Code, w.Body)
	case e.Error.Code != errs.Invalid && e.Error.Fields != nil:
		t.Fatalf("%d: fields on a %s error: %s", w.Code, e.Error.Code, w.Body)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
