package delivery

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/netguard"
	"github.com/quikly/webhooks/internal/webhook"
)

// Defaults and limits of the sender.
const (
	// TimeoutDefault bounds a whole attempt (--delivery-timeout): connecting, TLS, sending, and reading the response.
	TimeoutDefault = 10 * time.Second
	// UserAgentDefault is the User-Agent when the build sets none.
	UserAgentDefault = "Quikly-Webhooks/dev"
	// ResponseBodyMax is how much of a response body an attempt keeps.
	ResponseBodyMax = 64 << 10
	// MaxIdleConnsPerHostDefault is how many idle keep-alive connections one endpoint may keep open:
	// eight webhooks' worth of attempts in flight, since many webhooks may share a host. Go's default
	// of 2 would open a connection for most attempts.
	MaxIdleConnsPerHostDefault = 8 * PerWebhookDefault

	// drainMax is how much of the body beyond ResponseBodyMax is read and discarded, so that the
	// connection can be reused; a longer body costs a new connection instead of reading time.
	drainMax = 256 << 10
	// locationMax shortens the Location of a redirect in the attempt's error.
	locationMax = 200
)

// Request is one attempt to send.
type Request struct {
	URL       string
	Body      []byte
	EventType string
	EventID   string // webhook-id header
	WebhookID string // X-Quikly-Webhook-Id
	Secret    string // current secret: X-Quikly-Signature, and first webhook-signature
	OldSecret string // previous secret during the 24 h overlap ("" when none): second webhook-signature
}

// Result is what happened; a non-2xx is a result, not a Go error.
type Result struct {
	Succeeded  bool
	StatusCode int // 0 when no response
	// Error says in words why the attempt failed: "timeout after 10s", "connection refused",
	// "redirect not followed (302 to …)", "private address refused: …", "HTTP 500", "TLS error: …".
	// Empty on success. It never holds a secret.
	Error string
	// ResponseBody is the start of the response body, at most ResponseBodyMax bytes, with invalid
	// UTF-8 replaced by U+FFFD.
	ResponseBody string
	Duration     time.Duration
	// Headers are the request headers sent, with the spelling of SPEC §5. They hold signatures, never
	// secrets.
	Headers map[string]string
	// RetryAfter is the parsed Retry-After of a 429 or 503 response, 0 otherwise.
	RetryAfter time.Duration
	SentAt     time.Time
}

// SenderConfig configures a Sender. The zero value is usable and refuses private targets.
type SenderConfig struct {
	// Timeout bounds each whole attempt. Zero (or less) means TimeoutDefault.
	Timeout time.Duration
	// AllowPrivate lets deliveries reach loopback, private and other non-public addresses
	// (--allow-private-targets).
	AllowPrivate bool
	// UserAgent is "Quikly-Webhooks/<version>". Defaults to UserAgentDefault.
	UserAgent string
	// Clock gives the time of X-Quikly-Timestamp, SentAt and Duration. Nil means the real clock.
	Clock clock.Clock
	// Resolver resolves endpoint host names. Nil means net.DefaultResolver.
	Resolver netguard.Resolver
	// Dial replaces the dialer of netguard.Dialer, for tests. Nil means a real dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig configures TLS to endpoints. Nil means the system's roots; tests trust their own
	// server's certificate here.
	TLSConfig *tls.Config
}

// Sender signs and POSTs deliveries. All attempts share one HTTP client whose keep-alive
// connections are reused per endpoint. Redirects are never followed, and targets are checked by
// netguard unless AllowPrivate is set. Safe for concurrent use.
type Sender struct {
	timeout   time.Duration
	userAgent string
	clock     clock.Clock
	client    *http.Client
	transport *http.Transport
	// timeoutCause marks the attempt's own deadline, to tell it apart from the caller's cancellation.
	timeoutCause error
}

// NewSender returns a Sender configured by cfg.
func NewSender(cfg SenderConfig) *Sender {
	s := &Sender{
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		clock:     cfg.Clock,
	}
	// The one place the delivery timeout's default is applied: the dispatcher's leases and the test
	// send read it back with Timeout.
	if s.timeout <= 0 {
		s.timeout = TimeoutDefault
	}
	s.userAgent = cmp.Or(s.userAgent, UserAgentDefault)
	s.timeoutCause = fmt.Errorf("timeout after %s", s.timeout)

	guard := &netguard.Dialer{Resolver: cfg.Resolver, AllowPrivate: cfg.AllowPrivate, Dial: cfg.Dial}
	var tlsConfig *tls.Config
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	s.transport = &http.Transport{
		// No proxy, on purpose: a proxy would resolve and connect to the target itself, out of
		// netguard's sight.
		Proxy:                  nil,
		DialContext:            guard.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    s.timeout,
		ForceAttemptHTTP2:      true, // a custom dialer turns HTTP/2 off unless asked
		MaxIdleConns:           0,    // no global limit: one per-host limit for every endpoint
		MaxIdleConnsPerHost:    MaxIdleConnsPerHostDefault,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 256 << 10,
		// Keep Accept-Encoding out of the request, so that Headers is what was sent and response
		// bodies are logged as they came.
		DisableCompression: true,
	}
	s.client = &http.Client{
		Transport: s.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is the attempt's answer, and a failure
		},
	}
	return s
}

// Timeout returns the bound of each whole attempt.
func (s *Sender) Timeout() time.Duration { return s.timeout }

func (s *Sender) now() time.Time { return clock.Now(s.clock) }

// CloseIdleConnections closes the kept-alive connections that no attempt is using.
func (s *Sender) CloseIdleConnections() { s.transport.CloseIdleConnections() }

// Send makes one attempt of r within the sender's timeout and reports what happened. It returns
// early, with an Error saying so, when ctx ends.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	sentAt := s.now()
	res := Result{SentAt: sentAt}

	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		res.Error = "invalid URL: must be an absolute http or https URL"
		return res
	}
	keys := make([][]byte, 0, 2)
	for _, secret := range []string{r.Secret, r.OldSecret} {
		if secret == "" {
			continue
		}
		key, err := webhook.SecretKey(secret)
		if err != nil {
			// The message of SecretKey names no part of the secret.
			res.Error = "signing secret is invalid: " + err.Error()
			return res
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		res.Error = "signing secret is missing"
		return res
	}

	ts := strconv.FormatInt(sentAt.Unix(), 10)
	res.Headers = map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          s.userAgent,
		"X-Quikly-Event":      r.EventType,
		"X-Quikly-Signature":  webhook.SignQuikly(r.Secret, r.Body),
		"X-Quikly-Timestamp":  ts,
		"X-Quikly-Webhook-Id": r.WebhookID,
		"webhook-id":          r.EventID,
		"webhook-timestamp":   ts,
		"webhook-signature":   webhook.SignStandard(keys, r.EventID, sentAt.Unix(), r.Body),
	}

	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, s.timeoutCause)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		res.Error = "invalid URL: " + err.Error()
		return res
	}
	req.Header = make(http.Header, len(res.Headers))
	for k, v := range res.Headers {
		// Assigned, not Set: Set would rewrite webhook-id as Webhook-Id. Names are case-insensitive,
		// but the request should read as SPEC §5 and the log shows.
		req.Header[k] = []string{v}
	}

	resp, err := s.client.Do(req)
	if err != nil {
		res.Duration = s.now().Sub(sentAt)
		res.Error = s.describe(ctx, err)
		return res
	}
	defer resp.Body.Close()
	res.StatusCode = resp.StatusCode

	body, readErr := io.ReadAll(io.LimitReader(resp.Body, ResponseBodyMax+1))
	if readErr == nil && len(body) > ResponseBodyMax {
		body = trimPartialRune(body[:ResponseBodyMax])
		// Best effort: a longer body closes the connection on Close instead.
		_, _ = io.CopyN(io.Discard, resp.Body, drainMax)
	}
	res.Duration = s.now().Sub(sentAt)
	res.ResponseBody = cleanBody(body)

	switch code := resp.StatusCode; {
	case readErr != nil:
		// The whole request, response body included, must finish in time.
		res.Error = s.describe(ctx, readErr)
	case code >= 200 && code <= 299:
		res.Succeeded = true
	case code >= 300 && code <= 399 && resp.Header.Get("Location") != "":
		res.Error = fmt.Sprintf("redirect not followed (%d to %s)", code, shorten(resp.Header.Get("Location"), locationMax))
	default:
		res.Error = "HTTP " + strconv.Itoa(code)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	return res
}

// describe puts a transport error in words. ctx is the attempt's context.
func (s *Sender) describe(ctx context.Context, err error) string {
	var refused *netguard.RefusedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var netErr net.Error

	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.Is(err, netguard.ErrRefused):
		return "private address refused"
	case errors.Is(context.Cause(ctx), s.timeoutCause):
		return s.timeoutCause.Error()
	case ctx.Err() != nil:
		return "cancelled before completion: " + context.Cause(ctx).Error()
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS error: no such host " + dnsErr.Name
		}
		if dnsErr.IsTimeout {
			return "DNS error: lookup of " + dnsErr.Name + " timed out"
		}
		return "DNS error: lookup of " + dnsErr.Name + " failed: " + dnsErr.Err
	case errors.As(err, &certErr):
		return "TLS error: " + certErr.Err.Error()
	case errors.As(err, &recordErr):
		return "TLS error: the server did not answer with TLS"
	case errors.As(err, &alertErr):
		return "TLS error: the server sent alert: " + alertErr.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server before a complete response"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS error: the server answered with plain HTTP"
	case strings.Contains(err.Error(), "TLS handshake timeout"):
		return "TLS error: handshake timed out"
	case errors.As(err, &netErr) && netErr.Timeout():
		return s.timeoutCause.Error()
	}
	msg := err.Error()
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		msg = urlErr.Err.Error() // without "Post "<url>": ", which the log shows elsewhere
	}
	if strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ") {
		return "TLS error: " + msg
	}
	return msg
}

// cleanBody returns b as valid UTF-8 of at most ResponseBodyMax bytes.
func cleanBody(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	// Each invalid byte can become three; cut back to the limit on a rune boundary.
	if len(s) > ResponseBodyMax {
		cut := ResponseBodyMax
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// trimPartialRune drops a multi-byte character that the limit cut in two, so that it does not read as
// invalid UTF-8.
func trimPartialRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// shorten cuts s to at most n bytes on a rune boundary, marking the cut with "…".
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ParseRetryAfter returns how long a Retry-After value (delay in seconds, or an HTTP date) asks to
// wait from now. An empty, malformed or past value gives 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			var numErr *strconv.NumError
			if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
				return math.MaxInt64 // absurdly far; the retry policy caps it
			}
			return 0
		}
		if n > math.MaxInt64/uint64(time.Second) {
			return math.MaxInt64
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(t.Sub(now), 0)
}
