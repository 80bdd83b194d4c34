package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/api"
)

// recordingTB records Errorf instead of failing, to test that the checker fails tests.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// fakeAPI answers every request with status, headers and body, as a broken API would.
func fakeAPI(t *testing.T, status int, header map[string]string, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const webhookJSON = `{"id":"wh_2Qx8mD0k3Jf9LrT5vB7nZc1a","name":"CRM","url":"https://crm.example.com/h",` +
	`"events":["proposal.created"],"is_active":true,"disabled_reason":null,"disabled_at":null,"format":"json","headers":{},"rate_limit":null,"created_at":"2026-04-03T14:30:00Z","updated_at":"2026-04-03T14:30:00Z"}`

// TestOpenAPICheckerFailsUndescribedResponses sends requests through the API client's transport to
// a server that answers what the document does or does not describe, and checks which ones fail
// the test.
func TestOpenAPICheckerFailsUndescribedResponses(t *testing.T) {
	js := map[string]string{"Content-Type": "application/json"}
	errBody := `{"error":{"code":"not_found","message":"No such webhook."}}`
	cases := []struct {
		name         string
		method, path string
		status       int
		header       map[string]string
		body         string
		wantProblem  string // "" when the response is described
	}{
		{"Described", "GET", "/webhooks/wh_1", 200, js, webhookJSON, ""},
		{"DescribedError", "GET", "/webhooks/wh_1", 404, js, errBody, ""},
		{"DescribedEmpty", "DELETE", "/webhooks/wh_1", 204, nil, "", ""},
		{"UndescribedStatus", "GET", "/webhooks/wh_1", 418, js, errBody, "418"},
		{"UndescribedField", "GET", "/webhooks/wh_1", 200, js, strings.Replace(webhookJSON, `"name"`, `"secret":"whsec_x","name"`, 1), "secret"},
		{"MissingField", "GET", "/webhooks/wh_1", 200, js, strings.Replace(webhookJSON, `"is_active":true,`, "", 1), "is_active"},
		{"WrongType", "GET", "/webhooks/wh_1", 200, js, strings.Replace(webhookJSON, `"is_active":true`, `"is_active":"yes"`, 1), "is_active"},
		{"BadTimestamp", "GET", "/webhooks/wh_1", 200, js, strings.Replace(webhookJSON, `"2026-04-03T14:30:00Z"`, `"2026-04-03 14:30"`, 1), "created_at"},
		{"UnknownErrorCode", "GET", "/webhooks/wh_1", 404, js, `{"error":{"code":"gone","message":"x"}}`, "code"},
		{"RateLimitWithoutRetryAfter", "GET", "/webhooks", 429, js, `{"error":{"code":"rate_limited","message":"x"}}`, "Retry-After"},
		{"NotJSON", "GET", "/webhooks/wh_1", 200, map[string]string{"Content-Type": "text/plain"}, "hello", "text/plain"},
		{"UnknownPath404", "GET", "/nope", 404, js, errBody, ""},
		{"UnknownPath200", "GET", "/nope", 200, js, `{}`, "200"},
		{"OtherMethod405", "PATCH", "/webhooks/wh_1", 405, map[string]string{"Content-Type": "application/json", "Allow": "DELETE, GET, PUT"},
			`{"error":{"code":"method_not_allowed","message":"x"}}`, ""},
		{"OtherMethodWrongAllow", "PATCH", "/webhooks/wh_1", 405, map[string]string{"Content-Type": "application/json", "Allow": "GET"},
			`{"error":{"code":"method_not_allowed","message":"x"}}`, "Allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := fakeAPI(t, tc.status, tc.header, tc.body)
			tb := &recordingTB{TB: t}
			client := &http.Client{Transport: checkingTransport{t: tb, next: http.DefaultTransport}}
			req, err := http.NewRequest(tc.method, base+api.Prefix+tc.path, nil)
			require.NoError(t, err)
			res, err := client.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, tc.body, string(body), "the caller still reads the whole body")
			if tc.wantProblem == "" {
				require.Empty(t, tb.errors)
				return
			}
			require.Len(t, tb.errors, 1)
			require.Contains(t, tb.errors[0], tc.wantProblem)
		})
	}
}

// TestOpenAPICheckerIgnoresOtherPaths leaves responses outside the API alone (the share page, the
// console, /metrics).
func TestOpenAPICheckerIgnoresOtherPaths(t *testing.T) {
	base := fakeAPI(t, 418, nil, "teapot")
	tb := &recordingTB{TB: t}
	client := &http.Client{Transport: checkingTransport{t: tb, next: http.DefaultTransport}}
	res, err := client.Get(base + "/p/token")
	require.NoError(t, err)
	res.Body.Close()
	require.Empty(t, tb.errors)
}

// TestOpenAPIServedDocumentIsChecked fetches the document from a real service through the checking
// client: the route itself is described, needs no key, and serves what the checker uses.
func TestOpenAPIServedDocumentIsChecked(t *testing.T) {
	e := Start(t, Options{})
	res, err := e.APIClient().Get(e.URL + api.Prefix + "/openapi.json")
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, api.OpenAPI(), body)
}

// TestOpenAPICheckDeliveryFails checks the delivery check on a made-up delivery: described, then
// with a header missing, a malformed signature and a body of the wrong shape.
func TestOpenAPICheckDeliveryFails(t *testing.T) {
	checker, err := sharedChecker()
	require.NoError(t, err)
	body := []byte(`{"event":"lead_session.created","timestamp":"2026-04-03T14:30:00Z","webhook_id":"wh_2Qx8mD0k3Jf9LrT5vB7nZc1a",` +
		`"data":{"lead_session_id":"0192f3a4-5b6c-7d8e-9f01-23456789abcd","channel":"api","channel_id":"1","client_name":"Ada","brief":"","status":"gathering_info"}}`)
	header := http.Header{}
	for k, v := range map[string]string{"Content-Type": "application/json", "User-Agent": "Quikly-Webhooks/dev",
		"X-Quikly-Event": "lead_session.created", "X-Quikly-Signature": strings.Repeat("ab", 32), "X-Quikly-Timestamp": "1775226600",
		"X-Quikly-Webhook-Id": "wh_2Qx8mD0k3Jf9LrT5vB7nZc1a", "webhook-id": "evt_2Qx8mD0k3Jf9LrT5vB7nZc1a", "webhook-timestamp": "1775226600",
		"webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="} {
		header.Set(k, v)
	}
	require.Empty(t, checker.CheckDelivery("lead_session.created", header, body))
	require.NotEmpty(t, checker.CheckDelivery("proposal.created", header, body), "the body's event is not the entry's")
	require.NotEmpty(t, checker.CheckDelivery("lead_session.deleted", header, body))

	missing := header.Clone()
	missing.Del("webhook-id")
	require.Contains(t, strings.Join(checker.CheckDelivery("lead_session.created", missing, body), "\n"), "webhook-id is missing")
	bad := header.Clone()
	bad.Set("X-Quikly-Signature", "ABC")
	require.Contains(t, strings.Join(checker.CheckDelivery("lead_session.created", bad, body), "\n"), "X-Quikly-Signature")
	require.NotEmpty(t, checker.CheckDelivery("lead_session.created", header, []byte(strings.Replace(string(body), `"brief":"",`, "", 1))))
}
