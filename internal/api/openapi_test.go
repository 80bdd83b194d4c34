package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/webhook"
)

// TestOpenAPIDocumentIsValid validates the served document against the OpenAPI 3.1 schema.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := libopenapi.NewDocument(OpenAPI())
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())
	model, err := doc.BuildV3Model()
	require.NoError(t, err, "the document must resolve every $ref")
	require.NotNil(t, model)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s: %s (line %d)", e.Message, e.Reason, e.SpecLine)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s", se.Reason, se.FieldPath)
		}
	}
	require.True(t, ok)
}

// openapiOperations returns "METHOD /path" of every operation of the document's paths.
func openapiOperations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(OpenAPI(), &doc))
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIDescribesEveryRoute fails when a route is registered without its description in
// openapi/*.yaml, or described without being registered.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := New(nil, Config{RateLimit: -1})
	routes := []string{"GET /openapi.json"} // served before authentication
	for _, r := range h.Routes() {
		method, path, _ := strings.Cut(r, " ")
		routes = append(routes, method+" "+strings.TrimPrefix(path, Prefix))
	}
	slices.Sort(routes)
	require.Greater(t, len(routes), 1)
	require.Equal(t, routes, openapiOperations(t),
		"routes registered in api.go (left) and operations described in openapi/*.yaml (right) differ")
}

// TestOpenAPIServedWithoutKey checks the route: no API key, JSON, the embedded document; other
// methods are 405 in the API's error shape.
func TestOpenAPIServedWithoutKey(t *testing.T) {
	h := New(nil, Config{RateLimit: -1})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/external/v1/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Equal(t, OpenAPI(), rec.Body.Bytes())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/external/v1/openapi.json", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	require.JSONEq(t, `{"error":{"code":"method_not_allowed","message":"POST is not allowed here; use GET."}}`, rec.Body.String())
}

// TestOpenAPIEventsMatchCatalogue keeps the document's events in step with the catalogue: the
// EventType enum, and one `webhooks` entry per event (plus test) whose description is the catalogue's.
func TestOpenAPIEventsMatchCatalogue(t *testing.T) {
	var doc struct {
		Webhooks map[string]struct {
			Post struct {
				Description string `json:"description"`
			} `json:"post"`
		} `json:"webhooks"`
		Components struct {
			Schemas struct {
				EventType struct {
					Enum []string `json:"enum"`
				} `json:"EventType"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(OpenAPI(), &doc))
	var events []string
	for _, e := range webhook.Catalogue {
		events = append(events, e.Event)
		require.Equal(t, e.Description, doc.Webhooks[e.Event].Post.Description, e.Event)
	}
	require.Equal(t, events, doc.Components.Schemas.EventType.Enum)
	require.Contains(t, doc.Webhooks, webhook.TestEvent)
	require.Len(t, doc.Webhooks, len(events)+1)
}

// TestOpenAPIFragmentsMerge checks the merge of fragments: maps merge, order is kept, and a key
// described twice is an error rather than a silent override.
func TestOpenAPIFragmentsMerge(t *testing.T) {
	fsys := fstest.MapFS{
		"openapi/00.yaml": {Data: []byte("openapi: 3.1.0\npaths:\n  /b: {get: {summary: b}}\nn: 200.50\n")},
		"openapi/10.yaml": {Data: []byte("paths:\n  /a: {get: {summary: a}}\n")},
	}
	doc, err := buildOpenAPI(fsys)
	require.NoError(t, err)
	require.JSONEq(t, `{"openapi":"3.1.0","paths":{"/b":{"get":{"summary":"b"}},"/a":{"get":{"summary":"a"}}},"n":200.50}`, string(doc))
	require.Less(t, strings.Index(string(doc), "/b"), strings.Index(string(doc), "/a"), "keys keep their written order")
	require.Contains(t, string(doc), "200.50")

	fsys["openapi/20.yaml"] = &fstest.MapFile{Data: []byte("paths:\n  /a: {get: {summary: again}}\n")}
	_, err = buildOpenAPI(fsys)
	require.ErrorContains(t, err, "/a/get/summary is described twice")
}
