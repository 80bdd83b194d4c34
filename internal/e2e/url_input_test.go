package e2e_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/api"
	"github.com/quikly/webhooks/internal/testenv"
)

// rawResponse is an answer to a request sent byte for byte as written.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// rawRequest sends "METHOD target HTTP/1.1" over a fresh connection exactly as given: no client
// library cleans, escapes or follows anything.
func rawRequest(t *testing.T, baseURL, key, method, target string) *rawResponse {
	t.Helper()
	u, err := url.Parse(baseURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n", method, target, u.Host)
	if key != "" {
		req += "X-API-Key: " + key + "\r\n"
	}
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return &rawResponse{Status: res.StatusCode, Header: res.Header, Body: body}
}

// requireJSONError checks a SPEC §3 error of the given status and returns its code and fields.
func requireJSONError(t *testing.T, res *rawResponse, status int, what string) (string, map[string]any) {
	t.Helper()
	require.Equal(t, status, res.Status, "%s: %s", what, res.Body)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"), "%s: %s", what, res.Body)
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Fields  map[string]any `json:"fields"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &body), "%s: %s", what, res.Body)
	require.NotEmpty(t, body.Error.Code, what)
	require.NotEmpty(t, body.Error.Message, what)
	return body.Error.Code, body.Error.Fields
}

// TestMalformedURLsAreRefusedOnEveryRoute sends NUL, invalid UTF-8, bad percent-encoding and
// impossible ids in every path parameter and in the query of every route of the API (walked from the
// router, so a new route is covered without editing this test), on SQLite and PostgreSQL alike: each
// is 404 (an id that cannot exist) or 422 naming the parameter, in the JSON error shape; never 500.
func TestMalformedURLsAreRefusedOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	rec := testenv.NewReceiver(t)
	wh := createWebhook(t, e, e.Key, rec.URL)
	whID := wh["id"].(string)
	att := e.Do(e.Key, "POST", "/webhooks/"+whID+"/test", nil)
	require.Equal(t, http.StatusOK, att.Status, "%s", att.Body)
	attID := att.JSON(t)["id"].(string)
	p := e.Do(e.Key, "POST", "/proposals", map[string]any{"name": "Site", "client_name": "Ann", "currency": "USD",
		"line_items": []any{map[string]any{"description": "Design", "quantity": 1, "unit_price": 10}}})
	require.Equal(t, http.StatusCreated, p.Status, "%s", p.Body)
	ls := e.Do(e.Key, "POST", "/lead-sessions", map[string]any{"channel": "api", "channel_id": "c1", "client_name": "Ann", "brief": ""})
	require.Equal(t, http.StatusCreated, ls.Status, "%s", ls.Body)
	// valid names an existing object for each wildcard, so that each bad value is the only thing wrong.
	valid := map[string]string{"webhooks": whID, "logs": attID, "proposals": p.JSON(t)["id"].(string),
		"lead-sessions": ls.JSON(t)["id"].(string)}

	routes := api.New(e.Service.App, api.Config{}).Routes()
	require.GreaterOrEqual(t, len(routes), 15, "the router lists its routes: %v", routes)

	// Values that are not text at all: 422 naming the parameter.
	notText := []string{"%00", "wh_%00", "att_abc%00def", "%ff", "wh_%ff%fe", "%C0%80", "%ed%a0%80", "%01", "%7f", "%c2%85"}
	// Text that no id has: 404.
	impossible := []string{strings.Repeat("a", 5000), "wh_" + strings.Repeat("A", 300), "%e2%80%ae", "wh_abc%20def",
		"%27%20OR%201%3D1--", "a%2Fb", "%F0%9F%9A%80"}
	bad := func(t *testing.T, res *rawResponse, status int, field, what string) {
		t.Helper()
		code, fields := requireJSONError(t, res, status, what)
		if status == http.StatusUnprocessableEntity {
			require.Equal(t, "validation_failed", code, what)
			require.Contains(t, fields, field, "%s: %s", what, res.Body)
		} else {
			require.Equal(t, "not_found", code, what)
		}
	}

	lists := 0
	for _, route := range routes {
		method, pattern, _ := strings.Cut(route, " ")
		segs := strings.Split(pattern, "/")
		fill := func(i int, v string) string {
			out := make([]string, len(segs))
			for j, s := range segs {
				switch {
				case j == i:
					out[j] = v
				case strings.HasPrefix(s, "{"):
					out[j] = valid[segs[j-1]]
					if out[j] == "" {
						out[j] = "zz_1"
					}
				default:
					out[j] = s
				}
			}
			return strings.Join(out, "/")
		}
		t.Run(strings.NewReplacer("/", "_", "{", "", "}", "").Replace(route), func(t *testing.T) {
			for i, s := range segs {
				if !strings.HasPrefix(s, "{") {
					continue
				}
				name := strings.Trim(s, "{}")
				for _, v := range notText {
					bad(t, rawRequest(t, e.URL, e.Key, method, fill(i, v)), 422, name, route+" "+name+"="+v)
				}
				for _, v := range impossible {
					bad(t, rawRequest(t, e.URL, e.Key, method, fill(i, v)), 404, name, route+" "+name+"="+v)
				}
			}
			target := fill(-1, "")
			for query, field := range map[string]string{
				"cursor=%%%garbage": "cursor", "cursor=%00": "cursor", "cursor=%ff": "cursor", "cursor=%zz": "cursor",
				"limit=%00": "limit", "event=%00": "event", "status=%ff%fe": "status", "event=a%0Ab": "event",
				"%zz=1": "query", "%00=1": "query", "cursor=a;b": "cursor", "limit=1&cursor=%": "cursor",
			} {
				bad(t, rawRequest(t, e.URL, e.Key, method, target+"?"+query), 422, field, route+"?"+query)
			}
			if method == "GET" {
				// A route whose own ids this test cannot make up (a wildcard it does not know) answers
				// 404 here; only lists that answered are held to refusing the cursor.
				plain := rawRequest(t, e.URL, e.Key, method, target)
				require.Less(t, plain.Status, 500, "%s: %s", route, plain.Body)
				isList := plain.Status == http.StatusOK && strings.Contains(string(plain.Body), `"next_cursor":`)
				if isList {
					lists++
				}
				// Well-formed cursors that decode to bytes no id has; lists refuse them, other routes
				// ignore the parameter. Either way, never 500.
				for _, raw := range []string{"c1:\x00", "c1:\xff\xfe", "c1:wh_\x00", "c1:" + strings.Repeat("x", 300), "c1:'"} {
					res := rawRequest(t, e.URL, e.Key, method, target+"?cursor="+base64.RawURLEncoding.EncodeToString([]byte(raw)))
					require.Less(t, res.Status, 500, "%s cursor %q: %s", route, raw, res.Body)
					if isList {
						bad(t, res, 422, "cursor", fmt.Sprintf("%s cursor %q", route, raw))
					}
				}
			}
		})
	}

	require.GreaterOrEqual(t, lists, 4, "webhooks, logs, proposals and lead sessions were checked as lists")

	// Nothing malformed reached the store as a change.
	list := e.Do(e.Key, "GET", "/webhooks", nil)
	require.Len(t, list.JSON(t)["data"], 1)
	require.Equal(t, http.StatusOK, e.Do(e.Key, "GET", "/webhooks/"+whID, nil).Status)
}

// TestMalformedURLsOutsideRoutes covers paths that match no route and what Go's HTTP server refuses
// before any handler: never 500, JSON wherever the request reaches the API.
func TestMalformedURLsOutsideRoutes(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := api.Prefix
	for target, field := range map[string]string{p + "/%00": "path", p + "/webhooks%ff": "path", p + "/%ff/x": "path"} {
		_, fields := requireJSONError(t, rawRequest(t, e.URL, e.Key, "GET", target), 422, target)
		require.Contains(t, fields, field)
	}
	for _, target := range []string{p + "/nowhere%e2%80%ae", p + "/" + strings.Repeat("x", 10000)} {
		code, _ := requireJSONError(t, rawRequest(t, e.URL, e.Key, "GET", target), 404, target)
		require.Equal(t, "not_found", code)
	}
	// A bad escape in the path does not parse as a request line: Go's server answers 400 itself.
	res := rawRequest(t, e.URL, e.Key, "GET", p+"/webhooks/%zz")
	require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
}

// TestUncleanPathsAnswerJSONAfterAuthentication: under /api/external/v1, a doubled slash or a dot
// segment is not redirected by Go's ServeMux (an HTML 307 before authentication): the key is checked
// first (401), then the path names no endpoint (404), both as SPEC §3 JSON.
func TestUncleanPathsAnswerJSONAfterAuthentication(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	wh := createWebhook(t, e, e.Key, "https://crm.example.com/clean")
	id := wh["id"].(string)
	p := api.Prefix
	for _, target := range []string{
		p + "//webhooks", p + "/webhooks//" + id, p + "/./webhooks", p + "/webhooks/../webhooks", p + "/webhooks/" + id + "/",
		p + "/webhooks/", p, p + "/", "//api/external/v1/webhooks", "/api//external/v1/webhooks", p + "/%2e/webhooks",
	} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			code, _ := requireJSONError(t, rawRequest(t, e.URL, "", method, target), 401, method+" "+target)
			require.Equal(t, "unauthorized", code)
			code, _ = requireJSONError(t, rawRequest(t, e.URL, e.Key, method, target), 404, method+" "+target)
			require.Equal(t, "not_found", code)
		}
	}
	require.Equal(t, http.StatusOK, e.Do(e.Key, "GET", "/webhooks/"+id, nil).Status, "DELETE of an unclean path deleted nothing")
	// Outside the API, the console's own handling is unchanged.
	res := rawRequest(t, e.URL, "", "GET", "/healthz")
	require.Equal(t, http.StatusOK, res.Status)
}
