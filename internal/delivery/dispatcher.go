package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testsignal"
	"github.com/quikly/webhooks/internal/webhook"
)

// Dispatcher defaults.
const (
	// WorkersDefault bounds the attempts in flight in one process. An attempt is a goroutine and a
	// socket, not a thread: one waiting on a hung endpoint costs about 30 KiB (two goroutines of
	// net/http, ours, and the connection's buffers), so 4096 of them stay near 128 MiB and well
	// within the file descriptors a process gets.
	WorkersDefault = 4096
	// PerAccountDefault bounds one account's attempts in flight in one process, so that however many
	// of its endpoints hang, the other accounts keep the rest. It is above 50 × PerWebhookDefault, so
	// an account's healthy webhook is not kept waiting by fifty hung siblings either.
	PerAccountDefault = 1024
	// PerWebhookDefault bounds one webhook's attempts in flight in one process (1 while its circuit
	// breaker is open, across every process).
	PerWebhookDefault = 16
	// UnansweredRateDefault bounds how many attempts start per second, in all, to webhooks that do
	// not answer (see DispatcherConfig.UnansweredRate). Starting an attempt costs a connection on
	// both sides and its failure an outcome and a retry: a thousand endpoints that hang, started at
	// once and timing out at once, are bursts of work that every other account's deliveries queue
	// behind. Paced, the same work is spread thin; the webhooks that answer never wait for it.
	UnansweredRateDefault = 200
	// unansweredUnpaced attempts to webhooks that do not answer may be in flight before the pace
	// applies: new webhooks that answer at once (a fan-out to many new ones, every webhook after a
	// restart) turn into webhooks that answer without waiting for tokens; endpoints that hang
	// soon hold these and go at the pace.
	unansweredUnpaced = 64
	// claimWebhooksMax bounds the webhooks whose deliveries one claim transaction takes, with
	// DispatcherConfig.OneWriter; a claim allotted more takes them in several transactions, one
	// after the other. A claim costs the database a few statements per webhook: beside 500 hung
	// webhooks, claims of 20–30 of them held SQLite's one writer for 5–13 ms, and an API create or
	// another webhook's claim waited for it.
	claimWebhooksMax = 8
	// BatchSizeDefault caps how many deliveries one claim takes.
	BatchSizeDefault = 256
	// PollIntervalDefault is how often an idle dispatcher looks for due deliveries unwoken.
	PollIntervalDefault = 500 * time.Millisecond
	// walkGap spaces the claims that look at every webhook with due deliveries: at least this many
	// times the last one's length apart, so that they take no more than an eighth of a core.
	walkGap = 8
	// dueWebhooksMax bounds how many webhooks with pending deliveries one claim looks at.
	dueWebhooksMax = 10000
	// StoreTimeoutDefault bounds one claim, one outcome write or one maintenance batch, so that a stalled
	// database connection cannot hold a worker, or Stop, for longer.
	StoreTimeoutDefault = 10 * time.Second
	// LeaseMargin is added to the delivery timeout to make a lease: a crashed process's attempts
	// are taken up again within the timeout plus this (SPEC §5 allows 30 s).
	LeaseMargin = 15 * time.Second
)

// Outcome writes are retried through a short database outage, with a backoff that doubles from
// outcomeBackoffMin to outcomeBackoffMax, outcomeWriteTries times in all (about 30 s of backoff).
//
// Outcome writes are marked store.WithLowPriority. With DispatcherConfig.OneWriter a batch is
// written outcomeWriteMax at a time, each write in a transaction of its own: SQLite's one writer
// can then let an API create or a claim go between two of them instead of waiting for a whole batch
// (timeouts of hung endpoints came in batches of 60–90, 10–15 ms of writing).
const (
	outcomeWriteMax   = 16
	outcomeWriteTries = 10
	outcomeBackoffMin = 100 * time.Millisecond
	outcomeBackoffMax = 5 * time.Second
)

// DispatcherConfig configures a Dispatcher. Its zero numeric fields take their defaults; Store and
// Sender are required.
type DispatcherConfig struct {
	// Store holds the queue.
	Store store.Store
	// Sender makes the attempts; its timeout also sizes the leases.
	Sender *Sender
	// Policy is the retry schedule. The zero value never retries.
	Policy RetryPolicy
	// Metrics counts attempts; nil counts nothing.
	Metrics *Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Clock is the time of claims, leases and outcomes; nil means the real clock.
	Clock clock.Clock
	// Workers bounds the attempts in flight at once. Defaults to WorkersDefault; must be at least 1.
	Workers int
	// PerAccount bounds one account's attempts in flight. Defaults to PerAccountDefault; must be at
	// least 1; never more than half of Workers (when Workers > 1), so that one account never holds
	// every slot.
	PerAccount int
	// PerWebhook bounds one webhook's attempts in flight. Defaults to PerWebhookDefault; must be at
	// least 1.
	PerWebhook int
	// UnansweredRate bounds how many attempts start per second, in bursts of a quarter of it, to
	// webhooks that do not answer (their latest attempt in this process did not succeed, or they
	// have none yet, or another process saw them fail since) once unansweredUnpaced of those are in
	// flight. Webhooks that answer are not paced.
	// Defaults to UnansweredRateDefault; negative means no bound.
	UnansweredRate float64
	// BatchSize caps one claim. Defaults to BatchSizeDefault; must be at least 1.
	BatchSize int
	// PollInterval is how often an idle dispatcher looks for due deliveries when nobody wakes it.
	// Defaults to PollIntervalDefault.
	PollInterval time.Duration
	// StoreTimeout bounds each claim and outcome write. Defaults to StoreTimeoutDefault.
	StoreTimeout time.Duration
	// OneWriter says that the store's writes take turns on one writer (SQLite): a claim then takes
	// at most claimWebhooksMax webhooks per transaction and an outcome write at most
	// outcomeWriteMax outcomes, so that none holds the writer, and every other write, for long.
	// PostgreSQL runs transactions side by side, where each costs round trips: there, splitting
	// them halved fanout's throughput and left e2e's deliveries behind the API.
	OneWriter bool
}

// WithDefaults returns a copy of c with every zero field that has a default set to it.
func (c *DispatcherConfig) WithDefaults() *DispatcherConfig {
	out := *c
	out.Logger = cmp.Or(c.Logger, slog.Default())
	out.Workers = cmp.Or(c.Workers, WorkersDefault)
	out.PerAccount = cmp.Or(c.PerAccount, PerAccountDefault)
	if out.Workers > 1 && out.PerAccount > 0 {
		out.PerAccount = min(out.PerAccount, out.Workers/2)
	}
	out.PerWebhook = cmp.Or(c.PerWebhook, PerWebhookDefault)
	out.UnansweredRate = cmp.Or(c.UnansweredRate, UnansweredRateDefault)
	out.BatchSize = cmp.Or(c.BatchSize, BatchSizeDefault)
	out.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	out.StoreTimeout = cmp.Or(c.StoreTimeout, StoreTimeoutDefault)
	return &out
}

func (c *DispatcherConfig) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("dispatcher: Store is required")
	case c.Sender == nil:
		return errors.New("dispatcher: Sender is required")
	case c.Workers < 1:
		return fmt.Errorf("dispatcher: Workers must be at least 1, got %d", c.Workers)
	case c.PerAccount < 1:
		return fmt.Errorf("dispatcher: PerAccount must be at least 1, got %d", c.PerAccount)
	case c.PerWebhook < 1:
		return fmt.Errorf("dispatcher: PerWebhook must be at least 1, got %d", c.PerWebhook)
	case math.IsNaN(c.UnansweredRate) || math.IsInf(c.UnansweredRate, 0):
		return fmt.Errorf("dispatcher: UnansweredRate must be a number, got %v", c.UnansweredRate)
	case c.BatchSize < 1:
		return fmt.Errorf("dispatcher: BatchSize must be at least 1, got %d", c.BatchSize)
	case c.PollInterval <= 0:
		return fmt.Errorf("dispatcher: PollInterval must be positive, got %s", c.PollInterval)
	case c.StoreTimeout <= 0:
		return fmt.Errorf("dispatcher: StoreTimeout must be positive, got %s", c.StoreTimeout)
	}
	return nil
}

// Dispatcher claims due deliveries, sends each in a goroutine of its own and writes outcomes back in
// batches. Claims share the free slots fairly (fairShare): round-robin across accounts, then across
// each account's webhooks, within the caps of each. So one account's dead endpoints never stall
// another's deliveries, and within an account a healthy webhook is not kept waiting by its failing
// siblings. Create it with NewDispatcher, Start it once, and Stop it. Notify is safe for concurrent
// use.
type Dispatcher struct {
	cfg     *DispatcherConfig
	timeout time.Duration // the sender's, which leases are made from
	log     *slog.Logger

	// wake wakes the claim loop of named webhooks, wakeWalk the loop that walks every webhook.
	wake     chan struct{}
	wakeWalk chan struct{}
	outcomes chan finished

	mu       sync.Mutex
	inflight *inflightCounts
	// hinted holds the webhooks that Notify named since the last claim of named webhooks, and
	// lookAll whether a Notify named none (see walkLoop). walkAt is when a claim of named webhooks
	// wants a walk (a rate or the pace held some back; zero: none).
	hinted  map[string]bool
	lookAll bool
	walkAt  time.Time
	// queued holds a healthy webhook's deliveries claimed ahead of a free slot (see next). They
	// take no worker and count against no account's cap: they start in the slots the webhook has.
	queued map[string][]*store.ClaimedDelivery
	// answering holds the webhooks whose latest attempt in this process succeeded: only they are
	// claimed ahead, so an endpoint that has never answered (or just stopped) holds no more than
	// its slots. Bounded like served.
	answering map[string]bool
	stopping  bool // Stop has begun: claimed-ahead deliveries are given back, not sent
	// served orders accounts and webhooks by when they last got a slot: the value of tick then.
	served map[string]uint64
	tick   uint64
	// unanswered paces the attempts to webhooks that do not answer (nil: no bound) beyond the
	// unansweredUnpaced in flight, which unansweredInFlight holds by delivery id. Both claim loops
	// use unanswered: each takes what it started after its claim, so together they may start up to
	// a burst more than the pace.
	unanswered         *rate.Limiter
	unansweredInFlight map[string]bool

	startOnce sync.Once
	stopOnce  sync.Once
	started   bool
	// stopClaiming ends the claim loops; stopWork ends what Stop no longer waits for (outcome-write
	// retries past StoreTimeout).
	stopClaiming context.CancelFunc
	stopWork     context.CancelFunc
	workCtx      context.Context
	claimerDone  chan struct{}
	attempts     sync.WaitGroup
	writerDone   chan struct{}

	testSignals dispatcherTestSignals
}

// dispatcherTestSignals tell a test what the dispatcher did. Disabled outside tests.
type dispatcherTestSignals struct {
	Claimed            testsignal.Signal[[]*store.ClaimedDelivery] // after each claim that got deliveries
	ClaimFailed        testsignal.Signal[error]                    // after each failed claim
	OutcomesWritten    testsignal.Signal[[]*store.DeliveryOutcome] // after each outcome batch committed
	OutcomeWriteFailed testsignal.Signal[error]                    // after each failed outcome write
	Stopping           testsignal.Signal[struct{}]                 // when Stop has begun
}

func (ts *dispatcherTestSignals) Init() {
	ts.Claimed.Init()
	ts.ClaimFailed.Init()
	ts.OutcomesWritten.Init()
	ts.OutcomeWriteFailed.Init()
	ts.Stopping.Init()
}

// servedMax bounds the served map: past it, it starts afresh (every webhook then counts as served
// long ago, which only reorders one round).
const servedMax = 1 << 16

type finished struct {
	outcome  *store.DeliveryOutcome
	duration time.Duration
}

// NewDispatcher returns a dispatcher configured by cfg, or an error saying which setting is invalid.
func NewDispatcher(cfg *DispatcherConfig) (*Dispatcher, error) {
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	var unanswered *rate.Limiter
	if c.UnansweredRate > 0 {
		unanswered = rate.NewLimiter(rate.Limit(c.UnansweredRate), max(1, int(c.UnansweredRate/4)))
	}
	return &Dispatcher{
		cfg:                c,
		timeout:            c.Sender.Timeout(),
		log:                c.Logger,
		wake:               make(chan struct{}, 1),
		wakeWalk:           make(chan struct{}, 1),
		outcomes:           make(chan finished, c.BatchSize),
		inflight:           newInflightCounts(),
		queued:             map[string][]*store.ClaimedDelivery{},
		answering:          map[string]bool{},
		served:             map[string]uint64{},
		hinted:             map[string]bool{},
		unanswered:         unanswered,
		unansweredInFlight: map[string]bool{},
	}, nil
}

func (d *Dispatcher) now() time.Time { return clock.Now(d.cfg.Clock) }

// Notify wakes the dispatcher to look for due deliveries now: of webhookIDs alone (a publish in
// this process just gave them deliveries; looking them up costs a probe each), or of every webhook
// when none is named. It never blocks.
func (d *Dispatcher) Notify(webhookIDs ...string) {
	d.mu.Lock()
	all := len(webhookIDs) == 0 || len(d.hinted)+len(webhookIDs) > dueWebhooksMax
	if all {
		d.lookAll = true
	} else {
		for _, id := range webhookIDs {
			d.hinted[id] = true
		}
	}
	d.mu.Unlock()
	if all {
		signal(d.wakeWalk)
	} else {
		signal(d.wake)
	}
}

// signal wakes whoever waits on ch, a channel of capacity 1, without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start begins claiming and sending until Stop, or until ctx ends, which stops claiming too (Stop
// must still be called to wait for the attempts in flight). Attempts and outcome writes do not end
// with ctx: an attempt that was sent has its outcome written. Start fails if called twice.
func (d *Dispatcher) Start(ctx context.Context) error {
	err := errors.New("dispatcher: already started")
	d.startOnce.Do(func() {
		err = nil
		claimCtx, stopClaiming := context.WithCancel(ctx)
		d.workCtx, d.stopWork = context.WithCancel(context.WithoutCancel(ctx))
		d.stopClaiming = stopClaiming
		d.claimerDone = make(chan struct{})
		d.writerDone = make(chan struct{})
		d.mu.Lock() // Handoff.take reads it
		d.started = true
		d.mu.Unlock()
		go d.writeLoop()
		go func() {
			defer close(d.claimerDone)
			var loops sync.WaitGroup
			var outage outage
			loops.Go(func() { d.walkLoop(claimCtx, &outage) })
			loops.Go(func() { d.namedLoop(claimCtx, &outage) })
			loops.Wait()
		}()
	})
	return err
}

// Stop stops claiming, lets the attempts in flight finish (each within the delivery timeout), writes
// their outcomes and returns. Writing the last outcomes gets StoreTimeout after the last attempt ends;
// outcomes it cannot write by then are re-delivered once their leases expire. Stop before Start, and
// a second Stop, do nothing.
func (d *Dispatcher) Stop() {
	d.startOnce.Do(func() {}) // a Start after Stop does nothing
	if !d.started {
		return
	}
	d.stopOnce.Do(func() {
		d.mu.Lock()
		d.stopping = true
		d.mu.Unlock()
		d.testSignals.Stopping.Signal(struct{}{})
		d.stopClaiming()
		<-d.claimerDone
		d.attempts.Wait()
		// Give the deliveries claimed ahead back, so that another process takes them now rather
		// than when their leases end (if this fails, they do then).
		var ahead []*store.ClaimedDelivery
		for _, q := range d.queued {
			ahead = append(ahead, q...)
		}
		clear(d.queued)
		d.release(ahead)
		close(d.outcomes)
		grace := time.NewTimer(d.cfg.StoreTimeout)
		defer grace.Stop()
		select {
		case <-d.writerDone:
		case <-grace.C:
			d.stopWork() // cut the outcome write's retries short
			<-d.writerDone
		}
		d.stopWork()
	})
}

// Two loops claim. namedLoop claims for the webhooks Notify named (a publish here gave them
// deliveries, an attempt freed one of their slots): a look-up each. walkLoop looks at every webhook
// with due deliveries: at start, every poll interval, on a NOTIFY from another process, when a
// Notify named none, when a rate or the pace held deliveries back. A walk costs a probe per webhook
// and claims for many (beside 500 hung webhooks, 15–20 ms), so the named claims do not wait for
// walks, and walks are spaced by walkGap times the last one's length: beside 500 hung webhooks,
// whose timeouts each free a slot, they took half of the process's CPU. The two loops' claims may
// run at once; each reserves the slots it allots until it knows what it got (claimOnce).

// namedLoop claims for the webhooks Notify names until ctx ends.
func (d *Dispatcher) namedLoop(ctx context.Context, outage *outage) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		// A full claim named its webhooks again, which woke this loop again.
		if _, next := d.claimOnce(ctx, outage, false); !next.IsZero() {
			d.mu.Lock()
			if d.walkAt.IsZero() || next.Before(d.walkAt) {
				d.walkAt = next
			}
			d.mu.Unlock()
			signal(d.wakeWalk)
		}
	}
}

// walkLoop walks every webhook with due deliveries when asked or due, walks spaced, until ctx ends.
func (d *Dispatcher) walkLoop(ctx context.Context, outage *outage) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due <-chan struct{} // nil (never ready) unless the store wakes us across processes
	if w, ok := d.cfg.Store.(store.Waker); ok {
		due = w.DeliveriesDue()
	}
	all := true // a walk is asked for
	var lastWalk, next time.Time
	var walkTook time.Duration
	for {
		now := time.Now()
		d.mu.Lock()
		all = all || d.lookAll || now.Sub(lastWalk) >= d.cfg.PollInterval
		d.lookAll = false
		if !d.walkAt.IsZero() && (next.IsZero() || d.walkAt.Before(next)) {
			next = d.walkAt
		}
		d.walkAt = time.Time{}
		d.mu.Unlock()
		if !next.IsZero() && !next.After(d.now()) {
			all, next = true, time.Time{} // a walk it waited for
		}
		if all && now.Sub(lastWalk) >= walkGap*walkTook {
			var full bool
			full, next = d.claimOnce(ctx, outage, true)
			all, lastWalk, walkTook = full, now, time.Since(now) // after a full walk, walk again (spaced)
		}
		wait := d.cfg.PollInterval - time.Since(lastWalk)
		if all {
			wait = min(wait, walkGap*walkTook-time.Since(lastWalk)) // the walk put off
		}
		if !next.IsZero() {
			// A rate-limited webhook may start its next attempt then: wake for it rather than at
			// the next poll, which would hold every webhook under 2/s of the poll to far less.
			wait = min(wait, next.Sub(d.now()))
		}
		timer.Reset(max(time.Millisecond, wait))
		select {
		case <-ctx.Done():
			return
		case <-d.wakeWalk:
		case <-due:
			all = true
		case <-timer.C:
			all = true
		}
	}
}

// outage tracks a run of failed claims, so that a database outage is logged once when it starts and
// once when it ends, not at every poll. Both claim loops share one.
type outage struct {
	mu       sync.Mutex
	since    time.Time // zero when claims succeed
	failures int
}

func (o *outage) fail(log *slog.Logger, err error, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = now
		log.Error("claim deliveries failed; retrying quietly until the database answers", "err", err)
	}
	o.failures++
}

func (o *outage) recover(log *slog.Logger, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	log.Info("claim deliveries recovered", "outage", now.Sub(o.since).Round(time.Millisecond), "failed_claims", o.failures)
	o.since, o.failures = time.Time{}, 0
}

// claimOnce shares the free slots between the webhooks with due deliveries (every webhook's if all,
// else those Notify named), claims them and starts their attempts. It reports whether more may be
// due now: a walk, when it took every free slot it shared; a claim of named webhooks, when one got
// all it was allotted (they are named again). And it reports the earliest time after now at which
// a webhook with due deliveries held back by its rate, or by the pace of webhooks that do not
// answer, may start its next attempt (zero when none waits).
func (d *Dispatcher) claimOnce(ctx context.Context, o *outage, all bool) (bool, time.Time) {
	d.mu.Lock()
	free := min(d.cfg.Workers-d.inflight.total, d.cfg.BatchSize)
	var only []string
	if free > 0 && !all {
		for id := range d.hinted {
			only = append(only, id)
		}
		clear(d.hinted)
	}
	d.mu.Unlock()
	if free <= 0 || !all && len(only) == 0 || ctx.Err() != nil {
		return false, time.Time{}
	}
	now := d.now()
	var claimed []*store.ClaimedDelivery
	var allotted map[string]int
	var rated []*store.DueWebhook
	var paced map[string]bool // the webhooks whose attempts are paced
	var unpaced int           // how many of them may start without spending d.unanswered
	var starved bool
	var shared int                  // the free slots the fair share shared
	var reserved []held             // the slots allotted, counted in flight until the claim returns
	var rest []store.ClaimAllotment // allotted, claimed after the first transaction
	lctx := store.WithLeasesOnly(ctx)
	if all {
		lctx = store.WithLowPriority(lctx) // retries, the pace's next attempts: no one waits on them
	}
	tctx, cancel := context.WithTimeout(lctx, d.cfg.StoreTimeout)
	// Which webhooks have due deliveries is read before the write transaction: it walks every
	// webhook with pending deliveries, and SQLite's one writer need not wait for that. The claim's
	// UPDATEs check again that what they take is still due (and the rate it may spend).
	due, err := d.cfg.Store.DeliveryDueWebhooks(tctx, &store.DeliveryDueWebhooksParams{Now: now, Limit: dueWebhooksMax, WebhookIDs: only})
	for _, w := range due {
		if w.Rate.Limit > 0 {
			rated = append(rated, w)
		}
	}
	if err == nil && len(due) > 0 {
		err = d.cfg.Store.Tx(tctx, func(tx store.Tx) error {
			claimed, allotted = nil, nil
			// The time once the transaction runs, not before it waited for the database: rate
			// limits count from it, and a wait of varying length would bunch attempts up.
			now = d.now()
			budget := -1
			if d.unanswered != nil {
				budget = int(d.unanswered.TokensAt(now))
			}
			d.mu.Lock()
			if budget >= 0 {
				unpaced = max(0, unansweredUnpaced-len(d.unansweredInFlight))
				budget += unpaced
			}
			var allotments []store.ClaimAllotment
			shared = min(d.cfg.Workers-d.inflight.total, d.cfg.BatchSize)
			allotments, starved = fairShare(&share{due: due, free: shared,
				perAccount: d.cfg.PerAccount, perWebhook: d.cfg.PerWebhook, inflight: d.inflight, queued: d.queued,
				answering: d.answering, unanswered: budget, served: d.served, now: now})
			allotted = make(map[string]int, len(allotments))
			for _, a := range allotments {
				allotted[a.WebhookID] = a.Limit
			}
			// The other claim loop's share must not hand the allotted slots out too (the webhooks
			// may be the same). A transaction tried again gives the previous try's back first.
			d.inflight.hold(reserved, -1)
			reserved = reserved[:0]
			paced = map[string]bool{}
			for _, w := range due {
				if !answers(w, d.answering) {
					paced[w.WebhookID] = true
				}
				if n := allotted[w.WebhookID]; n > 0 {
					reserved = append(reserved, held{w.WebhookID, w.AccountID, n})
				}
			}
			d.inflight.hold(reserved, 1)
			d.mu.Unlock()
			if len(allotments) == 0 {
				return nil
			}
			if all && d.cfg.OneWriter {
				n := min(len(allotments), claimWebhooksMax)
				allotments, rest = allotments[:n], allotments[n:] // rest: claimRest, after the commit
			}
			var err error
			claimed, err = tx.DeliveryClaimDue(tctx, d.claimParams(now, allotments))
			return err
		})
	}
	if err == nil && len(rest) > 0 {
		var more []*store.ClaimedDelivery
		more, err = d.claimRest(tctx, rest)
		claimed = append(claimed, more...)
	}
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			o.fail(d.log, err, d.now())
			d.testSignals.ClaimFailed.Signal(err)
		}
		if len(claimed) == 0 {
			d.mu.Lock()
			d.inflight.hold(reserved, -1)
			d.mu.Unlock()
			return false, time.Time{}
		}
		// What the transactions before the failed one claimed is leased: attempt it.
	} else {
		o.recover(d.log, d.now())
	}
	got := map[string]int{}
	d.mu.Lock()
	d.inflight.hold(reserved, -1) // what was claimed is counted below
	if len(d.answering) > servedMax {
		clear(d.answering)
	}
	for _, c := range claimed {
		if paced[c.WebhookID] {
			d.unansweredInFlight[c.ID] = true
		}
		got[c.WebhookID]++
		d.markServed(c)
		if d.inflight.hook[c.WebhookID] >= d.cfg.PerWebhook {
			d.queued[c.WebhookID] = append(d.queued[c.WebhookID], c)
			continue
		}
		d.inflight.add(c.WebhookID, c.AccountID, 1)
		d.attempts.Add(1)
		go d.attempt(c)
	}
	d.mu.Unlock()
	if len(claimed) > 0 {
		d.testSignals.Claimed.Signal(claimed)
	}
	var next time.Time
	if d.unanswered != nil {
		spent := 0
		for id, n := range got {
			if paced[id] {
				spent += n
			}
		}
		d.unanswered.ReserveN(now, max(0, spent-unpaced))
		if starved {
			// Wake once half a burst has come back, not for every token: each claim reads every
			// webhook with due deliveries.
			want := float64(max(1, d.unanswered.Burst()/2))
			next = now.Add(time.Duration((want - d.unanswered.TokensAt(now)) / float64(d.unanswered.Limit()) * float64(time.Second)))
		}
	}
	for _, w := range rated {
		r := w.Rate
		r.TAT = r.Take(now, got[w.WebhookID])
		if t := r.Next(); t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if all {
		// It took every slot it shared: more may be due. When it took fewer, what held the rest
		// back wakes a walk itself (a rate or the pace: next; a slot that frees: Dispatcher.next).
		// Walking again after each walk that claimed, as before, walked every ~9 walks' lengths
		// beside hung endpoints whose attempts were paced: a walk is 5–20 ms of the process's CPU.
		return len(claimed) >= shared, next
	}
	for id, n := range allotted {
		if got[id] == n {
			d.Notify(only...) // named again, for what is left of them
			return true, next
		}
	}
	return false, next
}

// markServed records that c's account and webhook got a slot now (fairShare serves first those
// served longest ago). The caller holds d.mu.
func (d *Dispatcher) markServed(c *store.ClaimedDelivery) {
	if len(d.served) > servedMax {
		clear(d.served)
	}
	d.tick++
	d.served[c.AccountID], d.served[c.WebhookID] = d.tick, d.tick
}

// claimRest claims what allotments give, claimWebhooksMax webhooks per transaction, one
// transaction after the other, and returns what they took until the first that failed.
func (d *Dispatcher) claimRest(ctx context.Context, allotments []store.ClaimAllotment) ([]*store.ClaimedDelivery, error) {
	var claimed []*store.ClaimedDelivery
	for chunk := range slices.Chunk(allotments, claimWebhooksMax) {
		var more []*store.ClaimedDelivery
		err := d.cfg.Store.Tx(ctx, func(tx store.Tx) error {
			var err error
			more, err = tx.DeliveryClaimDue(ctx, d.claimParams(d.now(), chunk))
			return err
		})
		if err != nil {
			return claimed, err
		}
		claimed = append(claimed, more...)
	}
	return claimed, nil
}

// claimParams are the parameters of a claim at now of what allotments give, each delivery leased
// for a whole attempt (leaseUntil).
func (d *Dispatcher) claimParams(now time.Time, allotments []store.ClaimAllotment) *store.DeliveryClaimDueParams {
	return &store.DeliveryClaimDueParams{Now: now, LeaseUntil: leaseUntil(now, d.timeout), Allotments: allotments}
}

// leaseUntil is the end of the lease of an attempt starting at now with the sender's timeout: the
// one place a lease is made, for claims and test sends alike.
func leaseUntil(now time.Time, timeout time.Duration) time.Time {
	return now.Add(timeout + LeaseMargin)
}

// attempt sends c (within the sender's timeout) and queues its outcome for writing, then sends its
// webhook's deliveries claimed ahead in the same slot, and frees the slot when there are none.
func (d *Dispatcher) attempt(c *store.ClaimedDelivery) {
	defer d.attempts.Done()
	for c != nil {
		res := d.cfg.Sender.Send(d.workCtx, requestFor(c))
		o := Outcome(c, res, d.cfg.Policy, d.now())
		d.outcomes <- finished{o, res.Duration}
		c = d.next(c, res.Succeeded)
	}
}

// next frees what done held and returns the next delivery of its webhook claimed ahead, keeping the
// slot, or nil, freeing it. One whose lease would end before a whole attempt is dropped: its lease
// expires and a claim takes it again, in this process or another, never two at once.
func (d *Dispatcher) next(done *store.ClaimedDelivery, succeeded bool) *store.ClaimedDelivery {
	hook := done.WebhookID
	d.mu.Lock()
	// An attempt within unansweredUnpaced that ends makes room for one more that the pace does
	// not hold back: a walk takes it (a fan-out to many new webhooks goes on at once).
	unpacedFree := d.unanswered != nil && d.unansweredInFlight[done.ID] && len(d.unansweredInFlight) <= unansweredUnpaced
	delete(d.unansweredInFlight, done.ID)
	if succeeded {
		d.answering[hook] = true
	} else {
		delete(d.answering, hook)
	}
	// A slot another webhook may be waiting for (the process or the account was full) wakes the
	// claimer at once.
	capped := d.inflight.total >= d.cfg.Workers || d.inflight.account[done.AccountID] >= d.cfg.PerAccount
	full := d.inflight.hook[hook] >= d.cfg.PerWebhook
	var next *store.ClaimedDelivery
	var stale []*store.ClaimedDelivery
	for q := d.queued[hook]; len(q) > 0 && next == nil && !d.stopping; q = d.queued[hook] {
		if head := q[0]; d.now().Add(d.timeout + time.Second).Before(head.LeaseUntil) {
			next = head
		} else {
			stale = append(stale, head)
		}
		d.queued[hook] = q[1:]
	}
	if len(d.queued[hook]) == 0 {
		delete(d.queued, hook)
	}
	if next == nil {
		d.inflight.add(hook, done.AccountID, -1)
	}
	// A claim for each freed slot would cost a claim transaction per delivery. Claim when the
	// slots have no delivery waiting (so the next ones are claimed ahead while the slots are busy),
	// then again once half are free: one claim fills many.
	low := next == nil && (full || d.inflight.hook[hook] <= d.cfg.PerWebhook/2)
	d.mu.Unlock()
	d.release(stale)
	switch {
	case capped || unpacedFree:
		d.Notify() // any webhook of the account, or of any account, may take the slot (or the room)
	case (low || len(stale) > 0) && !succeeded:
		// Its next attempts are paced (it does not answer): the walk claims them at the pace,
		// and the claims of webhooks named for new events don't queue behind them.
		d.Notify()
	case low || len(stale) > 0:
		d.Notify(hook)
	}
	return next
}

// release gives back claimed deliveries this process will not attempt (their lease would end before
// a whole attempt, or Stop came first), due now, so that a claim here or in another process takes
// them at once. If it fails, their leases end on their own: nothing is lost.
func (d *Dispatcher) release(cs []*store.ClaimedDelivery) {
	if len(cs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(store.WithLeasesOnly(context.WithoutCancel(d.workCtx)), d.cfg.StoreTimeout)
	defer cancel()
	err := d.cfg.Store.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryRelease(ctx, cs, d.now()) })
	if err != nil {
		d.log.Warn("give back deliveries claimed ahead; their leases will end instead", "err", err, "deliveries", len(cs))
	}
}

// writeLoop writes outcomes in batches: whatever has finished while the previous batch committed.
func (d *Dispatcher) writeLoop() {
	defer close(d.writerDone)
	batch := make([]*store.DeliveryOutcome, 0, 256)
	for f := range d.outcomes {
		batch = append(batch[:0], f.outcome)
		d.cfg.Metrics.Observe(f.outcome, f.duration)
	gather:
		for len(batch) < cap(batch) {
			select {
			case f, ok := <-d.outcomes:
				if !ok {
					break gather
				}
				batch = append(batch, f.outcome)
				d.cfg.Metrics.Observe(f.outcome, f.duration)
			default:
				break gather
			}
		}
		size := len(batch)
		if d.cfg.OneWriter {
			size = outcomeWriteMax
		}
		for chunk := range slices.Chunk(batch, size) {
			d.writeOutcomes(chunk)
		}
	}
}

// writeOutcomes writes one batch, retrying through a short database outage so that attempts that
// succeeded are not sent again. Each try has StoreTimeout; the backoff between tries ends early when
// Stop gives up waiting. Outcomes it drops are not lost: their leases expire and the deliveries are
// attempted again, at least once.
func (d *Dispatcher) writeOutcomes(batch []*store.DeliveryOutcome) {
	ctx := store.WithLowPriority(store.WithLeasesOnly(d.workCtx))
	attempts := make([]*webhook.Attempt, len(batch))
	for i, o := range batch {
		attempts[i] = o.Attempt
	}
	health := webhook.HealthChanges(attempts)
	backoff := outcomeBackoffMin
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		err := d.cfg.Store.Tx(tctx, func(tx store.Tx) error { return tx.DeliveryComplete(tctx, batch, health) })
		cancel()
		if err == nil {
			d.testSignals.OutcomesWritten.Signal(batch)
			if slices.ContainsFunc(batch, func(o *store.DeliveryOutcome) bool { return o.Probe }) {
				d.Notify() // a probe slot is free: its webhook's next delivery can go
			}
			return
		}
		d.testSignals.OutcomeWriteFailed.Signal(err)
		if try == outcomeWriteTries || ctx.Err() != nil {
			d.log.Error("write delivery outcomes; giving up, leases will re-deliver", "err", err, "outcomes", len(batch))
			return
		}
		d.log.Error("write delivery outcomes; retrying", "err", err, "outcomes", len(batch), "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done(): // Stop has given up waiting
			t.Stop()
			d.log.Error("write delivery outcomes; giving up at shutdown, leases will re-deliver", "err", err, "outcomes", len(batch))
			return
		case <-t.C:
		}
		backoff = min(2*backoff, outcomeBackoffMax)
	}
}
