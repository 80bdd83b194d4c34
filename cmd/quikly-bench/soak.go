package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/webhook"
)

// The soak's shape. Faults are drawn from these ranges with the run's seed.
const (
	soakAccounts        = 3
	soakDeliveryTimeout = 2 * time.Second
	// soakRetrySchedule has 12 retries over about 3 minutes: it outlasts the longest fault window
	// (a receiver broken for at most soakBadMax, a process down for at most soakDownMax) many times
	// over, so a delivery ends failed only if a receiver fails it for minutes, which the soak never
	// does. Its last delays are 30 s, so the final drain waits at most that long for a retry.
	soakRetrySchedule = "200ms,500ms,1s,2s,4s,8s,15s,30s,30s,30s,30s,30s"
	soakActionMin     = time.Second // between two chaos actions
	soakActionMax     = 5 * time.Second
	soakDownMin       = 200 * time.Millisecond // a killed process stays down this long
	soakDownMax       = 3 * time.Second
	soakPauseMin      = time.Second // a webhook stays paused this long
	soakPauseMax      = 10 * time.Second
	soakBadMin        = 2 * time.Second // a receiver answers 500, hangs or is slow this long
	soakBadMax        = 15 * time.Second
	soakCooldown      = 10 * time.Second // a receiver stays healthy at least this long between faults
	soakSlowMin       = 200 * time.Millisecond
	soakSlowMax       = 1000 * time.Millisecond // half the delivery timeout: slow, never a timeout
	// soakRotationGrace is how long after a rotation an X-Quikly-Signature with the previous secret is
	// still accepted: an attempt claimed before the rotation may be signed just after it.
	soakRotationGrace = 5 * time.Second
	// soakDupWindow is how long after a 200 a fault may have come and still explain a duplicate: the
	// outcome of an attempt is written right after its answer, but on a loaded machine not at once.
	soakDupWindow = 5 * time.Second
	// soakErrorWindow is how long after a fault an API error counts as during faults.
	soakErrorWindow = 10 * time.Second
	soakDrainMax    = 6 * time.Minute
)

// Fault kinds.
const (
	faultKillServe   = "kill -9 serve"
	faultKillWorker  = "kill -9 worker"
	faultPGTerminate = "pg_terminate_backend"
	faultPause       = "pause webhook"
	faultRotate      = "rotate secret"
	faultReceiver    = "receiver 500"
	faultHang        = "receiver hanging"
	faultSlow        = "receiver slow"
)

// fault is one injected fault.
type fault struct {
	At     time.Time     `json:"-"`
	Offset float64       `json:"at_s"` // seconds since the start of the run
	Kind   string        `json:"kind"`
	Detail string        `json:"detail,omitempty"`
	For    time.Duration `json:"-"`
	ForS   float64       `json:"for_s,omitempty"`
}

// soakHookRef is a webhook of the soak as the chaos loop sees it.
type soakHookRef struct {
	id      string
	account *soakAccount
	events  []string
	paused  bool
	// healthyAt is when its receiver may be broken again.
	healthyAt time.Time
	broken    bool
}

// soakAccount is one account, its key and its API client.
type soakAccount struct {
	name string
	api  *apiClient
}

// created is one create request of the producers.
type created struct {
	account *soakAccount
	event   string
	id      string // the object's id, when the API answered 201
	at      time.Time
}

// soak is one run of the soak scenario.
type soak struct {
	b     *bench
	res   *Result
	rnd   *rand.Rand // the chaos loop's; only its goroutine uses it
	seed  uint64
	dbURL string
	start time.Time
	rcv   *soakReceiver
	ps    *soakProcs
	serve *proc
	// workers are PostgreSQL's two quikly worker processes; none on SQLite.
	workers  []*proc
	accounts []*soakAccount
	hooks    []*soakHookRef
	postgres bool

	mu       sync.Mutex
	faults   []fault
	accepted []created
	// unavailable counts creates that got no answer (quikly down or killed mid-request), throttled
	// 429 or 503, and errors the others, each during faults or outside them.
	unavailable, throttled      int
	errorsDuring, errorsOutside int
	errorSamples                []string
	chaosErrors                 []string
	downUntil                   time.Time
}

// runSoak creates events steadily across several accounts and webhooks for the soak duration while a
// chaos loop injects faults, then stops the faults, drains the queue and checks that every accepted
// event reached every webhook subscribed to it, with every signature verified.
func (b *bench) runSoak(ctx context.Context, res *Result) (err error) {
	s := &soak{b: b, res: res, seed: b.o.Seed, postgres: b.dbs.Kind() == "postgres"}
	if s.seed == 0 {
		var buf [8]byte
		crand.Read(buf[:])
		s.seed = binary.LittleEndian.Uint64(buf[:]) >> 1
	}
	s.rnd = rand.New(rand.NewPCG(s.seed, s.seed^0x5eed))
	fmt.Fprintf(b.progress, "   seed %d (replay with --seed %d)\n", s.seed, s.seed)
	res.detail("seed", s.seed)
	res.detail("duration_s", b.sz.SoakDuration.Seconds())
	res.detail("rate_per_s", b.sz.SoakRate)
	res.detail("retry_schedule", soakRetrySchedule)
	res.detail("delivery_timeout", soakDeliveryTimeout.String())

	dbURL, drop, err := b.dbs.Create(ctx, "soak")
	if err != nil {
		return err
	}
	s.dbURL = dbURL
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, drop(dctx))
	}()
	if s.rcv, err = newSoakReceiver(soakRotationGrace); err != nil {
		return err
	}
	defer s.rcv.close()
	keys := make([]string, soakAccounts)
	for i := range keys {
		if keys[i], err = createAPIKey(ctx, b.bin, dbURL, fmt.Sprintf("soak-%d", i+1)); err != nil {
			return err
		}
	}
	var echo = b.progress
	if !b.o.Verbose {
		echo = nil
	}
	s.ps = &soakProcs{bin: b.bin, echo: echo}
	procCtx, stopProcs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProcs()
	common := []string{"--database", dbURL, "--allow-private-targets", "--retry-schedule", soakRetrySchedule,
		"--delivery-timeout", soakDeliveryTimeout.String()}
	s.serve = &proc{role: "serve", argv: append(append([]string{"serve", "--addr", "127.0.0.1:0", "--rate-limit=0"}, common...), b.o.Serve...)}
	s.ps.procs = []*proc{s.serve}
	res.detail("serve_flags", slices.Concat([]string{"--rate-limit=0"}, common[2:], b.o.Serve))
	if s.postgres {
		res.detail("worker_flags", common[2:])
	}
	if err := s.ps.start(procCtx, s.serve); err != nil {
		return err
	}
	// Restarts keep serve's port, so that clients see it go away and come back.
	s.serve.argv[2] = s.serve.addr()
	if s.postgres {
		for i := range 2 {
			w := &proc{role: fmt.Sprintf("worker-%d", i+1), argv: append([]string{"worker", "--worker-addr", "127.0.0.1:0"}, common...)}
			s.workers = append(s.workers, w)
			s.ps.procs = append(s.ps.procs, w)
			if err := s.ps.start(procCtx, w); err != nil {
				return err
			}
		}
	}
	defer func() {
		var errs []error
		for _, p := range s.ps.procs {
			errs = append(errs, p.stop())
		}
		err = errors.Join(err, errors.Join(errs...))
	}()

	// Three webhooks per account: one per event type and one to both.
	subs := [][]string{{webhook.LeadSessionCreated}, {webhook.ProposalCreated}, {webhook.LeadSessionCreated, webhook.ProposalCreated}}
	for i, key := range keys {
		a := &soakAccount{name: fmt.Sprintf("soak-%d", i+1), api: newAPIClient(s.serve.addr(), key, 4)}
		defer a.api.close()
		s.accounts = append(s.accounts, a)
		for j, events := range subs {
			name := fmt.Sprintf("%s-%d", a.name, j+1)
			id, secret, err := a.api.createWebhook(ctx, name, s.rcv.URL+"/"+name, events...)
			if err != nil {
				return err
			}
			if err := s.rcv.register(id, a.name, secret, events); err != nil {
				return err
			}
			s.hooks = append(s.hooks, &soakHookRef{id: id, account: a, events: events})
		}
	}
	res.detail("accounts", len(s.accounts))
	res.detail("webhooks", len(s.hooks))

	s.start = time.Now()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Go(func() { s.ps.sampleEvery(sampleCtx, 2*time.Second) })

	genCtx, stopGen := context.WithTimeout(ctx, b.sz.SoakDuration)
	defer stopGen()
	var wg sync.WaitGroup
	for _, a := range s.accounts {
		wg.Go(func() { s.produce(genCtx, a) })
	}
	wg.Go(func() { s.chaos(genCtx, procCtx) })
	wg.Go(func() { s.progress(genCtx) })
	wg.Wait()
	genEnd := time.Now()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(b.progress, "   %v of events and faults done; stopping faults and draining\n", b.sz.SoakDuration)

	// Faults stop: every receiver healthy, every webhook resumed, every process running.
	if err := s.calm(ctx, procCtx); err != nil {
		return err
	}
	drainStart := time.Now()
	derr := s.drain(ctx)
	res.detail("drain_s", round(time.Since(drainStart).Seconds()))
	s.ps.sample()
	stopSampling()
	sampling.Wait()
	return errors.Join(derr, s.check(ctx, genEnd))
}

// progress prints a line a minute until ctx ends: a long soak shows that it is alive.
func (s *soak) progress(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap := s.rcv.snapshot()
		s.mu.Lock()
		fmt.Fprintf(s.b.progress, "   %v: %d events accepted, %d creates unanswered, %d faults, receiver %d×200 %d×500 %d hung %d unverified\n",
			time.Since(s.start).Round(time.Second), len(s.accepted), s.unavailable, len(s.faults), snap.ok, snap.failed, snap.hung, snap.unverified)
		s.mu.Unlock()
	}
}

// produce creates events for account a at its share of the rate until ctx ends, alternating
// proposals and lead sessions.
func (s *soak) produce(ctx context.Context, a *soakAccount) {
	every := time.Duration(float64(time.Second) * float64(len(s.accounts)) / float64(max(1, s.b.sz.SoakRate)))
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		event := webhook.LeadSessionCreated
		if n%2 == 1 {
			event = webhook.ProposalCreated
		}
		at := time.Now()
		// The request outlives the generation's end: an answer cut off by it would be ambiguous.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		var id string
		var status int
		var err error
		if event == webhook.LeadSessionCreated {
			id, status, err = a.api.createLeadSession(rctx, n)
		} else {
			id, status, err = createProposal(rctx, a.api, n)
		}
		cancel()
		s.mu.Lock()
		switch {
		case err == nil:
			s.accepted = append(s.accepted, created{account: a, event: event, id: id, at: at})
		case status == 0:
			s.unavailable++
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			s.throttled++
		default:
			during := s.faultNear(at)
			if during {
				s.errorsDuring++
			} else {
				s.errorsOutside++
			}
			if len(s.errorSamples) < 20 {
				s.errorSamples = append(s.errorSamples, fmt.Sprintf("at %.1fs (during faults: %v): %v",
					at.Sub(s.start).Seconds(), during, err))
			}
		}
		s.mu.Unlock()
	}
}

// faultNear reports whether a fault was injected within soakErrorWindow before t, or a process was
// down (s.mu held).
func (s *soak) faultNear(t time.Time) bool {
	if t.Before(s.downUntil.Add(soakErrorWindow)) {
		return true
	}
	for _, f := range s.faults {
		if !f.At.After(t) && t.Before(f.At.Add(f.For+soakErrorWindow)) {
			return true
		}
	}
	return false
}

// createProposal creates proposal n through the API (which publishes proposal.created).
func createProposal(ctx context.Context, a *apiClient, n int) (string, int, error) {
	body := fmt.Appendf(nil, `{"name":"Soak proposal %d","client_name":"Soak Client","currency":"USD",`+
		`"line_items":[{"description":"Design","quantity":2,"unit_price":1500.25},{"description":"Hosting","quantity":12,"unit_price":20}]}`, n)
	var out struct{ ID string }
	status, err := a.do(ctx, http.MethodPost, "/proposals", body, http.StatusCreated, &out)
	if err != nil {
		return "", status, fmt.Errorf("create proposal: %w", err)
	}
	if out.ID == "" {
		return "", status, errors.New("create proposal: answer without id")
	}
	return out.ID, status, nil
}

// record notes a fault injected now, lasting d.
func (s *soak) record(kind, detail string, d time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{At: now, Offset: round(now.Sub(s.start).Seconds()), Kind: kind, Detail: detail,
		For: d, ForS: round(d.Seconds())})
}

func (s *soak) chaosError(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chaosErrors) < 20 {
		s.chaosErrors = append(s.chaosErrors, fmt.Sprintf("at %.1fs: ", time.Since(s.start).Seconds())+fmt.Sprintf(format, args...))
	}
}

// revert is something the chaos loop undoes later: resume a webhook, heal a receiver.
type revert struct {
	at time.Time
	do func(ctx context.Context) bool // false: try again a second later
}

// chaos injects faults at random intervals until gen ends: one action at a time, so that a process is
// always running again before the next fault (and a secret rotation never races a kill). The first
// actions take every kind once, in a random order, so that even a short run covers them all.
func (s *soak) chaos(gen, procCtx context.Context) {
	kinds := []string{faultKillServe, faultPause, faultRotate, faultReceiver, faultHang, faultSlow}
	weights := []int{2, 3, 2, 2, 2, 2}
	if s.postgres {
		kinds = append(kinds, faultKillWorker, faultPGTerminate)
		weights = append(weights, 2, 2)
	}
	first := slices.Clone(kinds)
	s.rnd.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	total := 0
	for _, w := range weights {
		total += w
	}
	var reverts []revert
	next := time.Now().Add(s.between(soakActionMin, soakActionMax))
	for {
		// Reverts that are due, then the next action when it is due.
		now := time.Now()
		var later []revert
		for _, r := range reverts {
			if r.at.After(now) {
				later = append(later, r)
			} else if !r.do(procCtx) {
				later = append(later, revert{at: now.Add(time.Second), do: r.do})
			}
		}
		reverts = later
		wake := next
		for _, r := range reverts {
			if r.at.Before(wake) {
				wake = r.at
			}
		}
		if err := sleepUntil(gen, wake); err != nil {
			// Generation is over: calm undoes what is left.
			return
		}
		if time.Now().Before(next) {
			continue
		}
		var kind string
		if len(first) > 0 {
			kind, first = first[0], first[1:]
		} else {
			pick := s.rnd.IntN(total)
			for i, w := range weights {
				if pick < w {
					kind = kinds[i]
					break
				}
				pick -= w
			}
		}
		reverts = append(reverts, s.inject(procCtx, kind)...)
		next = time.Now().Add(s.between(soakActionMin, soakActionMax))
	}
}

// between draws a duration in [lo, hi] from the run's seed.
func (s *soak) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rnd.Int64N(int64(hi-lo)+1))
}

// inject injects one fault of kind and returns what must be undone later.
func (s *soak) inject(ctx context.Context, kind string) []revert {
	switch kind {
	case faultKillServe, faultKillWorker:
		p := s.serve
		if kind == faultKillWorker {
			p = s.workers[s.rnd.IntN(len(s.workers))]
		}
		down := s.between(soakDownMin, soakDownMax)
		pid := p.pid()
		s.record(kind, fmt.Sprintf("%s pid %d, down %v", p.role, pid, down.Round(time.Millisecond)), down)
		p.kill()
		if p == s.serve {
			s.mu.Lock()
			s.downUntil = time.Now().Add(down)
			s.mu.Unlock()
		}
		if sleepUntil(ctx, time.Now().Add(down)) != nil {
			return nil
		}
		if err := s.ps.start(ctx, p); err != nil {
			s.chaosError("restart %s: %v", p.role, err)
		}
		if p == s.serve {
			s.mu.Lock()
			s.downUntil = time.Now()
			s.mu.Unlock()
		}
	case faultPGTerminate:
		which := []string{"all", "serve", "one"}[s.rnd.IntN(3)]
		n, err := pgTerminate(ctx, s.b.dbs.(*postgresDBs).admin, s.dbURL, which)
		if err != nil {
			s.chaosError("%v", err)
			return nil
		}
		s.record(kind, fmt.Sprintf("%s: %d backends", which, n), 0)
	case faultPause:
		var active []*soakHookRef
		for _, h := range s.hooks {
			if !h.paused {
				active = append(active, h)
			}
		}
		if len(active) == 0 {
			return nil
		}
		h := active[s.rnd.IntN(len(active))]
		d := s.between(soakPauseMin, soakPauseMax)
		if err := setActive(ctx, h, false); err != nil {
			s.chaosError("pause %s: %v", h.id, err)
		}
		h.paused = true
		s.record(kind, h.id, d)
		return []revert{{at: time.Now().Add(d), do: func(ctx context.Context) bool {
			if err := setActive(ctx, h, true); err != nil {
				s.chaosError("resume %s: %v", h.id, err)
				return false
			}
			h.paused = false
			return true
		}}}
	case faultRotate:
		h := s.hooks[s.rnd.IntN(len(s.hooks))]
		s.record(kind, h.id, 0)
		s.rotate(ctx, h)
	case faultReceiver, faultHang, faultSlow:
		var healthy []*soakHookRef
		now := time.Now()
		for _, h := range s.hooks {
			if !h.broken && now.After(h.healthyAt) {
				healthy = append(healthy, h)
			}
		}
		if len(healthy) == 0 {
			return nil
		}
		h := healthy[s.rnd.IntN(len(healthy))]
		d := s.between(soakBadMin, soakBadMax)
		mode, slow := modeFail, time.Duration(0)
		switch kind {
		case faultHang:
			mode = modeHang
		case faultSlow:
			mode, slow = modeSlow, s.between(soakSlowMin, soakSlowMax)
		}
		s.rcv.setMode(h.id, mode, slow)
		h.broken = true
		s.record(kind, h.id, d)
		return []revert{{at: now.Add(d), do: func(context.Context) bool {
			s.rcv.setMode(h.id, modeHealthy, 0)
			h.broken, h.healthyAt = false, time.Now().Add(soakCooldown)
			return true
		}}}
	}
	return nil
}

// rotate regenerates h's secret and tells the receiver. While the request is out, requests to h that
// do not verify wait for its answer. A failed request is tried again: an answer that was lost would
// leave a secret nobody knows, and the next rotation replaces it.
func (s *soak) rotate(ctx context.Context, h *soakHookRef) {
	s.rcv.beginRotation(h.id)
	for try := 0; ; try++ {
		var out struct{ Secret string }
		_, err := h.account.api.do(ctx, http.MethodPost, "/webhooks/"+h.id+"/regenerate-secret", nil, http.StatusOK, &out)
		if err == nil && out.Secret != "" {
			if err := s.rcv.endRotation(h.id, out.Secret, time.Now()); err != nil {
				s.chaosError("%v", err)
			}
			return
		}
		s.chaosError("regenerate-secret %s (try %d): %v", h.id, try+1, err)
		if try == 4 || sleepUntil(ctx, time.Now().Add(time.Second)) != nil {
			s.rcv.endRotation(h.id, "", time.Time{})
			return
		}
	}
}

// finalFailures counts h's failed attempts that will not be retried (SPEC §4 logs: a failed attempt
// without next_attempt_at ended its delivery as failed).
func finalFailures(ctx context.Context, h *soakHookRef) (int, error) {
	n, cursor := 0, ""
	for {
		var out struct {
			Data []struct {
				Status        string  `json:"status"`
				NextAttemptAt *string `json:"next_attempt_at"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		path := "/webhooks/" + h.id + "/logs?status=failed&limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := h.account.api.do(ctx, http.MethodGet, path, nil, http.StatusOK, &out); err != nil {
			return n, err
		}
		for _, e := range out.Data {
			if e.Status == "failed" && e.NextAttemptAt == nil {
				n++
			}
		}
		if out.NextCursor == nil || *out.NextCursor == "" {
			return n, nil
		}
		cursor = *out.NextCursor
	}
}

// setActive pauses or resumes h.
func setActive(ctx context.Context, h *soakHookRef, active bool) error {
	body := fmt.Appendf(nil, `{"is_active":%v}`, active)
	_, err := h.account.api.do(ctx, http.MethodPut, "/webhooks/"+h.id, body, http.StatusOK, nil)
	return err
}

// calm ends every fault: receivers healthy, webhooks resumed, processes running.
func (s *soak) calm(ctx, procCtx context.Context) error {
	for _, h := range s.hooks {
		s.rcv.setMode(h.id, modeHealthy, 0)
		h.broken = false
	}
	for _, p := range s.ps.procs {
		if p.pid() == 0 {
			if err := s.ps.start(procCtx, p); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, h := range s.hooks {
		// Every webhook, paused or not: a pause whose answer was lost is resumed too.
		for {
			err := setActive(ctx, h, true)
			if err == nil {
				h.paused = false
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("resume webhooks after the faults: %w", err)
			}
			if err := sleepUntil(ctx, time.Now().Add(500*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	return nil
}

// drain waits until quikly's queue is empty (nothing pending or held).
func (s *soak) drain(ctx context.Context) error {
	deadline := time.Now().Add(soakDrainMax)
	depth, err := -1, error(nil)
	for {
		if depth, err = queueDepth(ctx, s.serve.addr()); err == nil && depth == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue not drained within %v: depth %d (%v)", soakDrainMax, depth, err)
		}
		if err := sleepUntil(ctx, time.Now().Add(500*time.Millisecond)); err != nil {
			return err
		}
	}
}

// duplicate is one (webhook, event) answered 200 more than once.
type duplicate struct {
	Webhook   string  `json:"webhook"`
	Event     string  `json:"event_id"`
	Times     int     `json:"times"`
	FirstAt   float64 `json:"first_at_s"`
	Explained string  `json:"explained_by,omitempty"`
}

// check compares what was accepted with what arrived and fills the result.
func (s *soak) check(ctx context.Context, genEnd time.Time) error {
	res := s.res
	snap := s.rcv.snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()

	// What each webhook received, by object.
	type key struct{ hook, event, object string }
	got := map[key]bool{}
	for hook, m := range snap.receipts {
		for _, rc := range m {
			got[key{hook, rc.eventType, rc.object}] = true
		}
	}
	acceptedObjects := map[string]bool{}
	var lost []string
	for _, c := range s.accepted {
		acceptedObjects[c.id] = true
		for _, h := range s.hooks {
			if h.account != c.account || !slices.Contains(h.events, c.event) {
				continue
			}
			res.Expected++
			if got[key{h.id, c.event, c.id}] {
				res.Delivered++
			} else if len(lost) < 20 {
				lost = append(lost, fmt.Sprintf("%s %s created at %.1fs, to %s", c.event, c.id, c.at.Sub(s.start).Seconds(), h.id))
			}
		}
	}
	// Deliveries of events whose create got no 201 (the answer was cut off by a kill): delivered,
	// rightly, but not counted as accepted.
	unacknowledged := 0
	for k := range got {
		if !acceptedObjects[k.object] {
			unacknowledged++
		}
	}

	// Duplicates and what explains them: a kill or a cut connection after the request arrived and
	// soon after the 200 (the outcome was lost), or a 200 written at the edge of the delivery timeout.
	var dups []duplicate
	explained := 0
	for hook, m := range snap.receipts {
		for ev, rc := range m {
			if len(rc.answers) < 2 {
				continue
			}
			d := duplicate{Webhook: hook, Event: ev, Times: len(rc.answers), FirstAt: round(rc.answers[0].Sub(s.start).Seconds())}
			for _, f := range s.faults {
				if (f.Kind == faultKillServe || f.Kind == faultKillWorker || f.Kind == faultPGTerminate) &&
					!f.At.Before(rc.starts[0].Add(-100*time.Millisecond)) && !f.At.After(rc.answers[0].Add(soakDupWindow)) {
					d.Explained = fmt.Sprintf("%s at %.1fs", f.Kind, f.Offset)
					break
				}
			}
			if d.Explained == "" && rc.answers[0].Sub(rc.starts[0]) > soakDeliveryTimeout-500*time.Millisecond {
				d.Explained = "200 answered at the edge of the delivery timeout"
			}
			if d.Explained != "" {
				explained++
			}
			dups = append(dups, d)
		}
	}
	sort.Slice(dups, func(i, j int) bool { return dups[i].FirstAt < dups[j].FirstAt })
	unexplained := []duplicate{}
	for _, d := range dups {
		if d.Explained == "" {
			unexplained = append(unexplained, d)
		}
	}

	// Deliveries that ended failed (retry schedule used up), as the API's logs report them.
	failed := 0
	for _, h := range s.hooks {
		n, err := finalFailures(ctx, h)
		if err != nil {
			res.Notes = append(res.Notes, "could not count failed deliveries: "+err.Error())
			break
		}
		failed += n
	}

	faultCounts := map[string]int{}
	for _, f := range s.faults {
		faultCounts[f.Kind]++
	}
	res.Requests = snap.ok + snap.failed + snap.hung + snap.unverified
	res.Unverified = snap.unverified
	if len(snap.badReasons) > 0 {
		res.FirstUnverified = snap.badReasons[0]
	}
	s.ps.mu.Lock()
	crashes := slices.Clone(s.ps.crashes)
	s.ps.mu.Unlock()
	resources := map[string]resourceSummary{}
	var growth []string
	for _, p := range s.ps.procs {
		sum := s.ps.summarise(p.role, s.start, genEnd)
		sum.Restarts = p.starts - 1
		resources[p.role] = sum
		if sum.Growth {
			growth = append(growth, p.role+": "+sum.GrowthNote)
		}
	}

	res.detail("faults", faultCounts)
	res.detail("fault_log", s.faults)
	res.detail("chaos_errors", s.chaosErrors)
	res.detail("accepted", len(s.accepted))
	res.detail("create_unanswered", s.unavailable)
	res.detail("create_429_503", s.throttled)
	res.detail("api_errors_during_faults", s.errorsDuring)
	res.detail("api_errors_outside_faults", s.errorsOutside)
	res.detail("api_error_samples", s.errorSamples)
	res.detail("lost", lost)
	res.detail("delivered_without_201", unacknowledged)
	res.detail("failed_deliveries_in_api", failed)
	res.detail("duplicates", len(dups))
	res.detail("duplicates_explained", explained)
	res.detail("duplicates_unexplained", unexplained)
	res.detail("duplicate_list", dups[:min(len(dups), 50)])
	res.detail("receiver_answers", map[string]int{"200": snap.ok, "500": snap.failed, "hung": snap.hung, "400_unverified": snap.unverified})
	res.detail("signature_failures", snap.badReasons)
	res.detail("signed_with_previous_secret_within_grace", snap.oldSigned)
	res.detail("webhook_signature_with_both_secrets", snap.overlap)
	res.detail("resources", resources)
	res.detail("unexpected_exits", crashes)

	res.metric("events accepted (201)", float64(len(s.accepted)), "")
	res.metric("deliveries expected", float64(res.Expected), "")
	res.metric("lost", float64(res.Expected-res.Delivered), "").atMost(0)
	res.metric("failed (schedule used up)", float64(failed), "").atMost(0)
	res.metric("duplicates", float64(len(dups)), "")
	res.metric("duplicates unexplained", float64(len(unexplained)), "").atMost(0)
	res.metric("signature failures", float64(snap.unverified), "").atMost(0)
	res.metric("API errors during faults (not 429/503)", float64(s.errorsDuring), "")
	res.metric("API errors outside faults", float64(s.errorsOutside), "").atMost(0)
	res.metric("creates unanswered (quikly down)", float64(s.unavailable), "")
	res.metric("faults injected", float64(len(s.faults)), "")
	res.metric("unexpected exits", float64(len(crashes)), "").atMost(0)
	for _, p := range s.ps.procs {
		// Late phase within 1.5× the steady one: no growth (the same rule as resourceSummary.Growth).
		r := resources[p.role]
		res.metric(p.role+" RSS steady (median)", r.SteadyMiB, "MiB")
		res.metric(p.role+" RSS late (median)", r.LateMiB, "MiB").atMost(1.5 * r.SteadyMiB)
		res.metric(p.role+" open fds steady (median)", float64(r.SteadyFDs), "")
		res.metric(p.role+" open fds late (median)", float64(r.LateFDs), "").atMost(1.5*float64(r.SteadyFDs) + 10)
	}
	res.Notes = append(res.Notes,
		fmt.Sprintf("seed %d; retry schedule %s and delivery timeout %v outlast the longest fault window (receiver broken ≤ %v, process down ≤ %v, paused ≤ %v)",
			s.seed, soakRetrySchedule, soakDeliveryTimeout, soakBadMax, soakDownMax, soakPauseMax))
	if len(growth) > 0 {
		res.Notes = append(res.Notes, "resource growth: "+strings.Join(growth, "; "))
	}
	var errs []error
	if len(crashes) > 0 {
		errs = append(errs, fmt.Errorf("%d unexpected exits of quikly, first: %s", len(crashes), firstLine(crashes[0])))
	}
	return errors.Join(errs...)
}
