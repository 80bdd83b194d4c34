package e2e_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/api"
	"github.com/quikly/webhooks/internal/authlimit"
	"github.com/quikly/webhooks/internal/testenv"
)

// clientFrom returns an HTTP client whose connections come from the loopback address local, so that
// one test can be several client addresses.
func clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func getWith(t *testing.T, c *http.Client, url, key string) *rawResponse {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return &rawResponse{Status: res.StatusCode, Header: res.Header, Body: body}
}

// TestFailedAuthenticationsAreLimitedPerAddress: unknown keys from one client address are answered
// 401 up to the limit, then 429 rate_limited with Retry-After, before any look-up — a good key from
// that address too, until the address earns a try back (a brief lock-out, as GitHub and Stripe do).
// Another address is not affected, and good keys never use up an address's allowance.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	// Its own API handler with a small burst that does not refill during the test.
	h := api.New(e.Service.App, api.Config{RateLimit: -1, FailedAuth: authlimit.New(authlimit.Config{Burst: 5, Every: time.Hour})})
	srv := httptest.NewServer(h.Mount(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	url := srv.URL + api.Prefix + "/webhooks"
	attacker, other := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	unknown := "qk_" + strings.Repeat("x", 32)

	for range 20 {
		require.Equal(t, http.StatusOK, getWith(t, attacker, url, e.Key).Status, "good keys cost nothing")
	}
	for i := range 5 {
		requireJSONError(t, getWith(t, attacker, url, unknown+strconv.Itoa(i)), 401, "failure within the limit")
	}
	for _, key := range []string{unknown, "not-a-key", e.Key} {
		res := getWith(t, attacker, url, key)
		code, _ := requireJSONError(t, res, 429, "limited: "+key)
		require.Equal(t, "rate_limited", code)
		require.Equal(t, "3600", res.Header.Get("Retry-After"), "seconds until the address earns a try back")
	}
	code, _ := requireJSONError(t, getWith(t, attacker, url, ""), 401, "no key is no guess")
	require.Equal(t, "unauthorized", code)

	require.Equal(t, http.StatusOK, getWith(t, other, url, e.Key).Status, "another address is not limited")
	requireJSONError(t, getWith(t, other, url, unknown), 401, "another address has its own allowance")
}

// TestFailedAuthenticationLimitIsOnByDefault: the service as served limits unknown keys (the attack
// of issue 12 made 2,000 look-ups in half a second): within a bounded number of tries, 429.
func TestFailedAuthenticationLimitIsOnByDefault(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	unknown := "qk_" + strings.Repeat("y", 32)
	failures := 0
	for {
		res := e.Do(unknown, "GET", "/webhooks", nil)
		if res.Status == http.StatusTooManyRequests {
			errorOf(t, res, 429, "rate_limited")
			n, err := strconv.Atoi(res.Header.Get("Retry-After"))
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 1)
			break
		}
		errorOf(t, res, 401, "unauthorized")
		failures++
		require.Less(t, failures, 10*authlimit.BurstDefault, "unknown keys are never limited")
	}
	require.GreaterOrEqual(t, failures, authlimit.BurstDefault, "a burst of mistakes is allowed first")
}
