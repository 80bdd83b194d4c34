package delivery

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/webhook"
)

// Custom headers (SPEC §12) arrive as given; none replaces a header the sender writes, whatever is
// stored (validation refuses those names, this is the second line); the log shows their values
// masked; a test attempt carries X-Quikly-Test: true.
func TestSenderCustomHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	r := b.request(rc.srv.URL + "/hook")
	r.Test = true
	r.Headers = map[string]string{
		"Authorization":      "Bearer crm-token",
		"X-Crm-Tenant":       "acme",
		"X-Quikly-Signature": "forged",
		"x-quikly-test":      "false",
		"Webhook-Signature":  "v1,forged",
		"webhook-id":         "evt_forged",
		"Content-Type":       "text/plain",
		"user-agent":         "forged",
		"Host":               "evil.example",
		"Content-Length":     "1",
	}
	res := b.sender(t, nil).Send(t.Context(), r)
	require.True(t, res.Succeeded, res.Error)
	got := rc.only(t)
	require.Equal(t, "Bearer crm-token", got.header.Get("Authorization"))
	require.Equal(t, "acme", got.header.Get("X-Crm-Tenant"))
	require.Equal(t, []string{quiklySignature(b.secret, b.req.Body)}, got.header.Values("X-Quikly-Signature"))
	require.Equal(t, []string{"true"}, got.header.Values("X-Quikly-Test"))
	require.Equal(t, []string{b.req.EventID}, got.header.Values("webhook-id"))
	require.Len(t, got.header.Values("webhook-signature"), 1)
	require.NotContains(t, got.header.Get("webhook-signature"), "forged")
	require.Equal(t, []string{"application/json"}, got.header.Values("Content-Type"))
	require.Equal(t, []string{"Quikly-Webhooks/1.2.3"}, got.header.Values("User-Agent"))
	require.Equal(t, b.req.Body, got.body)

	require.Equal(t, webhook.MaskedValue, res.Headers["Authorization"])
	require.Equal(t, webhook.MaskedValue, res.Headers["X-Crm-Tenant"])
	require.Equal(t, "true", res.Headers["X-Quikly-Test"])
	for k, v := range res.Headers {
		require.NotContains(t, v, "crm-token", k)
		require.NotEqual(t, "forged", v, k)
	}
}
