package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/webhook"
)

// Receiver limits.
const (
	// bodyMax bounds what the receiver reads of one request; deliveries are a few hundred bytes.
	bodyMax = 1 << 20
	// signatureTolerance is how far webhook-timestamp may be from now, as SPEC §1 asks of receivers.
	signatureTolerance = 5 * time.Minute
	// hangMax bounds how long a hanging endpoint holds one request when nobody hangs up, so that a
	// bug can never leave a goroutine behind forever.
	hangMax = 2 * time.Minute
)

// receiver is the loopback endpoint every scenario delivers to. It verifies both signatures of every
// request (X-Quikly-Signature and webhook-signature) with the secret of the webhook named by
// X-Quikly-Webhook-Id, answers 200 (400 when a signature does not verify), and records when each
// distinct (webhook, event) pair first arrived. Safe for concurrent use.
type receiver struct {
	// URL is the receiver's base URL, "http://127.0.0.1:NNNN".
	URL string

	srv     *http.Server
	closing chan struct{}
	served  chan struct{}

	mu    sync.Mutex
	hooks map[string]*hookState
	// leads indexes receipts by the lead_session_id of the body, to match an API create with its
	// deliveries.
	leads      map[string]*leadState
	requests   int // every request, verified or not, answered or hung
	unverified int
	firstBad   string // why the first unverified request failed
	first      time.Time
}

// hookState is what one webhook received.
type hookState struct {
	secret string
	key    []byte // decoded secret of webhook-signature
	hang   bool   // hold every request until the sender gives up
	seen   map[string]struct{}
	// requests counts every verified request, duplicates and hung ones included.
	requests int
	// first and last are when the first and the latest new event arrived.
	first, last time.Time
}

// leadState is what arrived for one lead session: n distinct (webhook, event) pairs, the first and
// the latest at first and last.
type leadState struct {
	n           int
	first, last time.Time
}

// newReceiver starts a receiver on a loopback port.
func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on loopback: %w", err)
	}
	r := &receiver{
		URL:     "http://" + ln.Addr().String(),
		closing: make(chan struct{}),
		served:  make(chan struct{}),
		hooks:   map[string]*hookState{},
		leads:   map[string]*leadState{},
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		defer close(r.served)
		r.srv.Serve(ln) // returns ErrServerClosed on close
	}()
	return r, nil
}

// close releases hanging requests and stops the server.
func (r *receiver) close() {
	select {
	case <-r.closing:
		return
	default:
	}
	close(r.closing)
	r.srv.Close()
	<-r.served
}

// register tells the receiver the secret of webhook id; hang makes it an endpoint that never answers
// before the sender times out.
func (r *receiver) register(id, secret string, hang bool) error {
	key, err := webhook.SecretKey(secret)
	if err != nil {
		return fmt.Errorf("receiver: secret of %s: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks[id] = &hookState{secret: secret, key: key, hang: hang, seen: map[string]struct{}{}}
	return nil
}

// ServeHTTP handles one delivery attempt.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, bodyMax))
	now := time.Now()
	hookID := req.Header.Get("X-Quikly-Webhook-Id")
	r.mu.Lock()
	h := r.hooks[hookID] // registered before any traffic; never changed after
	r.mu.Unlock()

	reason := ""
	switch {
	case err != nil:
		reason = "read body: " + err.Error()
	case req.Method != http.MethodPost:
		reason = "method " + req.Method
	default:
		reason = verify(h, req.Header, body, now)
	}
	if reason != "" {
		r.mu.Lock()
		r.requests++
		r.unverified++
		if r.firstBad == "" {
			r.firstBad = fmt.Sprintf("webhook %q: %s", hookID, reason)
		}
		r.mu.Unlock()
		http.Error(w, reason, http.StatusBadRequest)
		return
	}

	if h.hang {
		r.mu.Lock()
		r.requests++
		h.requests++
		r.mu.Unlock()
		// Hold the request until the sender's timeout makes it hang up (the server then cancels the
		// request's context), the receiver closes, or hangMax passes.
		t := time.NewTimer(hangMax)
		defer t.Stop()
		select {
		case <-req.Context().Done():
		case <-r.closing:
		case <-t.C:
		}
		return
	}

	eventID := req.Header.Get("webhook-id")
	lead := leadID(body)
	r.mu.Lock()
	r.requests++
	h.requests++
	if _, dup := h.seen[eventID]; !dup {
		h.seen[eventID] = struct{}{}
		if h.first.IsZero() {
			h.first = now
		}
		h.last = now
		if r.first.IsZero() {
			r.first = now
		}
		if lead != "" {
			l := r.leads[lead]
			if l == nil {
				l = &leadState{first: now}
				r.leads[lead] = l
			}
			l.n++
			l.last = now
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// verify checks both signatures of a request to h and says why they do not verify ("" when they do).
func verify(h *hookState, hdr http.Header, body []byte, now time.Time) string {
	if h == nil {
		return "unknown X-Quikly-Webhook-Id"
	}
	want := webhook.SignQuikly(h.secret, body)
	if subtle.ConstantTimeCompare([]byte(want), []byte(hdr.Get("X-Quikly-Signature"))) != 1 {
		return "X-Quikly-Signature does not verify"
	}
	eventID := hdr.Get("webhook-id")
	ts, err := strconv.ParseInt(hdr.Get("webhook-timestamp"), 10, 64)
	if err != nil || eventID == "" {
		return "webhook-id or webhook-timestamp missing"
	}
	if d := now.Sub(time.Unix(ts, 0)); d > signatureTolerance || d < -signatureTolerance {
		return "webhook-timestamp too far from now"
	}
	std := webhook.SignStandard([][]byte{h.key}, eventID, ts, body)
	for sig := range strings.FieldsSeq(hdr.Get("webhook-signature")) {
		if subtle.ConstantTimeCompare([]byte(std), []byte(sig)) == 1 {
			return ""
		}
	}
	return "webhook-signature does not verify"
}

// leadIDKey precedes the lead session id in an event body.
var leadIDKey = []byte(`"lead_session_id":"`)

// leadID returns the data.lead_session_id of an event body, or "". A byte search rather than a JSON
// decode keeps the receiver's work per request small and the same in every scenario.
func leadID(body []byte) string {
	i := bytes.Index(body, leadIDKey)
	if i < 0 {
		return ""
	}
	rest := body[i+len(leadIDKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// hookStats is a snapshot of what one webhook received.
type hookStats struct {
	Distinct    int // distinct events answered 200
	Requests    int // verified requests, duplicates and hung ones included
	First, Last time.Time
}

// hook returns what webhook id has received so far.
func (r *receiver) hook(id string) hookStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hooks[id]
	if h == nil {
		return hookStats{}
	}
	return hookStats{Distinct: len(h.seen), Requests: h.requests, First: h.first, Last: h.last}
}

// lead returns what arrived for one lead session id.
func (r *receiver) lead(id string) leadState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.leads[id]; l != nil {
		return *l
	}
	return leadState{}
}

// totals returns every request so far, those that did not verify, and why the first of them failed.
func (r *receiver) totals() (requests, unverified int, firstBad string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.unverified, r.firstBad
}

// firstReceipt returns when the first event arrived (zero when none has).
func (r *receiver) firstReceipt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// errStalled is returned by waitFor when nothing arrives for the stall limit.
var errStalled = errors.New("no delivery arrived")

// waitFor polls cond until it holds. It gives up with an error when no request arrives for stall,
// when limit passes, or when ctx ends. Timing comes from the receiver's own receipt times, so the
// polling interval does not affect any measurement.
func (r *receiver) waitFor(ctx context.Context, what string, cond func() bool, stall, limit time.Duration) error {
	const poll = 5 * time.Millisecond
	start := time.Now()
	lastProgress := start
	lastRequests, _, _ := r.totals()
	t := time.NewTicker(poll)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
		now := time.Now()
		if n, _, _ := r.totals(); n != lastRequests {
			lastRequests, lastProgress = n, now
		}
		switch {
		case now.Sub(lastProgress) > stall:
			return fmt.Errorf("%s: %w for %v", what, errStalled, stall)
		case now.Sub(start) > limit:
			return fmt.Errorf("%s: not within %v", what, limit)
		}
	}
	return nil
}
