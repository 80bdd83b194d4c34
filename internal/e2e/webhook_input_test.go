package e2e_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
)

// TestWebhookInputRules: through the API, a name is trimmed and must be one line of text (no names of
// spaces, no line or paragraph separators, no bidirectional overrides or other controls), and a URL
// must have a dialable port and no raw characters that URLs may not hold; refused on create and on
// update, leaving nothing changed.
func TestWebhookInputRules(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{DisallowPrivate: true})
	key := e.NewKey("input-rules")
	good := map[string]any{"name": "CRM sync", "url": "https://crm.example.com/hooks", "events": []string{"proposal.created"}}
	with := func(field string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range good {
			m[k] = x
		}
		m[field] = v
		return m
	}

	badNames := []string{"", "   ", "\t \n", "\u2028", "one\u2028two", "pa\u2029ra", "evil\u202eexe.txt", "\u202aLRE", "PDF\u202c",
		"\u2066isolate\u2069", "\u2067RLI", "\u2068FSI", "nul\x00", "bell\a", "two\nlines", strings.Repeat("n", 101)}
	badURLs := []string{"https://crm.example.com:0/h", "https://crm.example.com:99999/h", "https://crm.example.com:65536/h",
		`https://crm.example.com/a"b`, "https://crm.example.com/<script>", "https://crm.example.com/a>b",
		"https://crm.example.com/a b", " https://crm.example.com/", "https://crm.example.com/\x00", "https://crm.example.com/?q=%zz",
		"https://crm.example.com/\u202e"}

	for _, name := range badNames {
		fields := errorOf(t, e.Do(key, "POST", "/webhooks", with("name", name)), 422, "validation_failed")
		require.Contains(t, fields, "name", "%q", name)
	}
	for _, u := range badURLs {
		fields := errorOf(t, e.Do(key, "POST", "/webhooks", with("url", u)), 422, "validation_failed")
		require.Contains(t, fields, "url", "%q", u)
	}
	require.Empty(t, e.Do(key, "GET", "/webhooks", nil).JSON(t)["data"], "nothing was created")

	created := e.Do(key, "POST", "/webhooks", with("name", "  \u00a0Zap → Slack 👩\u200d💻 \u3000"))
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Body)
	require.Equal(t, "Zap → Slack 👩\u200d💻", created.JSON(t)["name"], "the name is stored trimmed")
	id := created.JSON(t)["id"].(string)
	before := e.Do(key, "GET", "/webhooks/"+id, nil).Body

	for _, name := range badNames {
		fields := errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"name": name}), 422, "validation_failed")
		require.Contains(t, fields, "name", "%q", name)
	}
	for _, u := range badURLs {
		fields := errorOf(t, e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"url": u}), 422, "validation_failed")
		require.Contains(t, fields, "url", "%q", u)
	}
	require.Equal(t, before, e.Do(key, "GET", "/webhooks/"+id, nil).Body, "refused updates change nothing")

	for _, u := range []string{"https://crm.example.com:1/h", "https://crm.example.com:65535/h", "https://crm.example.com/a%22b?q=%3Cx%3E"} {
		res := e.Do(key, "PUT", "/webhooks/"+id, map[string]any{"url": u})
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", u, res.Body)
		require.Equal(t, u, res.JSON(t)["url"])
	}
}
