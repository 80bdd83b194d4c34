package delivery

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/store"
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
	PerWebhookDefault   = 16
	BatchSizeDefault    = 256
	PollIntervalDefault = 500 * time.Millisecond
	// dueWebhooksMax bounds how many webhooks with pending deliveries one claim looks at.
	dueWebhooksMax = 10000
	// LeaseMargin is added to the delivery timeout to make a lease: a crashed process's attempts
	// are taken up again within the timeout plus this (SPEC §5 allows 30 s).
	LeaseMargin = 15 * time.Second
)

// Dispatcher claims due deliveries, sends each in a goroutine of its own and writes outcomes back in
// batches. Claims share the free slots fairly (fairShare): round-robin across accounts, then across
// each account's webhooks, within the caps of each. So one account's dead endpoints never stall
// another's deliveries, and within an account a healthy webhook is not kept waiting by its failing
// siblings. Start it once; Stop ends it.
type Dispatcher struct {
	Store   store.Store
	Sender  *Sender
	Policy  RetryPolicy
	Metrics *Metrics // nil counts nothing
	Logger  *slog.Logger
	// Workers bounds the attempts in flight at once. Defaults to WorkersDefault.
	Workers int
	// PerAccount bounds one account's attempts in flight. Defaults to PerAccountDefault; never more
	// than half of Workers, so that one account never holds every slot.
	PerAccount int
	// PerWebhook bounds one webhook's attempts in flight. Defaults to PerWebhookDefault.
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
	outcomes chan finished

	mu       sync.Mutex
	inflight *inflightCounts
	// served orders accounts and webhooks by when they last got a slot: the value of tick then.
	served map[string]uint64
	tick   uint64

	stopClaiming context.CancelFunc
	claimerDone  chan struct{}
	attempts     sync.WaitGroup
	writerDone   chan struct{}
}

// outcomeWriteTries bounds the retries of one outcome batch (about 30 s of backoff).
const outcomeWriteTries = 10

// servedMax bounds the served map: past it, it starts afresh (every webhook then counts as served
// long ago, which only reorders one round).
const servedMax = 1 << 16

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
	d.PerAccount = min(cmpOr(d.PerAccount, PerAccountDefault), max(1, d.Workers/2))
	d.PerWebhook = cmpOr(d.PerWebhook, PerWebhookDefault)
	d.BatchSize = cmpOr(d.BatchSize, BatchSizeDefault)
	d.PollInterval = cmpOr(d.PollInterval, PollIntervalDefault)
	d.Timeout = cmpOr(d.Timeout, TimeoutDefault)
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.wake = make(chan struct{}, 1)
	d.outcomes = make(chan finished, d.BatchSize)
	d.inflight = newInflightCounts()
	d.served = map[string]uint64{}
	d.claimerDone = make(chan struct{})
	d.writerDone = make(chan struct{})

	ctx, cancel := context.WithCancel(context.Background())
	d.stopClaiming = cancel
	go d.writeLoop()
	go d.claimLoop(ctx)
}

// Stop stops claiming, lets the attempts in flight finish (each within the delivery timeout), writes
// their outcomes and returns.
func (d *Dispatcher) Stop() {
	d.stopClaiming()
	<-d.claimerDone
	d.attempts.Wait()
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

// claimOnce shares the free slots between the webhooks with due deliveries, claims them and starts
// their attempts. It reports whether some webhook got all it was allotted (so more may be waiting).
func (d *Dispatcher) claimOnce(ctx context.Context) bool {
	d.mu.Lock()
	free := min(d.Workers-d.inflight.total, d.BatchSize)
	d.mu.Unlock()
	if free <= 0 || ctx.Err() != nil {
		return false
	}
	now := d.now()
	var claimed []*store.ClaimedDelivery
	var allotted map[string]int
	err := d.Store.Tx(ctx, func(tx store.Tx) error {
		claimed, allotted = nil, nil
		due, err := tx.DeliveryDueWebhooks(ctx, &store.DeliveryDueWebhooksParams{Now: now, Limit: dueWebhooksMax})
		if err != nil || len(due) == 0 {
			return err
		}
		d.mu.Lock()
		allotments := fairShare(due, min(d.Workers-d.inflight.total, d.BatchSize), d.PerAccount, d.PerWebhook, d.inflight, d.served)
		d.mu.Unlock()
		if len(allotments) == 0 {
			return nil
		}
		allotted = make(map[string]int, len(allotments))
		for _, a := range allotments {
			allotted[a.WebhookID] = a.Limit
		}
		claimed, err = tx.DeliveryClaimDue(ctx, &store.DeliveryClaimDueParams{
			Now: now, LeaseUntil: now.Add(d.Timeout + LeaseMargin), Allotments: allotments})
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.Error("claim deliveries", "err", err)
		}
		return false
	}
	got := map[string]int{}
	d.mu.Lock()
	if len(d.served) > servedMax {
		clear(d.served)
	}
	for _, c := range claimed {
		d.inflight.add(c.WebhookID, c.AccountID, 1)
		got[c.WebhookID]++
		d.tick++
		d.served[c.AccountID], d.served[c.WebhookID] = d.tick, d.tick
		d.attempts.Add(1)
		go d.attempt(c)
	}
	d.mu.Unlock()
	for id, n := range allotted {
		if got[id] == n {
			return true
		}
	}
	return false
}

// attempt sends c, queues its outcome for writing and frees its slot.
func (d *Dispatcher) attempt(c *store.ClaimedDelivery) {
	defer d.attempts.Done()
	res := d.Sender.Send(context.Background(), RequestFor(c))
	o := Outcome(c, res, d.Policy, d.now())
	d.outcomes <- finished{o, res.Duration}
	d.mu.Lock()
	d.inflight.add(c.WebhookID, c.AccountID, -1)
	d.mu.Unlock()
	d.Notify() // a slot is free: a claim can fill it
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
	attempts := make([]*webhook.Attempt, len(batch))
	for i, o := range batch {
		attempts[i] = o.Attempt
	}
	health := webhook.HealthChanges(attempts)
	backoff := 100 * time.Millisecond
	for try := 1; ; try++ {
		err := d.Store.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryComplete(ctx, batch, health) })
		if err == nil {
			if slices.ContainsFunc(batch, func(o *store.DeliveryOutcome) bool { return o.Probe }) {
				d.Notify() // a probe slot is free: its webhook's next delivery can go
			}
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
