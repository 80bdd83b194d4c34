package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/store"
)

// Dispatcher defaults.
const (
	// WorkersDefault is 8 × PerWebhookDefault: a hung webhook holds an eighth of the pool, and the
	// claims that refill a healthy webhook beside it stay large. In alternating runs, the healthy
	// webhook's rate beside a hung one was 0.83–0.97 of its rate alone with 64 workers and 0.96–1.02
	// with 128 (BENCHMARKS.md).
	WorkersDefault      = 128
	PerWebhookDefault   = 16
	BatchSizeDefault    = 128
	PollIntervalDefault = 500 * time.Millisecond
	// LeaseMargin is added to the delivery timeout to make a lease: a crashed process's attempts
	// are taken up again within the timeout plus this (SPEC §5 allows 30 s).
	LeaseMargin = 15 * time.Second
)

// Dispatcher claims due deliveries in batches, sends them with a bounded pool and writes outcomes
// back in batches. Each webhook has at most PerWebhook attempts in flight in this process, so one
// slow endpoint never takes the pool from the others. Start it once; Stop ends it.
type Dispatcher struct {
	Store   store.Store
	Sender  *Sender
	Policy  RetryPolicy
	Metrics *Metrics // nil counts nothing
	Logger  *slog.Logger
	// Workers is how many attempts run at once. Defaults to WorkersDefault.
	Workers int
	// PerWebhook caps one webhook's attempts in flight. Defaults to PerWebhookDefault.
	PerWebhook int
	// BatchSize caps one claim. Defaults to BatchSizeDefault.
	BatchSize int
	// PollInterval is how often an idle dispatcher looks for due deliveries when nobody wakes it.
	// Defaults to PollIntervalDefault.
	PollInterval time.Duration
	// Timeout is the delivery timeout the leases are made from. Defaults to 10 s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	wake     chan struct{}
	work     chan *store.ClaimedDelivery
	outcomes chan finished

	mu       sync.Mutex
	inflight int
	perHook  map[string]int // attempts in flight, by webhook
	// queued holds claimed deliveries of webhooks at their cap, by webhook. They take no worker: a
	// hung webhook holds PerWebhook workers and nothing more.
	queued map[string][]*store.ClaimedDelivery

	stopClaiming context.CancelFunc
	claimerDone  chan struct{}
	workersDone  sync.WaitGroup
	writerDone   chan struct{}
}

// outcomeWriteTries bounds the retries of one outcome batch (about 30 s of backoff).
const outcomeWriteTries = 10

type finished struct {
	outcome  *store.DeliveryOutcome
	duration time.Duration
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Notify wakes the dispatcher to look for due deliveries now (after a publish commits). It never
// blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start begins claiming and sending until Stop.
func (d *Dispatcher) Start() {
	d.Workers = cmpOr(d.Workers, WorkersDefault)
	d.PerWebhook = cmpOr(d.PerWebhook, PerWebhookDefault)
	d.BatchSize = cmpOr(d.BatchSize, BatchSizeDefault)
	d.PollInterval = cmpOr(d.PollInterval, PollIntervalDefault)
	d.Timeout = cmpOr(d.Timeout, TimeoutDefault)
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.wake = make(chan struct{}, 1)
	d.work = make(chan *store.ClaimedDelivery, d.Workers)
	d.outcomes = make(chan finished, d.Workers)
	d.perHook = map[string]int{}
	d.queued = map[string][]*store.ClaimedDelivery{}
	d.claimerDone = make(chan struct{})
	d.writerDone = make(chan struct{})

	ctx, cancel := context.WithCancel(context.Background())
	d.stopClaiming = cancel
	for range d.Workers {
		d.workersDone.Add(1)
		go d.sendLoop()
	}
	go d.writeLoop()
	go d.claimLoop(ctx)
}

// Stop stops claiming, lets the attempts in flight finish (each within the delivery timeout), writes
// their outcomes and returns. Deliveries it did not finish stay leased and are taken up again when
// their lease expires.
func (d *Dispatcher) Stop() {
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
		d.release(queued, d.now())
	}
	close(d.work)
	d.workersDone.Wait()
	close(d.outcomes)
	<-d.writerDone
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (d *Dispatcher) claimLoop(ctx context.Context) {
	defer close(d.claimerDone)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due <-chan struct{} // nil (never ready) unless the store wakes us across processes
	if w, ok := d.Store.(store.Waker); ok {
		due = w.DeliveriesDue()
	}
	for {
		full := d.claimOnce(ctx)
		if full {
			continue // more may be due right away
		}
		timer.Reset(d.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-due:
		case <-timer.C:
		}
	}
}

// claimOnce claims as many due deliveries as there are free workers and reports whether it got all
// it asked for (so more may be waiting).
func (d *Dispatcher) claimOnce(ctx context.Context) bool {
	d.mu.Lock()
	free := d.Workers - d.inflight
	var exclude []string
	for id, n := range d.perHook {
		if n >= d.PerWebhook {
			exclude = append(exclude, id)
		}
	}
	d.mu.Unlock()
	if free <= 0 || ctx.Err() != nil {
		return false
	}
	limit := min(free, d.BatchSize)
	now := d.now()
	var claimed []*store.ClaimedDelivery
	err := d.Store.Tx(ctx, func(tx store.Tx) error {
		var err error
		claimed, err = tx.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{
			Now: now, LeaseUntil: now.Add(d.Timeout + LeaseMargin), Limit: limit, ExcludeWebhooks: exclude})
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.Error("claim deliveries", "err", err)
		}
		return false
	}
	d.mu.Lock()
	for _, c := range claimed {
		if d.perHook[c.WebhookID] < d.PerWebhook {
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
	// A full claim means more may be due; webhooks that just filled up are excluded next time.
	return len(claimed) == limit
}

// release gives back deliveries this process will not attempt soon, due now, so another claim (here
// or in another process) takes them when their webhook has room.
func (d *Dispatcher) release(cs []*store.ClaimedDelivery, now time.Time) {
	err := d.Store.Tx(context.Background(), func(tx store.Tx) error { return tx.DeliveryRelease(context.Background(), cs, now) })
	if err != nil {
		// Their leases expire on their own; nothing is lost.
		d.Logger.Error("release deliveries", "err", err)
	}
}

func (d *Dispatcher) sendLoop() {
	defer d.workersDone.Done()
	for c := range d.work {
		for c != nil {
			res := d.Sender.Send(context.Background(), RequestFor(c))
			o := Outcome(c, res, d.Policy, d.now())
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
		if d.now().Add(d.Timeout + time.Second).Before(head.LeaseUntil) {
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
		d.release(stale, d.now())
	}
	return c
}

// writeLoop writes outcomes in batches: whatever has finished while the previous batch committed.
func (d *Dispatcher) writeLoop() {
	defer close(d.writerDone)
	batch := make([]*store.DeliveryOutcome, 0, 256)
	for f := range d.outcomes {
		batch = append(batch[:0], f.outcome)
		d.Metrics.Observe(f.outcome, f.duration)
	gather:
		for len(batch) < cap(batch) {
			select {
			case f, ok := <-d.outcomes:
				if !ok {
					break gather
				}
				batch = append(batch, f.outcome)
				d.Metrics.Observe(f.outcome, f.duration)
			default:
				break gather
			}
		}
		d.writeOutcomes(batch)
	}
}

func (d *Dispatcher) writeOutcomes(batch []*store.DeliveryOutcome) {
	ctx := context.Background()
	backoff := 100 * time.Millisecond
	for try := 1; ; try++ {
		err := d.Store.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryComplete(ctx, batch) })
		if err == nil {
			return
		}
		// Keep trying through a short database outage, so attempts that succeeded are not sent
		// again. Past that the outcomes are dropped: their leases expire and the deliveries are
		// attempted again, at least once, never lost.
		if try == outcomeWriteTries {
			d.Logger.Error("write delivery outcomes; giving up, leases will re-deliver", "err", err, "outcomes", len(batch))
			return
		}
		d.Logger.Error("write delivery outcomes; retrying", "err", err, "outcomes", len(batch), "retry_in", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}
