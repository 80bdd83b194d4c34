package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testsignal"
)

// Dispatcher defaults.
const (
	// WorkersDefault is 8 × PerWebhookDefault: a hung webhook holds an eighth of the pool, and the
	// claims that refill a healthy webhook beside it stay large. In alternating runs, the healthy
	// webhook's rate beside a hung one was 0.83–0.97 of its rate alone with 64 workers and 0.96–1.02
	// with 128 (BENCHMARKS.md).
	WorkersDefault = 128
	// PerWebhookDefault caps one webhook's attempts in flight in one process.
	PerWebhookDefault = 16
	// BatchSizeDefault caps how many deliveries one claim takes.
	BatchSizeDefault = 128
	// PollIntervalDefault is how often an idle dispatcher looks for due deliveries unwoken.
	PollIntervalDefault = 500 * time.Millisecond
	// StoreTimeoutDefault bounds one claim, one outcome write or one release, so that a stalled
	// database connection cannot hold a worker, or Stop, for longer.
	StoreTimeoutDefault = 10 * time.Second
	// LeaseMargin is added to the delivery timeout to make a lease: a crashed process's attempts
	// are taken up again within the timeout plus this (SPEC §5 allows 30 s).
	LeaseMargin = 15 * time.Second
)

// Outcome writes are retried through a short database outage, with a backoff that doubles from
// outcomeBackoffMin to outcomeBackoffMax, outcomeWriteTries times in all (about 30 s of backoff).
const (
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
	// Workers is how many attempts run at once. Defaults to WorkersDefault; must be at least 1.
	Workers int
	// PerWebhook caps one webhook's attempts in flight. Defaults to PerWebhookDefault; must be at
	// least 1.
	PerWebhook int
	// BatchSize caps one claim. Defaults to BatchSizeDefault; must be at least 1.
	BatchSize int
	// PollInterval is how often an idle dispatcher looks for due deliveries when nobody wakes it.
	// Defaults to PollIntervalDefault.
	PollInterval time.Duration
	// StoreTimeout bounds each claim, outcome write and release. Defaults to StoreTimeoutDefault.
	StoreTimeout time.Duration
}

// WithDefaults returns a copy of c with every zero field that has a default set to it.
func (c *DispatcherConfig) WithDefaults() *DispatcherConfig {
	out := *c
	out.Logger = cmp.Or(c.Logger, slog.Default())
	out.Workers = cmp.Or(c.Workers, WorkersDefault)
	out.PerWebhook = cmp.Or(c.PerWebhook, PerWebhookDefault)
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
	case c.PerWebhook < 1:
		return fmt.Errorf("dispatcher: PerWebhook must be at least 1, got %d", c.PerWebhook)
	case c.BatchSize < 1:
		return fmt.Errorf("dispatcher: BatchSize must be at least 1, got %d", c.BatchSize)
	case c.PollInterval <= 0:
		return fmt.Errorf("dispatcher: PollInterval must be positive, got %s", c.PollInterval)
	case c.StoreTimeout <= 0:
		return fmt.Errorf("dispatcher: StoreTimeout must be positive, got %s", c.StoreTimeout)
	}
	return nil
}

// Dispatcher claims due deliveries in batches, sends them with a bounded pool and writes outcomes
// back in batches. Each webhook has at most PerWebhook attempts in flight in this process, so one
// slow endpoint never takes the pool from the others. Create it with NewDispatcher, Start it once,
// and Stop it. Notify is safe for concurrent use.
type Dispatcher struct {
	cfg     *DispatcherConfig
	timeout time.Duration // the sender's, which leases are made from
	log     *slog.Logger

	wake     chan struct{}
	work     chan *store.ClaimedDelivery
	outcomes chan finished

	mu       sync.Mutex
	inflight int
	perHook  map[string]int // attempts in flight, by webhook
	// queued holds claimed deliveries of webhooks at their cap, by webhook. They take no worker: a
	// hung webhook holds PerWebhook workers and nothing more.
	queued map[string][]*store.ClaimedDelivery

	startOnce sync.Once
	stopOnce  sync.Once
	started   bool
	// stopClaiming ends the claim loop; stopWork ends what Stop no longer waits for (outcome-write
	// retries past StoreTimeout).
	stopClaiming context.CancelFunc
	stopWork     context.CancelFunc
	workCtx      context.Context
	claimerDone  chan struct{}
	workersDone  sync.WaitGroup
	writerDone   chan struct{}

	testSignals dispatcherTestSignals
}

// dispatcherTestSignals tell a test what the dispatcher did. Disabled outside tests.
type dispatcherTestSignals struct {
	Claimed            testsignal.Signal[[]*store.ClaimedDelivery] // after each claim that got deliveries
	ClaimFailed        testsignal.Signal[error]                    // after each failed claim
	OutcomesWritten    testsignal.Signal[[]*store.DeliveryOutcome] // after each outcome batch committed
	OutcomeWriteFailed testsignal.Signal[error]                    // after each failed outcome write
	Released           testsignal.Signal[[]*store.ClaimedDelivery] // after each release committed
}

func (ts *dispatcherTestSignals) Init() {
	ts.Claimed.Init()
	ts.ClaimFailed.Init()
	ts.OutcomesWritten.Init()
	ts.OutcomeWriteFailed.Init()
	ts.Released.Init()
}

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
	return &Dispatcher{
		cfg:      c,
		timeout:  c.Sender.Timeout(),
		log:      c.Logger,
		wake:     make(chan struct{}, 1),
		work:     make(chan *store.ClaimedDelivery, c.Workers),
		outcomes: make(chan finished, c.Workers),
		perHook:  map[string]int{},
		queued:   map[string][]*store.ClaimedDelivery{},
	}, nil
}

func (d *Dispatcher) now() time.Time { return clock.Now(d.cfg.Clock) }

// Notify wakes the dispatcher to look for due deliveries now (after a publish commits). It never
// blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
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
		d.started = true
		for range d.cfg.Workers {
			d.workersDone.Add(1)
			go d.sendLoop()
		}
		go d.writeLoop()
		go d.claimLoop(claimCtx)
	})
	return err
}

// Stop stops claiming, lets the attempts in flight finish (each within the delivery timeout), writes
// their outcomes and returns. Deliveries it did not finish stay leased and are taken up again when
// their lease expires. Writing the last outcomes gets StoreTimeout after the last attempt ends;
// outcomes it cannot write by then are re-delivered once their leases expire. Stop before Start, and
// a second Stop, do nothing.
func (d *Dispatcher) Stop() {
	d.startOnce.Do(func() {}) // a Start after Stop does nothing
	if !d.started {
		return
	}
	d.stopOnce.Do(func() {
		d.stopClaiming()
		<-d.claimerDone
		// Give queued deliveries back so another process takes them now, not when their leases end.
		d.mu.Lock()
		var queued []*store.ClaimedDelivery
		for id, q := range d.queued {
			queued = append(queued, q...)
			delete(d.queued, id)
		}
		d.mu.Unlock()
		if len(queued) > 0 {
			d.release(queued)
		}
		close(d.work)
		d.workersDone.Wait()
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

func (d *Dispatcher) claimLoop(ctx context.Context) {
	defer close(d.claimerDone)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due <-chan struct{} // nil (never ready) unless the store wakes us across processes
	if w, ok := d.cfg.Store.(store.Waker); ok {
		due = w.DeliveriesDue()
	}
	var outage outage
	for {
		full := d.claimOnce(ctx, &outage)
		if full {
			continue // more may be due right away
		}
		timer.Reset(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-due:
		case <-timer.C:
		}
	}
}

// outage tracks a run of failed claims, so that a database outage is logged once when it starts and
// once when it ends, not at every poll.
type outage struct {
	since    time.Time // zero when claims succeed
	failures int
}

func (o *outage) fail(log *slog.Logger, err error, now time.Time) {
	if o.since.IsZero() {
		o.since = now
		log.Error("claim deliveries failed; retrying quietly until the database answers", "err", err)
	}
	o.failures++
}

func (o *outage) recover(log *slog.Logger, now time.Time) {
	if o.since.IsZero() {
		return
	}
	log.Info("claim deliveries recovered", "outage", now.Sub(o.since).Round(time.Millisecond), "failed_claims", o.failures)
	*o = outage{}
}

// claimOnce claims as many due deliveries as there are free workers and reports whether it got all
// it asked for (so more may be waiting).
func (d *Dispatcher) claimOnce(ctx context.Context, o *outage) bool {
	d.mu.Lock()
	free := d.cfg.Workers - d.inflight
	var exclude []string
	for id, n := range d.perHook {
		if n >= d.cfg.PerWebhook {
			exclude = append(exclude, id)
		}
	}
	d.mu.Unlock()
	if free <= 0 || ctx.Err() != nil {
		return false
	}
	limit := min(free, d.cfg.BatchSize)
	now := d.now()
	var claimed []*store.ClaimedDelivery
	tctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	err := d.cfg.Store.Tx(tctx, func(tx store.Tx) error {
		var err error
		claimed, err = tx.DeliveryClaimDue(tctx, &store.DeliveryClaimDueParams{
			Now: now, LeaseUntil: now.Add(d.timeout + LeaseMargin), Limit: limit, ExcludeWebhooks: exclude})
		return err
	})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			o.fail(d.log, err, d.now())
			d.testSignals.ClaimFailed.Signal(err)
		}
		return false
	}
	o.recover(d.log, d.now())
	d.mu.Lock()
	for _, c := range claimed {
		if d.perHook[c.WebhookID] < d.cfg.PerWebhook {
			d.perHook[c.WebhookID]++
			d.inflight++
			d.work <- c // never blocks: at most Workers are in flight
			continue
		}
		// The webhook is at its cap: wait here for its next free slot rather than round-trip to
		// the database. A webhook at its cap is left out of claims, so its queue grows by at most
		// one claim; what waits longer than its lease allows is released by next.
		d.queued[c.WebhookID] = append(d.queued[c.WebhookID], c)
	}
	d.mu.Unlock()
	if len(claimed) > 0 {
		d.testSignals.Claimed.Signal(claimed)
	}
	// A full claim means more may be due; webhooks that just filled up are excluded next time.
	return len(claimed) == limit
}

// release gives back deliveries this process will not attempt soon, due now, so another claim (here
// or in another process) takes them when their webhook has room.
func (d *Dispatcher) release(cs []*store.ClaimedDelivery) {
	ctx, cancel := context.WithTimeout(d.workCtx, d.cfg.StoreTimeout)
	defer cancel()
	now := d.now()
	err := d.cfg.Store.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryRelease(ctx, cs, now) })
	if err != nil {
		// Their leases expire on their own; nothing is lost.
		d.log.Error("release deliveries", "err", err, "deliveries", len(cs))
		return
	}
	d.testSignals.Released.Signal(cs)
}

func (d *Dispatcher) sendLoop() {
	defer d.workersDone.Done()
	for c := range d.work {
		for c != nil {
			// The sender bounds the attempt by the delivery timeout.
			res := d.cfg.Sender.Send(d.workCtx, requestFor(c))
			o := Outcome(c, res, d.cfg.Policy, d.now())
			d.outcomes <- finished{o, res.Duration}
			hook := c.WebhookID
			if c = d.next(hook); c == nil {
				d.Notify() // a worker, and a slot of hook, are free: a claim can fill them
			}
		}
	}
}

// next frees the slot of an attempt to webhookID that finished and returns the webhook's next queued
// delivery to attempt in that slot, or nil. Queued deliveries whose lease no longer covers a whole
// attempt are released instead: another claim sends them, never two processes at once.
func (d *Dispatcher) next(webhookID string) *store.ClaimedDelivery {
	d.mu.Lock()
	var stale []*store.ClaimedDelivery
	var c *store.ClaimedDelivery
	for q := d.queued[webhookID]; len(q) > 0 && c == nil; q = d.queued[webhookID] {
		head := q[0]
		d.queued[webhookID] = q[1:]
		if d.now().Add(d.timeout + time.Second).Before(head.LeaseUntil) {
			c = head
		} else {
			stale = append(stale, head)
		}
	}
	if len(d.queued[webhookID]) == 0 {
		delete(d.queued, webhookID)
	}
	if c == nil {
		d.inflight--
		if d.perHook[webhookID]--; d.perHook[webhookID] <= 0 {
			delete(d.perHook, webhookID)
		}
	}
	d.mu.Unlock()
	if len(stale) > 0 {
		d.release(stale)
	}
	return c
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
		d.writeOutcomes(batch)
	}
}

// writeOutcomes writes one batch, retrying through a short database outage so that attempts that
// succeeded are not sent again. Each try has StoreTimeout; the backoff between tries ends early when
// Stop gives up waiting. Outcomes it drops are not lost: their leases expire and the deliveries are
// attempted again, at least once.
func (d *Dispatcher) writeOutcomes(batch []*store.DeliveryOutcome) {
	ctx := d.workCtx
	backoff := outcomeBackoffMin
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		err := d.cfg.Store.Tx(tctx, func(tx store.Tx) error { return tx.DeliveryComplete(tctx, batch) })
		cancel()
		if err == nil {
			d.testSignals.OutcomesWritten.Signal(batch)
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
