// Package listen implements `quikly listen`, a local receiver that developers point a webhook at to
// see deliveries arrive and check their signatures.
package listen

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/webhook"
)

// Limits of the receiver.
const (
	// BodyMax is the largest body read. Event bodies are far smaller; the limit only keeps a stray
	// upload from filling memory.
	BodyMax = 4 << 20
	// Tolerance is how far webhook-timestamp may be from now, as in Standard Webhooks.
	Tolerance = 5 * time.Minute
)

// Handler returns the receiver: for each POST it writes one line to out,
// "<RFC 3339 time> <event> <webhook-id> verified" or "… INVALID: <reason>", and answers 200 when the
// delivery is valid and 400 when not. <webhook-id> is the webhook-id header, the event id that
// receivers de-duplicate on. Valid means X-Quikly-Signature verifies with secret, or one of the
// webhook-signature signatures does with a webhook-timestamp within Tolerance of now, read from clk
// (nil means the real clock). The handler is safe for concurrent requests: lines never interleave.
func Handler(secret string, out io.Writer, clk clock.Clock) http.Handler {
	h := &handler{secret: secret, out: out, clock: clk}
	h.key, h.keyErr = webhook.SecretKey(secret)
	return h
}

type handler struct {
	secret string
	key    []byte // the Standard Webhooks key; nil when keyErr says why secret has none
	keyErr error
	clock  clock.Clock

	mu  sync.Mutex // guards out
	out io.Writer
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "quikly listen receives webhook deliveries: POST only", http.StatusMethodNotAllowed)
		return
	}
	now := clock.Now(h.clock)
	event := field(r.Header.Get("X-Quikly-Event"))
	id := field(r.Header.Get("webhook-id"))

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, BodyMax))
	var reason string
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reason = fmt.Sprintf("body larger than %d bytes", BodyMax)
		} else {
			reason = "reading body: " + err.Error()
		}
	} else {
		reason = h.verify(r.Header, body, now)
	}

	line := now.Format(time.RFC3339) + " " + event + " " + id + " verified"
	if reason != "" {
		line = now.Format(time.RFC3339) + " " + event + " " + id + " INVALID: " + reason
	}
	h.mu.Lock()
	fmt.Fprintln(h.out, line)
	h.mu.Unlock()

	if reason != "" {
		http.Error(w, "invalid: "+reason, http.StatusBadRequest)
		return
	}
	io.WriteString(w, "verified\n")
}

// verify returns why the delivery is not valid, or "" when it is.
func (h *handler) verify(header http.Header, body []byte, now time.Time) string {
	quikly := header.Get("X-Quikly-Signature")
	standard := header.Get("webhook-signature")
	if quikly == "" && standard == "" {
		return "no X-Quikly-Signature or webhook-signature header"
	}

	var reasons []string
	if quikly != "" {
		want := webhook.SignQuikly(h.secret, body)
		// Constant time: a receiver that compares byte by byte tells an attacker how much matched.
		if subtle.ConstantTimeCompare([]byte(quikly), []byte(want)) == 1 {
			return ""
		}
		reasons = append(reasons, "X-Quikly-Signature does not match")
	}
	if standard != "" {
		reason := h.verifyStandard(header, standard, body, now)
		if reason == "" {
			return ""
		}
		reasons = append(reasons, "webhook-signature: "+reason)
	}
	return strings.Join(reasons, "; ")
}

// verifyStandard checks the webhook-signature header sigs (Standard Webhooks).
func (h *handler) verifyStandard(header http.Header, sigs string, body []byte, now time.Time) string {
	if h.keyErr != nil {
		return "cannot check: " + h.keyErr.Error()
	}
	id := header.Get("webhook-id")
	if id == "" {
		return "no webhook-id header"
	}
	ts, err := strconv.ParseInt(header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return "webhook-timestamp missing or not Unix seconds"
	}
	// Outside the window a captured delivery could be replayed, so the signature is not even checked.
	switch age := now.Sub(time.Unix(ts, 0)); {
	case age > Tolerance:
		return fmt.Sprintf("webhook-timestamp is %s old, more than %s", age.Round(time.Second), Tolerance)
	case age < -Tolerance:
		return fmt.Sprintf("webhook-timestamp is %s in the future, more than %s", (-age).Round(time.Second), Tolerance)
	}
	want := []byte(webhook.SignStandard([][]byte{h.key}, id, ts, body))
	for sig := range strings.FieldsSeq(sigs) {
		if subtle.ConstantTimeCompare([]byte(sig), want) == 1 {
			return ""
		}
	}
	return "no signature matches"
}

// field makes a header value safe to print as one word of the line: "-" when empty, quoted when it
// holds spaces or control characters (which could otherwise forge lines or drive the terminal).
func field(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) > 200 {
		s = s[:200]
	}
	if !utf8.ValidString(s) {
		return strconv.QuoteToASCII(s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}
