package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/netguard"
	"github.com/quikly/webhooks/internal/webhook"
)

// received is one request as a test receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real loopback HTTP server that records every request, then answers with handler
// (200 "ok" when nil). It counts the connections it accepts.
type receiver struct {
	srv   *httptest.Server
	reqs  chan received
	conns atomic.Int64
}

func newReceiver(t *testing.T, handler http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{reqs: make(chan received, 1000)}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.reqs <- received{header: r.Header.Clone(), body: body}
		if handler == nil {
			io.WriteString(w, "ok")
			return
		}
		handler(w, r)
	}))
	rc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

// only returns the one request the receiver got.
func (rc *receiver) only(t *testing.T) received {
	t.Helper()
	require.Len(t, rc.reqs, 1)
	return <-rc.reqs
}

type testBundle struct {
	now       time.Time
	secret    string
	oldSecret string
	req       Request
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	now := time.Unix(time.Now().Unix(), 0) // whole seconds, as the headers carry
	b := &testBundle{now: now, secret: webhook.NewSecret(), oldSecret: webhook.NewSecret()}
	b.req = Request{
		Body:      []byte(`{"event":"proposal.accepted","timestamp":"2026-04-03T14:30:00Z","webhook_id":"wh_abc123","data":{}}`),
		EventType: webhook.ProposalAccepted,
		EventID:   "evt_2mZ9fQxYz",
		WebhookID: "wh_abc123",
		Secret:    b.secret,
	}
	return b
}

// sender returns a Sender for loopback receivers with a fixed clock at b.now, changed by mod.
func (b *testBundle) sender(t *testing.T, mod func(*SenderConfig)) *Sender {
	t.Helper()
	cfg := SenderConfig{AllowPrivate: true, UserAgent: "Quikly-Webhooks/1.2.3", Clock: clock.Func(func() time.Time { return b.now })}
	if mod != nil {
		mod(&cfg)
	}
	s := NewSender(cfg)
	t.Cleanup(s.CloseIdleConnections)
	return s
}

func (b *testBundle) request(url string) Request {
	r := b.req
	r.URL = url
	return r
}

// quiklySignature re-implements SPEC §5 independently of the signer.
func quiklySignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestSenderHeaders(t *testing.T) {
	t.Parallel()

	t.Run("EveryHeaderPresentAndCorrect", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL+"/hook?x=1"))

		require.True(t, res.Succeeded, res.Error)
		require.Empty(t, res.Error)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "ok", res.ResponseBody)
		require.Equal(t, b.now, res.SentAt)
		require.Zero(t, res.RetryAfter)

		got := rc.only(t)
		require.Equal(t, b.req.Body, got.body)
		ts := strconv.FormatInt(b.now.Unix(), 10)
		h := got.header
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Equal(t, "proposal.accepted", h.Get("X-Quikly-Event"))
		require.Equal(t, quiklySignature(b.secret, b.req.Body), h.Get("X-Quikly-Signature"))
		require.Equal(t, ts, h.Get("X-Quikly-Timestamp"))
		require.Equal(t, "wh_abc123", h.Get("X-Quikly-Webhook-Id"))
		require.Equal(t, "evt_2mZ9fQxYz", h.Get("webhook-id"))
		require.Equal(t, ts, h.Get("webhook-timestamp"))
		require.Equal(t, "Quikly-Webhooks/1.2.3", h.Get("User-Agent"))
		require.Empty(t, h.Get("Accept-Encoding"), "Headers must be what was sent")

		wh, err := standardwebhooks.NewWebhook(b.secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(got.body, h))
		require.NotContains(t, h.Get("webhook-signature"), " ", "one signature without rotation")

		// Result.Headers is exactly what arrived, and holds no secret.
		require.Len(t, res.Headers, 9)
		for k, v := range res.Headers {
			require.Equal(t, v, h.Get(k), k)
			require.NotContains(t, v, b.secret)
		}
	})

	t.Run("RotationSignsWithBothSecrets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		r := b.request(rc.srv.URL)
		r.OldSecret = b.oldSecret
		res := b.sender(t, nil).Send(t.Context(), r)
		require.True(t, res.Succeeded, res.Error)

		got := rc.only(t)
		require.Len(t, strings.Split(got.header.Get("webhook-signature"), " "), 2)
		for _, secret := range []string{b.secret, b.oldSecret} {
			wh, err := standardwebhooks.NewWebhook(secret)
			require.NoError(t, err)
			require.NoError(t, wh.Verify(got.body, got.header))
		}
		// X-Quikly-Signature uses only the new secret.
		require.Equal(t, quiklySignature(b.secret, got.body), got.header.Get("X-Quikly-Signature"))
		for k, v := range res.Headers {
			require.NotContains(t, v, b.oldSecret, k)
		}
	})

	t.Run("SpecSpellingOnTheWire", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		head := make(chan string, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			var sb strings.Builder
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
				sb.WriteString(line)
			}
			head <- sb.String()
			io.WriteString(conn, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		}()

		res := b.sender(t, nil).Send(t.Context(), b.request("http://"+ln.Addr().String()+"/"))
		require.True(t, res.Succeeded, res.Error)
		h := <-head
		require.True(t, strings.HasPrefix(h, "POST / HTTP/1.1\r\n"), h)
		for _, name := range []string{"webhook-id: ", "webhook-timestamp: ", "webhook-signature: v1,",
			"X-Quikly-Event: ", "X-Quikly-Signature: ", "X-Quikly-Timestamp: ", "X-Quikly-Webhook-Id: ",
			"Content-Type: application/json", "User-Agent: Quikly-Webhooks/1.2.3", "Content-Length: "} {
			require.Contains(t, h, "\r\n"+name, h)
		}
	})

	t.Run("TimestampIsThisAttempt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		now := b.now
		s := b.sender(t, func(c *SenderConfig) { c.Clock = clock.Func(func() time.Time { return now }) })
		s.Send(t.Context(), b.request(rc.srv.URL))
		first := <-rc.reqs
		now = now.Add(30 * time.Second) // the next attempt, sequentially after the first
		s.Send(t.Context(), b.request(rc.srv.URL))
		second := <-rc.reqs

		require.Equal(t, strconv.FormatInt(b.now.Unix()+30, 10), second.header.Get("X-Quikly-Timestamp"))
		require.Equal(t, first.header.Get("webhook-id"), second.header.Get("webhook-id"), "same event id on every retry")
		require.NotEqual(t, first.header.Get("webhook-signature"), second.header.Get("webhook-signature"))
		require.Equal(t, first.header.Get("X-Quikly-Signature"), second.header.Get("X-Quikly-Signature"))
	})

	t.Run("DefaultUserAgent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		b.sender(t, func(c *SenderConfig) { c.UserAgent = "" }).Send(t.Context(), b.request(rc.srv.URL))
		require.Equal(t, UserAgentDefault, rc.only(t).header.Get("User-Agent"))
	})
}

func TestSenderFailures(t *testing.T) {
	t.Parallel()

	t.Run("PrivateAddressRefusedByDefault", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		res := b.sender(t, func(c *SenderConfig) { c.AllowPrivate = false }).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Zero(t, res.StatusCode)
		require.Equal(t, "private address refused: 127.0.0.1", res.Error)
		require.Empty(t, rc.reqs, "no request may arrive")
		require.Zero(t, rc.conns.Load(), "no connection either")
	})

	t.Run("NameResolvingToLoopbackRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		port := rc.srv.Listener.Addr().(*net.TCPAddr).Port
		resolver := resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		})
		s := b.sender(t, func(c *SenderConfig) { c.AllowPrivate = false; c.Resolver = resolver })
		res := s.Send(t.Context(), b.request("http://receiver.test:"+strconv.Itoa(port)+"/"))
		require.Equal(t, "private address refused: receiver.test (127.0.0.1)", res.Error)
		require.Empty(t, rc.reqs)
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		release := make(chan struct{})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		t.Cleanup(func() { close(release) }) // runs before the server's Close, which waits for handlers

		clockStart := time.Now()
		s := b.sender(t, func(c *SenderConfig) { c.Timeout = 200 * time.Millisecond; c.Clock = clock.Func(time.Now) })
		res := s.Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Zero(t, res.StatusCode)
		require.Equal(t, "timeout after 200ms", res.Error)
		require.GreaterOrEqual(t, res.Duration, 200*time.Millisecond)
		require.Less(t, time.Since(clockStart), 5*time.Second)
	})

	t.Run("TimeoutWhileReadingBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		release := make(chan struct{})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		t.Cleanup(func() { close(release) })

		res := b.sender(t, func(c *SenderConfig) { c.Timeout = 200 * time.Millisecond }).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded, "the whole request must finish in time")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "timeout after 200ms", res.Error)
	})

	t.Run("RedirectNotFollowed", func(t *testing.T) {
		t.Parallel()
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			b := setup(t)
			target := newReceiver(t, nil)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.srv.URL+"/elsewhere", code)
			})
			res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
			require.False(t, res.Succeeded)
			require.Equal(t, code, res.StatusCode)
			require.Equal(t, "redirect not followed ("+strconv.Itoa(code)+" to "+target.srv.URL+"/elsewhere)", res.Error)
			require.Len(t, rc.reqs, 1)
			require.Empty(t, target.reqs, "the Location target must never be hit")
		}
	})

	t.Run("LongLocationShortened", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://example.com/"+strings.Repeat("a", 1000))
			w.WriteHeader(http.StatusFound)
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.True(t, strings.HasPrefix(res.Error, "redirect not followed (302 to https://example.com/aaa"), res.Error)
		require.Less(t, len(res.Error), 300)
	})

	t.Run("NotModifiedWithoutLocation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Equal(t, "HTTP 304", res.Error)
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())

		res := b.sender(t, nil).Send(t.Context(), b.request("http://"+addr+"/"))
		require.False(t, res.Succeeded)
		require.Zero(t, res.StatusCode)
		require.Equal(t, "connection refused", res.Error)
	})

	t.Run("ConnectionClosedWithoutResponse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Equal(t, "connection closed by the server before a complete response", res.Error)
	})

	t.Run("ServerError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60") // ignored: not a 429 or 503
			http.Error(w, "boom", http.StatusInternalServerError)
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Equal(t, http.StatusInternalServerError, res.StatusCode)
		require.Equal(t, "HTTP 500", res.Error)
		require.Equal(t, "boom\n", res.ResponseBody)
		require.Zero(t, res.RetryAfter)
	})

	t.Run("RetryAfterSeconds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.Equal(t, "HTTP 429", res.Error)
		require.Equal(t, 2*time.Minute, res.RetryAfter)
	})

	t.Run("RetryAfterHTTPDate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", b.now.Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.Equal(t, "HTTP 503", res.Error)
		require.Equal(t, 90*time.Second, res.RetryAfter)
	})

	t.Run("UntrustedCertificate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		res := b.sender(t, nil).Send(t.Context(), b.request(srv.URL))
		require.False(t, res.Succeeded)
		require.Zero(t, res.StatusCode)
		require.True(t, strings.HasPrefix(res.Error, "TLS error: "), res.Error)
		require.Contains(t, res.Error, "certificate")
	})

	t.Run("HTTPSToPlainServer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		res := b.sender(t, nil).Send(t.Context(), b.request(strings.Replace(rc.srv.URL, "http://", "https://", 1)))
		require.False(t, res.Succeeded)
		require.Equal(t, "TLS error: the server answered with plain HTTP", res.Error)
	})

	t.Run("DNSFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		resolver := resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		})
		res := b.sender(t, func(c *SenderConfig) { c.Resolver = resolver }).Send(t.Context(), b.request("https://nowhere.test/"))
		require.Equal(t, "DNS error: no such host nowhere.test", res.Error)
	})

	t.Run("CallerCancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res := b.sender(t, nil).Send(ctx, b.request(rc.srv.URL))
		require.False(t, res.Succeeded)
		require.True(t, strings.HasPrefix(res.Error, "cancelled before completion"), res.Error)
	})

	t.Run("InvalidURL", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := b.sender(t, func(c *SenderConfig) { c.Dial = mustNotDial(t) })
		for _, u := range []string{"", "ftp://example.com/", "example.com/hook", "http://", "http://exa mple.com/"} {
			res := s.Send(t.Context(), b.request(u))
			require.False(t, res.Succeeded)
			require.True(t, strings.HasPrefix(res.Error, "invalid URL"), "%q: %s", u, res.Error)
		}
	})

	t.Run("InvalidSecret", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := b.sender(t, func(c *SenderConfig) { c.Dial = mustNotDial(t) })
		r := b.request("https://example.com/")
		r.Secret = "whsec_not base64!"
		res := s.Send(t.Context(), r)
		require.Equal(t, "signing secret is invalid: secret is not base64 after whsec_", res.Error)
		require.NotContains(t, res.Error, "not base64!")

		r.Secret = ""
		require.Equal(t, "signing secret is missing", s.Send(t.Context(), r).Error)
	})
}

func TestSenderResponseBody(t *testing.T) {
	t.Parallel()

	t.Run("TruncatedAt64KiB", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), 100<<10))
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.True(t, res.Succeeded, res.Error)
		require.Len(t, res.ResponseBody, ResponseBodyMax)
	})

	t.Run("CharacterCutByLimitDropped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("a", ResponseBodyMax-1)+"é and more")
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.Equal(t, strings.Repeat("a", ResponseBodyMax-1), res.ResponseBody)
	})

	t.Run("InvalidUTF8Replaced", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok \xff\xfe done \xc3"))
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.True(t, res.Succeeded)
		require.Equal(t, "ok \uFFFD done \uFFFD", res.ResponseBody)
	})

	t.Run("InvalidUTF8AtLimitStaysWithinLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("\xff a"), 50<<10)) // each invalid byte would grow to three
		})
		res := b.sender(t, nil).Send(t.Context(), b.request(rc.srv.URL))
		require.LessOrEqual(t, len(res.ResponseBody), ResponseBodyMax)
		require.True(t, utf8.ValidString(res.ResponseBody))
	})
}

func TestSenderConnections(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name     string
		respSize int
	}{
		{"SmallResponses", 2},
		{"ResponsesLongerThanKept", 100 << 10}, // drained so the connection survives
	} {
		t.Run("ReusedAcross"+tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			resp := bytes.Repeat([]byte("x"), tc.respSize)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.Write(resp) })
			s := b.sender(t, nil)
			for range 50 {
				res := s.Send(t.Context(), b.request(rc.srv.URL))
				require.True(t, res.Succeeded, res.Error)
			}
			require.Len(t, rc.reqs, 50)
			require.Equal(t, int64(1), rc.conns.Load(), "one keep-alive connection for sequential sends")
		})
	}

	t.Run("ReusedAfterFailures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusInternalServerError)
		})
		s := b.sender(t, nil)
		for range 20 {
			require.Equal(t, "HTTP 500", s.Send(t.Context(), b.request(rc.srv.URL)).Error)
		}
		require.Equal(t, int64(1), rc.conns.Load())
	})

	t.Run("ConcurrentSends", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rc := newReceiver(t, nil)
		s := b.sender(t, nil)
		var wg sync.WaitGroup
		results := make(chan Result, 40)
		for range 40 {
			wg.Go(func() { results <- s.Send(t.Context(), b.request(rc.srv.URL)) })
		}
		wg.Wait()
		close(results)
		for res := range results {
			require.True(t, res.Succeeded, res.Error)
		}
		require.Len(t, rc.reqs, 40)
		require.LessOrEqual(t, rc.conns.Load(), int64(40))
	})

	t.Run("TrustedTLS", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}))
		srv.EnableHTTP2 = true
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		s := b.sender(t, func(c *SenderConfig) { c.TLSConfig = &tls.Config{RootCAs: roots} })
		for range 10 {
			res := s.Send(t.Context(), b.request(srv.URL))
			require.True(t, res.Succeeded, res.Error)
			require.Equal(t, "HTTP/2.0", res.ResponseBody)
		}
		require.Equal(t, int64(1), conns.Load())
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                               0,
		"   ":                            0,
		"0":                              0,
		"120":                            2 * time.Minute,
		" 5 ":                            5 * time.Second,
		"-5":                             0,
		"1.5":                            0,
		"soon":                           0,
		"99999999999999999999":           time.Duration(1<<63 - 1),
		"9223372036":                     9223372036 * time.Second,
		"9223372037":                     time.Duration(1<<63 - 1),
		"Fri, 03 Apr 2026 14:31:30 GMT":  90 * time.Second,
		"Friday, 03-Apr-26 14:30:10 GMT": 10 * time.Second, // RFC 850
		"Fri Apr  3 14:32:00 2026":       2 * time.Minute,  // ANSI C
		"Fri, 03 Apr 2026 14:00:00 GMT":  0,                // past
		"Fri, 03 Apr 2026 14:30:00 GMT":  0,                // now
	} {
		require.Equal(t, want, ParseRetryAfter(in, now), "%q", in)
	}
}

// resolverFunc is a netguard.Resolver for tests.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

var _ netguard.Resolver = resolverFunc(nil)

// mustNotDial fails the test if the sender ever connects.
func mustNotDial(t *testing.T) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("dialled %s %s", network, addr)
		return nil, io.ErrClosedPipe
	}
}

func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	s := NewSender(SenderConfig{AllowPrivate: true})
	b.Cleanup(s.CloseIdleConnections)
	req := Request{
		URL:       srv.URL,
		Body:      bytes.Repeat([]byte("x"), 1024),
		EventType: webhook.ProposalAccepted,
		EventID:   "evt_2mZ9fQxYz",
		WebhookID: "wh_abc123",
		Secret:    webhook.NewSecret(),
	}
	ctx := context.Background()

	b.Run("Sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := s.Send(ctx, req); !res.Succeeded {
				b.Fatal(res.Error)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := s.Send(ctx, req); !res.Succeeded {
					b.Error(res.Error)
					return
				}
			}
		})
	})
}
