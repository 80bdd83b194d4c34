package listen

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/webhook"
)

// lockedBuffer is an io.Writer the test can read while the server writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSuffix(b.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type testBundle struct {
	now    time.Time
	secret string
	out    *lockedBuffer
	url    string
	body   []byte
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{
		now:    time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC),
		secret: webhook.NewSecret(),
		out:    &lockedBuffer{},
		body:   []byte(`{"event":"proposal.accepted","timestamp":"2026-04-03T14:29:59Z","webhook_id":"wh_abc123","data":{}}`),
	}
	srv := httptest.NewServer(Handler(b.secret, b.out, clock.Func(func() time.Time { return b.now })))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// signed returns the headers that Quikly sends for body, signed with secret (and oldSecret, when
// set, for webhook-signature) at ts.
func signed(t *testing.T, secret, oldSecret string, ts time.Time, body []byte) http.Header {
	t.Helper()
	keys := [][]byte{}
	for _, s := range []string{secret, oldSecret} {
		if s == "" {
			continue
		}
		key, err := webhook.SecretKey(s)
		require.NoError(t, err)
		keys = append(keys, key)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Quikly-Event", "proposal.accepted")
	h.Set("X-Quikly-Webhook-Id", "wh_abc123")
	h.Set("X-Quikly-Signature", webhook.SignQuikly(secret, body))
	h.Set("X-Quikly-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-id", "evt_2mZ9fQ")
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", webhook.SignStandard(keys, "evt_2mZ9fQ", ts.Unix(), body))
	return h
}

// post sends body with header and returns the status code.
func (b *testBundle) post(t *testing.T, header http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestHandlerValid(t *testing.T) {
	t.Parallel()

	const verified = "2026-04-03T14:30:00Z proposal.accepted evt_2mZ9fQ verified"

	t.Run("SignedLikeTheSender", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, http.StatusOK, b.post(t, signed(t, b.secret, "", b.now, b.body), b.body))
		require.Equal(t, []string{verified}, b.out.Lines())
	})

	t.Run("QuiklySignatureAloneAtAnyTime", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now.Add(-time.Hour), b.body)
		h.Del("webhook-signature")
		require.Equal(t, http.StatusOK, b.post(t, h, b.body))
		require.Equal(t, []string{verified}, b.out.Lines())
	})

	t.Run("StandardSignatureAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now.Add(-4*time.Minute), b.body)
		h.Del("X-Quikly-Signature")
		require.Equal(t, http.StatusOK, b.post(t, h, b.body))
		require.Equal(t, []string{verified}, b.out.Lines())
	})

	t.Run("StandardSignatureOfRotationMatchesEitherSecret", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The listener knows the old secret; the delivery is signed with a new one and the old one.
		h := signed(t, webhook.NewSecret(), b.secret, b.now, b.body)
		require.Equal(t, http.StatusOK, b.post(t, h, b.body))
		require.Equal(t, []string{verified}, b.out.Lines())
	})

	t.Run("MissingIDsPrintedAsDash", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := http.Header{}
		h.Set("X-Quikly-Signature", webhook.SignQuikly(b.secret, b.body))
		require.Equal(t, http.StatusOK, b.post(t, h, b.body))
		require.Equal(t, []string{"2026-04-03T14:30:00Z - - verified"}, b.out.Lines())
	})

	t.Run("ConcurrentLinesDoNotInterleave", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now, b.body)
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				req, err := http.NewRequest(http.MethodPost, b.url, bytes.NewReader(b.body))
				if err != nil {
					return
				}
				req.Header = h.Clone()
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		lines := b.out.Lines()
		require.Len(t, lines, 30)
		for _, l := range lines {
			require.Equal(t, verified, l)
		}
	})
}

func TestHandlerInvalid(t *testing.T) {
	t.Parallel()

	const prefix = "2026-04-03T14:30:00Z proposal.accepted evt_2mZ9fQ INVALID: "

	t.Run("ForgedSignatures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now, b.body)
		h.Set("X-Quikly-Signature", strings.Repeat("0", 64))
		h.Set("webhook-signature", "v1,"+strings.Repeat("A", 43)+"=")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))
		require.Equal(t, []string{prefix + "X-Quikly-Signature does not match; webhook-signature: no signature matches"}, b.out.Lines())
	})

	t.Run("WrongSecret", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, http.StatusBadRequest, b.post(t, signed(t, webhook.NewSecret(), "", b.now, b.body), b.body))
		require.Equal(t, []string{prefix + "X-Quikly-Signature does not match; webhook-signature: no signature matches"}, b.out.Lines())
	})

	t.Run("TamperedBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now, b.body)
		require.Equal(t, http.StatusBadRequest, b.post(t, h, bytes.Replace(b.body, []byte("accepted"), []byte("rejected"), 1)))
		require.Len(t, b.out.Lines(), 1)
		require.True(t, strings.HasPrefix(b.out.Lines()[0], prefix), b.out.Lines()[0])
	})

	t.Run("StaleTimestamp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now.Add(-6*time.Minute), b.body)
		h.Del("X-Quikly-Signature")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))
		require.Equal(t, []string{prefix + "webhook-signature: webhook-timestamp is 6m0s old, more than 5m0s"}, b.out.Lines())
	})

	t.Run("FutureTimestamp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now.Add(10*time.Minute), b.body)
		h.Del("X-Quikly-Signature")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))
		require.Equal(t, []string{prefix + "webhook-signature: webhook-timestamp is 10m0s in the future, more than 5m0s"}, b.out.Lines())
	})

	t.Run("BadStandardHeaders", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now, b.body)
		h.Del("X-Quikly-Signature")
		h.Set("webhook-timestamp", "yesterday")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))

		h = signed(t, b.secret, "", b.now, b.body)
		h.Del("X-Quikly-Signature")
		h.Del("webhook-id")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))

		require.Equal(t, []string{
			prefix + "webhook-signature: webhook-timestamp missing or not Unix seconds",
			"2026-04-03T14:30:00Z proposal.accepted - INVALID: webhook-signature: no webhook-id header",
		}, b.out.Lines())
	})

	t.Run("NoSignature", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h := signed(t, b.secret, "", b.now, b.body)
		h.Del("X-Quikly-Signature")
		h.Del("webhook-signature")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))
		require.Equal(t, []string{prefix + "no X-Quikly-Signature or webhook-signature header"}, b.out.Lines())
	})

	t.Run("BodyTooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := bytes.Repeat([]byte("x"), BodyMax+1)
		require.Equal(t, http.StatusBadRequest, b.post(t, signed(t, b.secret, "", b.now, body), body))
		require.Equal(t, []string{prefix + "body larger than 4194304 bytes"}, b.out.Lines())
	})

	t.Run("SecretWithoutStandardKey", func(t *testing.T) {
		t.Parallel()
		out := &lockedBuffer{}
		srv := httptest.NewServer(Handler("not-a-whsec-secret", out, nil))
		t.Cleanup(srv.Close)
		b := &testBundle{url: srv.URL, out: out, body: []byte(`{}`)}
		now := time.Now()

		h := http.Header{}
		h.Set("X-Quikly-Signature", webhook.SignQuikly("not-a-whsec-secret", b.body))
		require.Equal(t, http.StatusOK, b.post(t, h, b.body))

		h = http.Header{}
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", "v1,AAAA")
		require.Equal(t, http.StatusBadRequest, b.post(t, h, b.body))

		lines := out.Lines()
		require.Len(t, lines, 2)
		require.True(t, strings.HasSuffix(lines[0], " - - verified"), lines[0])
		require.True(t, strings.HasSuffix(lines[1], " - evt_1 INVALID: webhook-signature: cannot check: secret does not start with whsec_"), lines[1])
	})

	t.Run("OnlyPOST", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		resp, err := http.Get(b.url)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Equal(t, "POST", resp.Header.Get("Allow"))
		require.Empty(t, b.out.Lines())
	})
}

func TestField(t *testing.T) {
	t.Parallel()

	require.Equal(t, "-", field(""))
	require.Equal(t, "proposal.accepted", field("proposal.accepted"))
	require.Equal(t, `"two words"`, field("two words"))
	require.Equal(t, `"\x1b[31mred"`, field("\x1b[31mred"))
	require.Equal(t, `"a\nb"`, field("a\nb"))
	require.Equal(t, `"\xff"`, field("\xff"))
	require.Len(t, field(strings.Repeat("e", 1000)), 200)
}
