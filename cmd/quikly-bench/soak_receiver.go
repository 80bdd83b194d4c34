package main

import (
	"crypto/subtle"
	"encoding/json"
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

// hookMode is how the soak receiver answers one webhook's requests.
type hookMode int

const (
	modeHealthy hookMode = iota // 200 at once
	modeFail                    // 500
	modeHang                    // hold the request until the sender gives up
	modeSlow                    // 200 after a delay well within the delivery timeout
)

var modeNames = [...]string{"healthy", "500", "hanging", "slow"}

func (m hookMode) String() string { return modeNames[m] }

// Soak receiver limits.
const (
	// rotationWait bounds how long a request whose signature does not verify waits for a rotation in
	// progress to tell the receiver the new secret.
	rotationWait = 10 * time.Second
)

// secretEpoch is one secret of a webhook and when the benchmark learnt that it took effect (the
// regenerate-secret answer arrived); the first epoch's is zero.
type secretEpoch struct {
	secret    string
	key       []byte
	rotatedAt time.Time
}

// soakHook is what the soak receiver knows of one webhook.
type soakHook struct {
	id      string
	account string
	events  []string
	mode    hookMode
	slow    time.Duration
	epochs  []secretEpoch
	// rotating is closed when a rotation in progress has ended; nil when none is.
	rotating chan struct{}
}

// receipt is one (webhook, event) that was answered 200.
type receipt struct {
	eventType string
	object    string // proposal_id or lead_session_id of the body
	// starts and answers are when each request answered 200 arrived and when the 200 was written.
	starts, answers []time.Time
}

// soakReceiver is the loopback endpoint of the soak: like receiver, it verifies both signatures of
// every request, but each webhook's answers can be switched between healthy, 500, hanging and slow,
// and secrets rotate (verification follows SPEC §5: X-Quikly-Signature with the current secret,
// webhook-signature with the current and, for 24 h, the previous one). Safe for concurrent use.
type soakReceiver struct {
	URL string
	// grace is how long after a rotation the previous secret is still accepted for
	// X-Quikly-Signature: an attempt signed just before the rotation committed may arrive after.
	grace time.Duration

	srv     *http.Server
	closing chan struct{}
	served  chan struct{}

	mu       sync.Mutex
	hooks    map[string]*soakHook
	receipts map[string]map[string]*receipt // webhook id → event id → receipt
	// counts by outcome: ok, 500, hung, unverified; oldSigned is X-Quikly-Signature with the previous
	// secret within grace of a rotation; overlap is webhook-signature carrying the previous secret.
	ok, failed, hung, unverified, oldSigned, overlap int
	badReasons                                       []string
	// waiting counts requests waiting for a rotation's answer.
	waiting int
}

func newSoakReceiver(grace time.Duration) (*soakReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: listen on loopback: %w", err)
	}
	r := &soakReceiver{URL: "http://" + ln.Addr().String(), grace: grace, closing: make(chan struct{}),
		served: make(chan struct{}), hooks: map[string]*soakHook{}, receipts: map[string]map[string]*receipt{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		defer close(r.served)
		r.srv.Serve(ln)
	}()
	return r, nil
}

func (r *soakReceiver) close() {
	select {
	case <-r.closing:
		return
	default:
	}
	close(r.closing)
	r.srv.Close()
	<-r.served
}

// register adds a webhook of account, subscribed to events, signing with secret.
func (r *soakReceiver) register(id, account, secret string, events []string) error {
	key, err := webhook.SecretKey(secret)
	if err != nil {
		return fmt.Errorf("receiver: secret of %s: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks[id] = &soakHook{id: id, account: account, events: events, epochs: []secretEpoch{{secret: secret, key: key}}}
	r.receipts[id] = map[string]*receipt{}
	return nil
}

// setMode switches how webhook id is answered from its next request on.
func (r *soakReceiver) setMode(id string, m hookMode, slow time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks[id].mode, r.hooks[id].slow = m, slow
}

// beginRotation tells the receiver that id's secret is being regenerated: a request that does not
// verify with the known secrets waits until endRotation.
func (r *soakReceiver) beginRotation(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks[id].rotating = make(chan struct{})
}

// endRotation records id's new secret (when secret is not empty) and releases waiting requests.
func (r *soakReceiver) endRotation(id, secret string, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hooks[id]
	if secret != "" {
		key, err := webhook.SecretKey(secret)
		if err != nil {
			return fmt.Errorf("receiver: new secret of %s: %w", id, err)
		}
		h.epochs = append(h.epochs, secretEpoch{secret: secret, key: key, rotatedAt: at})
	}
	if h.rotating != nil {
		close(h.rotating)
		h.rotating = nil
	}
	return nil
}

// ServeHTTP handles one delivery attempt.
func (r *soakReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, bodyMax))
	hookID := req.Header.Get("X-Quikly-Webhook-Id")
	reason := ""
	if err != nil {
		reason = "read body: " + err.Error()
	}
	var mode hookMode
	var slow time.Duration
	for reason == "" {
		r.mu.Lock()
		h := r.hooks[hookID]
		if h == nil {
			r.mu.Unlock()
			reason = "unknown X-Quikly-Webhook-Id"
			break
		}
		var old, overlap bool
		reason, old, overlap = h.verify(req.Header, body, r.grace)
		wait := h.rotating
		mode, slow = h.mode, h.slow
		if reason == "" {
			if old {
				r.oldSigned++
			}
			if overlap {
				r.overlap++
			}
		}
		r.mu.Unlock()
		if reason == "" || wait == nil {
			break
		}
		// The secret may have changed under a rotation whose answer has not come back yet.
		r.count(&r.waiting)
		select {
		case <-wait:
			reason = ""
		case <-time.After(rotationWait):
		case <-req.Context().Done():
			r.uncount(&r.waiting)
			return
		}
		r.uncount(&r.waiting)
		if reason != "" {
			break
		}
	}
	if reason != "" {
		r.mu.Lock()
		r.unverified++
		if len(r.badReasons) < 10 {
			r.badReasons = append(r.badReasons, fmt.Sprintf("%s webhook %q event %q: %s",
				start.Format(time.RFC3339Nano), hookID, req.Header.Get("webhook-id"), reason))
		}
		r.mu.Unlock()
		http.Error(w, reason, http.StatusBadRequest)
		return
	}
	switch mode {
	case modeFail:
		r.count(&r.failed)
		http.Error(w, "soak: failing on purpose", http.StatusInternalServerError)
		return
	case modeHang:
		r.count(&r.hung)
		t := time.NewTimer(hangMax)
		defer t.Stop()
		select {
		case <-req.Context().Done():
		case <-r.closing:
		case <-t.C:
		}
		return
	case modeSlow:
		t := time.NewTimer(slow)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		case <-r.closing:
			return
		}
	}
	var b struct {
		Event string `json:"event"`
		Data  struct {
			ProposalID    string `json:"proposal_id"`
			LeadSessionID string `json:"lead_session_id"`
		} `json:"data"`
	}
	json.Unmarshal(body, &b) // a body that does not decode has no object: reported as unexpected
	eventID := req.Header.Get("webhook-id")
	now := time.Now()
	r.mu.Lock()
	r.ok++
	rc := r.receipts[hookID][eventID]
	if rc == nil {
		rc = &receipt{eventType: b.Event, object: b.Data.ProposalID + b.Data.LeadSessionID}
		r.receipts[hookID][eventID] = rc
	}
	rc.starts = append(rc.starts, start)
	rc.answers = append(rc.answers, now)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *soakReceiver) count(n *int) {
	r.mu.Lock()
	*n++
	r.mu.Unlock()
}

func (r *soakReceiver) uncount(n *int) {
	r.mu.Lock()
	*n--
	r.mu.Unlock()
}

// waitingForRotation is how many requests wait for a rotation's answer now.
func (r *soakReceiver) waitingForRotation() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}

// verify checks both signatures of a request to h (r.mu held) and says why they do not verify ("" when
// they do). old reports X-Quikly-Signature made with the previous secret within grace of a rotation;
// overlap that webhook-signature carried the previous secret's signature beside the current one.
//
// The epoch in force when the request was signed is the latest one rotated at least grace before
// its timestamp (or any later one: the answer of regenerate-secret comes after its commit). Then
// X-Quikly-Signature must verify with that epoch's secret or a later one; webhook-signature must hold
// a signature with one of those too and, as the previous secret signs for 24 h after a rotation (a
// soak is shorter), one with the epoch before it.
func (h *soakHook) verify(hdr http.Header, body []byte, grace time.Duration) (reason string, old, overlap bool) {
	eventID := hdr.Get("webhook-id")
	ts, err := strconv.ParseInt(hdr.Get("webhook-timestamp"), 10, 64)
	if err != nil || eventID == "" {
		return "webhook-id or webhook-timestamp missing", false, false
	}
	signed := time.Unix(ts, 0)
	if d := time.Since(signed); d > signatureTolerance || d < -signatureTolerance {
		return "webhook-timestamp too far from now", false, false
	}
	// inForce is the epoch surely in force at signing; the timestamp is whole seconds, rounded down.
	inForce := 0
	for i, e := range h.epochs {
		if i > 0 && e.rotatedAt.Add(grace).Before(signed) {
			inForce = i
		}
	}
	quikly := -1
	got := hdr.Get("X-Quikly-Signature")
	for i := len(h.epochs) - 1; i >= 0; i-- {
		if subtle.ConstantTimeCompare([]byte(webhook.SignQuikly(h.epochs[i].secret, body)), []byte(got)) == 1 {
			quikly = i
			break
		}
	}
	switch {
	case quikly < 0:
		return "X-Quikly-Signature does not verify with any secret of this webhook", false, false
	case quikly < inForce:
		return fmt.Sprintf("X-Quikly-Signature made with secret %d of %d, more than %v after it was replaced", quikly+1, len(h.epochs), grace), false, false
	}
	old = quikly < len(h.epochs)-1
	sigs := strings.Fields(hdr.Get("webhook-signature"))
	has := func(i int) bool {
		want := webhook.SignStandard([][]byte{h.epochs[i].key}, eventID, ts, body)
		for _, s := range sigs {
			if subtle.ConstantTimeCompare([]byte(want), []byte(s)) == 1 {
				return true
			}
		}
		return false
	}
	current := -1
	for i := len(h.epochs) - 1; i >= inForce; i-- {
		if has(i) {
			current = i
			break
		}
	}
	if current < 0 {
		return "webhook-signature has no signature with the secret in force", old, false
	}
	if current > 0 {
		if !has(current - 1) {
			return "webhook-signature lacks the previous secret's signature within 24 h of a rotation", old, false
		}
		overlap = true
	}
	return "", old, overlap
}

// soakReceipts is a copy of what the receiver has counted.
type soakReceipts struct {
	ok, failed, hung, unverified, oldSigned, overlap int
	badReasons                                       []string
	receipts                                         map[string]map[string]*receipt
}

// snapshot copies the receiver's counts and receipts.
func (r *soakReceiver) snapshot() soakReceipts {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := soakReceipts{ok: r.ok, failed: r.failed, hung: r.hung, unverified: r.unverified, oldSigned: r.oldSigned,
		overlap: r.overlap, badReasons: append([]string(nil), r.badReasons...), receipts: map[string]map[string]*receipt{}}
	for id, m := range r.receipts {
		c := make(map[string]*receipt, len(m))
		for ev, rc := range m {
			cp := *rc
			cp.starts, cp.answers = append([]time.Time(nil), rc.starts...), append([]time.Time(nil), rc.answers...)
			c[ev] = &cp
		}
		s.receipts[id] = c
	}
	return s
}
