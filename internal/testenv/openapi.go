package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/quikly/webhooks/internal/api"
)

// OpenAPIChecker checks responses of the API against its OpenAPI document (SPEC §14): status,
// headers and body of each must be described. Build it with NewOpenAPIChecker; it is safe for
// concurrent use.
type OpenAPIChecker struct {
	mu       sync.Mutex // the validator's caches are not documented as safe for concurrent use
	model    *v3.Document
	opts     *config.ValidationOptions
	validate validator.Validator
	errorDoc *base.Schema
}

var sharedChecker = sync.OnceValues(func() (*OpenAPIChecker, error) { return NewOpenAPIChecker(api.OpenAPI()) })

// NewOpenAPIChecker parses an OpenAPI 3.1 document.
func NewOpenAPIChecker(doc []byte) (*OpenAPIChecker, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse the OpenAPI document: %w", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build the OpenAPI model: %w", err)
	}
	opts := []config.Option{config.WithFormatAssertions()}
	c := &OpenAPIChecker{model: &m.Model, opts: config.NewValidationOptions(opts...),
		validate: validator.NewValidatorFromV3Model(&m.Model, opts...)}
	if c.errorDoc = m.Model.Components.Schemas.GetOrZero("Error").Schema(); c.errorDoc == nil {
		return nil, fmt.Errorf("the OpenAPI document has no Error schema")
	}
	return c, nil
}

// Check returns what in res (whose body is body) the document does not describe; nil when
// everything is described. A path the document lacks must answer 401 or 404 with an error body,
// and a method a described path lacks 401 or 405 with an error body and an Allow header naming the
// path's methods, as the document's introduction says.
func (c *OpenAPIChecker) Check(req *http.Request, res *http.Response, body []byte) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	defer func() { res.Body = io.NopCloser(bytes.NewReader(body)) }()
	item, _, _ := paths.FindPath(req, c.model, c.opts)
	switch {
	case item == nil:
		return c.checkError(res, body, http.StatusUnauthorized, http.StatusNotFound)
	case helpers.ExtractOperation(req, item) == nil:
		problems := c.checkError(res, body, http.StatusUnauthorized, http.StatusMethodNotAllowed)
		if res.StatusCode == http.StatusMethodNotAllowed {
			var methods []string
			for m := range item.GetOperations().KeysFromOldest() {
				methods = append(methods, strings.ToUpper(m))
			}
			allow := strings.Split(res.Header.Get("Allow"), ", ")
			slices.Sort(methods)
			slices.Sort(allow)
			if !slices.Equal(methods, allow) {
				problems = append(problems, fmt.Sprintf("Allow: %v, but the document lists %v", allow, methods))
			}
		}
		return problems
	}
	ok, errs := c.validate.ValidateHttpResponse(req, res)
	if ok {
		return nil
	}
	var problems []string
	for _, e := range errs {
		p := e.Message + ": " + e.Reason
		for _, se := range e.SchemaValidationErrors {
			p += fmt.Sprintf("; %s at %s", se.Reason, se.FieldPath)
		}
		problems = append(problems, p)
	}
	return problems
}

// checkError checks a response outside the document's operations: one of statuses, with a body of
// the Error schema.
func (c *OpenAPIChecker) checkError(res *http.Response, body []byte, statuses ...int) []string {
	var problems []string
	if !slices.Contains(statuses, res.StatusCode) {
		problems = append(problems, fmt.Sprintf("status %d is not described (expected one of %v)", res.StatusCode, statuses))
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "Content-Type "+ct+" is not application/json")
	}
	if ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(c.errorDoc, body); !ok {
		for _, e := range errs {
			problems = append(problems, "not an Error body: "+e.Reason)
		}
	}
	return problems
}

// checkingTransport is the RoundTripper of Env's API client: it fails the test on any response
// under the API's prefix that the OpenAPI document does not describe.
type checkingTransport struct {
	t    testing.TB
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (c checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, api.Prefix+"/") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	checker, err := sharedChecker()
	if err != nil {
		c.t.Errorf("OpenAPI document: %v", err)
	} else if problems := checker.Check(req, res, body); len(problems) > 0 {
		c.t.Errorf("%s %s answered %d, which the OpenAPI document does not describe:\n  %s\nbody: %s",
			req.Method, req.URL.RequestURI(), res.StatusCode, strings.Join(problems, "\n  "), body)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// APIClient returns an HTTP client whose every API response is checked against the OpenAPI
// document; Do and DoRaw use it.
func (e *Env) APIClient() *http.Client {
	return &http.Client{Transport: checkingTransport{t: e.t, next: http.DefaultTransport}}
}

// CheckDelivery returns what in a delivery (the headers and body a receiver got) the document's
// `webhooks` entry for event does not describe; nil when everything is described.
func (c *OpenAPIChecker) CheckDelivery(event string, header http.Header, body []byte) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	item := c.model.Webhooks.GetOrZero(event)
	if item == nil || item.Post == nil {
		return []string{"event " + event + " is not in the document's webhooks"}
	}
	var problems []string
	sv := schema_validation.NewSchemaValidator(config.WithExistingOpts(c.opts))
	for _, p := range item.Post.Parameters {
		if p.In != "header" {
			continue
		}
		v := header.Get(p.Name)
		if v == "" {
			if p.Required != nil && *p.Required {
				problems = append(problems, "header "+p.Name+" is missing")
			}
			continue
		}
		quoted, _ := json.Marshal(v)
		if ok, errs := sv.ValidateSchemaBytes(p.Schema.Schema(), quoted); !ok {
			for _, e := range errs {
				problems = append(problems, "header "+p.Name+": "+e.Reason)
			}
		}
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "Content-Type "+ct+" is not application/json")
	}
	media := item.Post.RequestBody.Content.GetOrZero("application/json")
	if ok, errs := sv.ValidateSchemaBytes(media.Schema.Schema(), body); !ok {
		for _, e := range errs {
			p := "body: " + e.Reason
			for _, se := range e.SchemaValidationErrors {
				p += fmt.Sprintf("; %s at %s", se.Reason, se.FieldPath)
			}
			problems = append(problems, p)
		}
	}
	return problems
}

// CheckDelivery fails the test when the document's `webhooks` section does not describe a delivery
// of event that a receiver got.
func (e *Env) CheckDelivery(event string, got Received) {
	e.t.Helper()
	checker, err := sharedChecker()
	if err != nil {
		e.t.Fatalf("OpenAPI document: %v", err)
	}
	if problems := checker.CheckDelivery(event, got.Header, got.Body); len(problems) > 0 {
		e.t.Errorf("a %s delivery the OpenAPI document does not describe:\n  %s\nbody: %s", event, strings.Join(problems, "\n  "), got.Body)
	}
}
