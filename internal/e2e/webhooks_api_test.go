package e2e_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
)

func createWebhook(t *testing.T, e *testenv.Env, key, url string, events ...string) map[string]any {
	t.Helper()
	if len(events) == 0 {
		events = []string{"proposal.created"}
	}
	res := e.Do(key, "POST", "/webhooks", map[string]any{"name": "CRM sync", "url": url, "events": events})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	return res.JSON(t)
}

// errorOf checks a SPEC §3 error and returns its fields.
func errorOf(t *testing.T, res *testenv.Response, status int, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, res.Status, "%s", res.Body)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	e := res.JSON(t)["error"].(map[string]any)
	require.Equal(t, code, e["code"], "%s", res.Body)
	require.NotEmpty(t, e["message"])
	fields, _ := e["fields"].(map[string]any)
	return fields
}

func TestWebhooksAPI(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{DisallowPrivate: true})

	t.Run("CreateGetListUpdateDelete", func(t *testing.T) {
		t.Parallel()
		key := e.NewKey("crud")
		w := createWebhook(t, e, key, "https://crm.example.com/hooks", "proposal.created", "proposal.created", "lead_session.created")
		id := w["id"].(string)
		require.True(t, strings.HasPrefix(id, "wh_"))
		require.Equal(t, []any{"proposal.created", "lead_session.created"}, w["events"], "duplicates removed")
		require.Equal(t, true, w["is_active"])
		secret := w["secret"].(string)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		require.NoError(t, err)
		require.Len(t, raw, 32)
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, w["created_at"])

		got := e.Do(key, "GET", "/webhooks/"+id, nil)
		require.Equal(t, http.StatusOK, got.Status)
		require.NotContains(t, string(got.Body), "secret")
		require.Equal(t, "CRM sync", got.JSON(t)["name"])

		list := e.Do(key, "GET", "/webhooks", nil)
		require.Equal(t, http.StatusOK, list.Status)
		require.NotContains(t, string(list.Body), "whsec_")
		require.Len(t, list.JSON(t)["data"], 1)
		require.Nil(t, list.JSON(t)["next_cursor"])

		upd := e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"name": "Renamed"})
		require.Equal(t, http.StatusOK, upd.Status, "%s", upd.Body)
		require.Equal(t, "Renamed", upd.JSON(t)["name"])
		require.Equal(t, "https://crm.example.com/hooks", upd.JSON(t)["url"], "fields left out keep their value")
		require.Equal(t, []any{"proposal.created", "lead_session.created"}, upd.JSON(t)["events"])

		paused := e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"is_active": false})
		require.Equal(t, false, paused.JSON(t)["is_active"])
		resumed := e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"is_active": true})
		require.Equal(t, true, resumed.JSON(t)["is_active"])

		regen := e.Do(key, "POST", "/webhooks/"+id+"/regenerate-secret", nil)
		require.Equal(t, http.StatusOK, regen.Status)
		newSecret := regen.JSON(t)["secret"].(string)
		require.True(t, strings.HasPrefix(newSecret, "whsec_"))
		require.NotEqual(t, secret, newSecret)

		del := e.Do(key, "DELETE", "/webhooks/"+id, nil)
		require.Equal(t, http.StatusNoContent, del.Status)
		errorOf(t, e.Do(key, "GET", "/webhooks/"+id, nil), 404, "not_found")
		errorOf(t, e.Do(key, "DELETE", "/webhooks/"+id, nil), 404, "not_found")
	})

	t.Run("EventCatalogue", func(t *testing.T) {
		t.Parallel()
		res := e.Do(e.Key, "GET", "/webhook-events", nil)
		require.Equal(t, http.StatusOK, res.Status)
		var events []string
		for _, d := range res.JSON(t)["data"].([]any) {
			entry := d.(map[string]any)
			require.NotEmpty(t, entry["description"])
			events = append(events, entry["event"].(string))
		}
		require.Equal(t, []string{"proposal.created", "proposal.updated", "proposal.shared", "proposal.accepted",
			"proposal.rejected", "proposal.revision_requested", "lead_session.created", "lead_session.updated", "webhook.disabled"}, events)
	})

	t.Run("Pagination", func(t *testing.T) {
		t.Parallel()
		key := e.NewKey("pages")
		var ids []string
		for i := range 5 {
			ids = append(ids, createWebhook(t, e, key, fmt.Sprintf("https://crm.example.com/%d", i))["id"].(string))
		}
		var seen []string
		cursor := ""
		pages := 0
		for {
			path := "/webhooks?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			res := e.Do(key, "GET", path, nil)
			require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
			body := res.JSON(t)
			for _, w := range body["data"].([]any) {
				seen = append(seen, w.(map[string]any)["id"].(string))
			}
			pages++
			if body["next_cursor"] == nil {
				break
			}
			cursor = body["next_cursor"].(string)
		}
		require.Equal(t, 3, pages)
		require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen, "newest first, each once")

		for _, q := range []string{"limit=0", "limit=201", "limit=abc", "cursor=%21%21", "cursor=YzE6d2hfbm9wZQ"} {
			fields := errorOf(t, e.Do(key, "GET", "/webhooks?"+q, nil), 422, "validation_failed")
			require.Len(t, fields, 1, q)
		}
		other := e.NewKey("pages-other")
		first := e.Do(key, "GET", "/webhooks?limit=2", nil).JSON(t)["next_cursor"].(string)
		errorOf(t, e.Do(other, "GET", "/webhooks?cursor="+first, nil), 422, "validation_failed")
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		key := e.NewKey("validation")
		long := "https://example.com/" + strings.Repeat("a", 2048)
		cases := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"NameMissing", map[string]any{"url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"NameEmpty", map[string]any{"name": "", "url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"NameControlCharacters", map[string]any{"name": "a\x00b", "url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"NameTooLong", map[string]any{"name": strings.Repeat("n", 101), "url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"URLMissing", map[string]any{"name": "n", "events": []string{"proposal.created"}}, "url"},
			{"URLRelative", map[string]any{"name": "n", "url": "/hooks", "events": []string{"proposal.created"}}, "url"},
			{"URLPlainHTTP", map[string]any{"name": "n", "url": "http://x.example.com", "events": []string{"proposal.created"}}, "url"},
			{"URLFTP", map[string]any{"name": "n", "url": "ftp://x.example.com", "events": []string{"proposal.created"}}, "url"},
			{"URLTooLong", map[string]any{"name": "n", "url": long, "events": []string{"proposal.created"}}, "url"},
			{"URLUserInfo", map[string]any{"name": "n", "url": "https://user:pw@x.example.com", "events": []string{"proposal.created"}}, "url"},
			{"URLPrivateLiteral", map[string]any{"name": "n", "url": "https://10.0.0.1/hook", "events": []string{"proposal.created"}}, "url"},
			{"URLMetadataLiteral", map[string]any{"name": "n", "url": "https://169.254.169.254/latest", "events": []string{"proposal.created"}}, "url"},
			{"URLLoopbackV6", map[string]any{"name": "n", "url": "https://[::1]/hook", "events": []string{"proposal.created"}}, "url"},
			// net/http maps full-width digits and ideographic dots to ASCII ones before it dials.
			{"URLFullWidthLoopback", map[string]any{"name": "n", "url": "https://１２７.０.０.１/hook", "events": []string{"proposal.created"}}, "url"},
			{"URLIdeographicDotsPrivate", map[string]any{"name": "n", "url": "https://10。0。0。1/hook", "events": []string{"proposal.created"}}, "url"},
			{"EventsMissing", map[string]any{"name": "n", "url": "https://x.example.com"}, "events"},
			{"EventsEmpty", map[string]any{"name": "n", "url": "https://x.example.com", "events": []string{}}, "events"},
			{"EventsUnknown", map[string]any{"name": "n", "url": "https://x.example.com", "events": []string{"proposal.deleted"}}, "events"},
			{"EventsTest", map[string]any{"name": "n", "url": "https://x.example.com", "events": []string{"test"}}, "events"},
			{"EventsNotAList", map[string]any{"name": "n", "url": "https://x.example.com", "events": "proposal.created"}, "events"},
			{"NameNotAString", map[string]any{"name": 5, "url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"NameNull", map[string]any{"name": nil, "url": "https://x.example.com", "events": []string{"proposal.created"}}, "name"},
			{"IsActiveNotBool", map[string]any{"name": "n", "url": "https://x.example.com", "events": []string{"proposal.created"}, "is_active": "yes"}, "is_active"},
			{"UnknownField", map[string]any{"name": "n", "url": "https://x.example.com", "events": []string{"proposal.created"}, "secret": "whsec_x"}, "secret"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				fields := errorOf(t, e.Do(key, "POST", "/webhooks", c.body), 422, "validation_failed")
				require.Contains(t, fields, c.field)
			})
		}
		// Nothing was created by any of them.
		require.Empty(t, e.Do(key, "GET", "/webhooks", nil).JSON(t)["data"])
	})

	t.Run("MalformedRequestsChangeNothing", func(t *testing.T) {
		t.Parallel()
		key := e.NewKey("malformed")
		w := createWebhook(t, e, key, "https://crm.example.com/h")
		id := w["id"].(string)
		before := e.Do(key, "GET", "/webhooks/"+id, nil).Body

		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `{"name": "x"`), 400, "invalid_json")
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `{"name": "x"} {}`), 400, "invalid_json")
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `["name"]`), 422, "validation_failed")
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `{"name": "ok", "url": "http://insecure.example.com"}`), 422, "validation_failed")
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `{"name": "ok", "colour": "red"}`), 422, "validation_failed")
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, `{"events": []}`), 422, "validation_failed")

		big := `{"name": "` + strings.Repeat("a", 1<<20) + `"}`
		errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, big), 413, "payload_too_large")
		errorOf(t, e.Do(key, "POST", "/webhooks", big), 413, "payload_too_large")

		req := func(contentType string) *testenv.Response {
			return e.DoRaw(key, "PUT", "/webhooks/"+id, contentType, `{"name":"typed"}`)
		}
		errorOf(t, req("text/plain"), 415, "unsupported_media_type")
		errorOf(t, req(""), 415, "unsupported_media_type")
		errorOf(t, req("application/x-www-form-urlencoded"), 415, "unsupported_media_type")
		require.Equal(t, before, e.Do(key, "GET", "/webhooks/"+id, nil).Body, "rejected requests leave the webhook unchanged")

		ok := req("application/json; charset=utf-8")
		require.Equal(t, http.StatusOK, ok.Status, "%s", ok.Body)
		require.Equal(t, "typed", ok.JSON(t)["name"])
	})

	t.Run("Authentication", func(t *testing.T) {
		t.Parallel()
		w := createWebhook(t, e, e.Key, "https://crm.example.com/auth")
		id := w["id"].(string)
		for _, key := range []string{"", "qk_" + strings.Repeat("x", 32), "not-a-key"} {
			errorOf(t, e.Do(key, "GET", "/webhooks", nil), 401, "unauthorized")
			errorOf(t, e.Do(key, "GET", "/webhooks/"+id, nil), 401, "unauthorized")
			errorOf(t, e.Do(key, "GET", "/webhooks/wh_missing", nil), 401, "unauthorized")
			errorOf(t, e.Do(key, "POST", "/webhooks", `{"name": "`+strings.Repeat("a", 1<<20)+`"}`), 401, "unauthorized")
			errorOf(t, e.DoRaw(key, "POST", "/webhooks", "text/plain", "x"), 401, "unauthorized")
			errorOf(t, e.Do(key, "GET", "/nowhere", nil), 401, "unauthorized")
		}
	})

	t.Run("OtherAccountsObjectsAreNotFound", func(t *testing.T) {
		t.Parallel()
		owner := e.NewKey("owner")
		intruder := e.NewKey("intruder")
		w := createWebhook(t, e, owner, "https://crm.example.com/mine")
		id := w["id"].(string)
		before := e.Do(owner, "GET", "/webhooks/"+id, nil).Body
		errorOf(t, e.Do(intruder, "GET", "/webhooks/"+id, nil), 404, "not_found")
		errorOf(t, e.Do(intruder, "PUT", "/webhooks/"+id, map[string]any{"is_active": false}), 404, "not_found")
		errorOf(t, e.Do(intruder, "PUT", "/webhooks/"+id, `{bad json`), 404, "not_found")
		errorOf(t, e.Do(intruder, "POST", "/webhooks/"+id+"/regenerate-secret", nil), 404, "not_found")
		errorOf(t, e.Do(intruder, "POST", "/webhooks/"+id+"/test", nil), 404, "not_found")
		errorOf(t, e.Do(intruder, "GET", "/webhooks/"+id+"/logs", nil), 404, "not_found")
		errorOf(t, e.Do(intruder, "POST", "/webhooks/"+id+"/logs/att_x/resend", nil), 404, "not_found")
		errorOf(t, e.Do(intruder, "DELETE", "/webhooks/"+id, nil), 404, "not_found")
		require.Empty(t, e.Do(intruder, "GET", "/webhooks", nil).JSON(t)["data"])
		require.Equal(t, before, e.Do(owner, "GET", "/webhooks/"+id, nil).Body, "the owner's webhook is untouched")
	})

	t.Run("MethodNotAllowedAndUnknownPaths", func(t *testing.T) {
		t.Parallel()
		res := e.Do(e.Key, "PATCH", "/webhooks", nil)
		errorOf(t, res, 405, "method_not_allowed")
		require.Contains(t, res.Header.Get("Allow"), "GET")
		errorOf(t, e.Do(e.Key, "GET", "/nowhere", nil), 404, "not_found")
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{RateLimit: 1}) // 1/s, bursts of 2
	var statuses []int
	for range 4 {
		statuses = append(statuses, e.Do(e.Key, "GET", "/webhooks", nil).Status)
	}
	require.Equal(t, http.StatusOK, statuses[0])
	require.Contains(t, statuses, http.StatusTooManyRequests)
	res := e.Do(e.Key, "GET", "/webhooks", nil)
	errorOf(t, res, 429, "rate_limited")
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	// Another key of another account has its own budget.
	require.Equal(t, http.StatusOK, e.Do(e.NewKey("other"), "GET", "/webhooks", nil).Status)
}

// TestMaxWebhooksPerAccount: SPEC §15 — one webhook past --max-webhooks is 422 limit_reached; other
// accounts are not affected, and deleting one makes room again.
func TestMaxWebhooksPerAccount(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{MaxWebhooks: 2})
	var ids []string
	for range 2 {
		ids = append(ids, createWebhook(t, e, e.Key, "https://example.com/h")["id"].(string))
	}
	body := map[string]any{"name": "one more", "url": "https://example.com/h", "events": []string{"proposal.created"}}
	errorOf(t, e.Do(e.Key, "POST", "/webhooks", body), http.StatusUnprocessableEntity, "limit_reached")
	list := e.Do(e.Key, "GET", "/webhooks", nil)
	require.Equal(t, http.StatusOK, list.Status)
	require.Len(t, list.JSON(t)["data"], 2, "the refused create stored nothing")

	createWebhook(t, e, e.NewKey("other"), "https://example.com/h")
	require.Equal(t, http.StatusNoContent, e.Do(e.Key, "DELETE", "/webhooks/"+ids[0], nil).Status)
	createWebhook(t, e, e.Key, "https://example.com/h")
}
