package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/testenv"
)

// TestConsolePagesRefuseMalformedIDs: the console's pages take webhook and log ids through the same
// use cases as the API, which refuse ids of another shape before the store; so NUL, invalid UTF-8 or
// impossible ids in a console URL are a 404 page on PostgreSQL too, never a 500.
func TestConsolePagesRefuseMalformedIDs(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	wh := createWebhook(t, e, e.Key, "https://crm.example.com/console")
	id := wh["id"].(string)
	s, err := e.Service.App.SignIn(context.Background(), e.Key)
	require.NoError(t, err)
	u, err := url.Parse(e.URL)
	require.NoError(t, err)
	get := func(target string) int {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		defer conn.Close()
		// Both cookie names: the console picks its name by whether it is served over HTTPS.
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nCookie: quikly_session=%s; __Host-quikly_session=%s\r\n\r\n",
			target, u.Host, s.ID, s.ID)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/webhooks/"+id), "the session works")
	for _, bad := range []string{"%00", "wh_%00", "%ff", "wh_%ff%fe", strings.Repeat("a", 3000), "wh_" + strings.Repeat("x", 200)} {
		for _, target := range []string{"/webhooks/" + bad, "/webhooks/" + bad + "/edit", "/webhooks/" + bad + "/regenerate",
			"/webhooks/" + bad + "/delete", "/webhooks/" + bad + "/logs", "/webhooks/" + bad + "/logs/att_x",
			"/webhooks/" + id + "/logs/" + bad} {
			status := get(target)
			require.Contains(t, []int{400, 404, 422}, status, "GET %s", target)
		}
	}
}
