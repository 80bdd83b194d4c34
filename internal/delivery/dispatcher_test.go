package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/testsignal"
	"github.com/quikly/webhooks/internal/webhook"
)

// waitFor returns the next value of a test signal, failing the test if none comes within a generous
// hang guard (not a timing assertion).
func waitFor[T any](t *testing.T, s *testsignal.Signal[T], what string) T {
	t.Helper()
	select {
	case v := <-s.C():
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s signal", what)
		var zero T
		return zero
	}
}

// nextReq returns the receiver's next request, failing the test if none comes within a generous hang
// guard (not a timing assertion).
func nextReq(t *testing.T, rc *receiver) received {
	t.Helper()
	select {
	case r := <-rc.reqs:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("receiver: no request arrived")
		return received{}
	}
}

// faultStore is the real store with faults switched on by the test: failed or stalled outcome
// writes, failed claims. Each fault is a failing statement inside a real transaction, which rolls
// back as a database error would.
type faultStore struct {
	store.Store
	failCompletes  atomic.Int32 // DeliveryComplete fails this many more times
	stallCompletes atomic.Bool  // DeliveryComplete blocks until its context ends
	failClaims     atomic.Bool  // DeliveryDueWebhooks and DeliveryClaimDue fail while set
	// claims counts the calls of DeliveryClaimDue; the one numbered failClaim fails. mostAllotted
	// is the most webhooks one call was allotted.
	claims, failClaim, mostAllotted atomic.Int32
	// txs counts the transactions run through it, durable those not marked store.WithLeasesOnly.
	txs, durable atomic.Int32
	// walks, when set before the dispatcher starts, holds each look-up of every webhook with due
	// deliveries (a walk) until it is closed, after a send on walking; the first freeWalks go.
	walks, walking chan struct{}
	freeWalks      atomic.Int32
	// holdWalkClaim, when set before the dispatcher starts, holds the first walk's claim inside its
	// transaction, after it allotted its slots, until it is closed, after a send on walkClaiming.
	holdWalkClaim, walkClaiming chan struct{}
	walkClaimHeld               atomic.Bool
}

var errInjected = errors.New("injected database failure")

func (s *faultStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	s.txs.Add(1)
	if !store.LeasesOnly(ctx) {
		s.durable.Add(1)
	}
	return s.Store.Tx(ctx, func(tx store.Tx) error { return fn(&faultTx{Tx: tx, s: s}) })
}

type faultTx struct {
	store.Tx
	s *faultStore
}

func (tx *faultTx) DeliveryComplete(ctx context.Context, os []*store.DeliveryOutcome, health []*webhook.HealthChange) error {
	if tx.s.stallCompletes.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if tx.s.failCompletes.Add(-1) >= 0 {
		return errInjected
	}
	return tx.Tx.DeliveryComplete(ctx, os, health)
}

// DeliveryDueWebhooks is the claim's first step, a read before its transaction.
func (s *faultStore) DeliveryDueWebhooks(ctx context.Context, p *store.DeliveryDueWebhooksParams) ([]*store.DueWebhook, error) {
	if s.failClaims.Load() {
		return nil, errInjected
	}
	if s.walks != nil && len(p.WebhookIDs) == 0 && s.freeWalks.Add(-1) < 0 {
		select {
		case s.walking <- struct{}{}:
		default:
		}
		<-s.walks // past the claim's timeout too: a walk can take longer than the test
	}
	return s.Store.DeliveryDueWebhooks(ctx, p)
}

func (tx *faultTx) DeliveryClaimDue(ctx context.Context, p *store.DeliveryClaimDueParams) ([]*store.ClaimedDelivery, error) {
	if n := tx.s.claims.Add(1); tx.s.failClaims.Load() || n == tx.s.failClaim.Load() {
		return nil, errInjected
	}
	if tx.s.holdWalkClaim != nil && store.LowPriority(ctx) && tx.s.walkClaimHeld.CompareAndSwap(false, true) {
		tx.s.walkClaiming <- struct{}{}
		<-tx.s.holdWalkClaim
	}
	for n := int32(len(p.Allotments)); ; {
		if m := tx.s.mostAllotted.Load(); n <= m || tx.s.mostAllotted.CompareAndSwap(m, n) {
			break
		}
	}
	return tx.Tx.DeliveryClaimDue(ctx, p)
}

// fakeClock is a clock the test moves; it starts at the real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gate is a receiver's handler that holds every request until opened, counting the requests it holds
// at once.
type gate struct {
	open              chan struct{}
	once              sync.Once
	inflight, maxSeen atomic.Int64
}

// gate returns a new gate, released before the dispatcher stops at cleanup, so that a failing test
// never leaves a handler, and Stop, hanging.
func (b *dispatcherBundle) gate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release)
	b.gates = append(b.gates, g)
	return g
}

// firstThenGate returns a receiver that answers its first request at once and holds the others at g.
func firstThenGate(t *testing.T, g *gate) *receiver {
	var answered atomic.Bool
	return newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if !answered.CompareAndSwap(false, true) {
			g.handler(w, r)
		}
	})
}

// waitHolding waits until g holds n requests. A receiver's channel hears of a request before its
// handler runs, so a request just taken from the channel may not be counted yet.
func (g *gate) waitHolding(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return g.inflight.Load() == n }, 30*time.Second, time.Millisecond,
		"the gate holds %d requests", n)
}

// release lets every held request, and every later one, through.
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) handler(w http.ResponseWriter, r *http.Request) {
	n := g.inflight.Add(1)
	for m := g.maxSeen.Load(); n > m && !g.maxSeen.CompareAndSwap(m, n); m = g.maxSeen.Load() {
	}
	<-g.open
	g.inflight.Add(-1)
}

type dispatcherBundle struct {
	st        *faultStore
	accountID string
	clock     *fakeClock
	logs      *lockedBuffer
	gates     []*gate
}

// dispatcherSetup returns a bundle over a new SQLite database.
func dispatcherSetup(t *testing.T) *dispatcherBundle {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return bundleOn(t, db)
}

// bundleOn returns a bundle over st, with the account "acme".
func bundleOn(t *testing.T, st store.Store) *dispatcherBundle {
	t.Helper()
	b := &dispatcherBundle{st: &faultStore{Store: st}, clock: &fakeClock{now: time.Now()}, logs: &lockedBuffer{}}
	b.accountID = b.account(t, "acme")
	return b
}

// account creates the account name and returns its id.
func (b *dispatcherBundle) account(t *testing.T, name string) string {
	t.Helper()
	var id string
	require.NoError(t, b.st.Store.Tx(t.Context(), func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(t.Context(), name, b.clock.Now())
		if err == nil {
			id = acct.ID
		}
		return err
	}))
	return id
}

// webhook creates an active webhook of the bundle's account, subscribed to proposal.created, to url.
func (b *dispatcherBundle) webhook(t *testing.T, url string) string {
	t.Helper()
	return b.webhookOf(t, b.accountID, url)
}

// webhookOf is webhook for another account.
func (b *dispatcherBundle) webhookOf(t *testing.T, accountID, url string) string {
	t.Helper()
	now := b.clock.Now()
	w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: accountID, Name: "test", URL: url,
		Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
	require.NoError(t, b.st.Store.Tx(t.Context(), func(tx store.Tx) error { return tx.WebhookInsert(t.Context(), w) }))
	return w.ID
}

// publish publishes n proposal.created events to every subscribed webhook and returns the
// deliveries, in order.
func (b *dispatcherBundle) publish(t *testing.T, n int) []*webhook.Delivery {
	t.Helper()
	return b.publishTo(t, b.accountID, n)
}

// publishTo is publish for another account.
func (b *dispatcherBundle) publishTo(t *testing.T, accountID string, n int) []*webhook.Delivery {
	t.Helper()
	var all []*webhook.Delivery
	for i := range n {
		require.NoError(t, b.st.Store.Tx(t.Context(), func(tx store.Tx) error {
			_, ds, err := Publish(t.Context(), tx, nil, accountID, webhook.ProposalCreated, map[string]int{"i": i}, b.clock.Now())
			all = append(all, ds...)
			return err
		}))
	}
	return all
}

// dispatcher starts a dispatcher over the bundle's store with its test signals on, stopped at
// cleanup.
func (b *dispatcherBundle) dispatcher(t *testing.T, mod func(*DispatcherConfig)) *Dispatcher {
	t.Helper()
	cfg := &DispatcherConfig{Store: b.st, Sender: NewSender(SenderConfig{AllowPrivate: true}),
		Policy: RetryPolicy{Schedule: []time.Duration{time.Hour}}, Clock: b.clock,
		Logger: slog.New(slog.NewTextHandler(b.logs, nil)), PollInterval: 20 * time.Millisecond,
		OneWriter: true} // the bundle's store is SQLite
	if mod != nil {
		mod(cfg)
	}
	d, err := NewDispatcher(cfg)
	require.NoError(t, err)
	d.testSignals.Init()
	require.NoError(t, d.Start(t.Context()))
	t.Cleanup(func() {
		for _, g := range b.gates {
			g.release()
		}
		d.Stop()
	})
	return d
}

// delivery reads a delivery back from the store.
func (b *dispatcherBundle) delivery(t *testing.T, id string) *webhook.Delivery {
	t.Helper()
	d, err := b.st.DeliveryGet(t.Context(), b.accountID, id)
	require.NoError(t, err)
	return d
}

// lockedBuffer is a log sink safe for the dispatcher's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func claimedIDs(cs []*store.ClaimedDelivery) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestDispatcherConfig(t *testing.T) {
	t.Parallel()
	st := &faultStore{}
	sender := NewSender(SenderConfig{})

	t.Run("ZeroValueTakesDefaults", func(t *testing.T) {
		t.Parallel()
		c := (&DispatcherConfig{Store: st, Sender: sender}).WithDefaults()
		require.NoError(t, c.validate())
		require.Equal(t, WorkersDefault, c.Workers)
		require.Equal(t, PerWebhookDefault, c.PerWebhook)
		require.Equal(t, BatchSizeDefault, c.BatchSize)
		require.Equal(t, PollIntervalDefault, c.PollInterval)
		require.Equal(t, StoreTimeoutDefault, c.StoreTimeout)
		require.NotNil(t, c.Logger)
	})

	t.Run("OutOfRangeIsAnError", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			mod  func(*DispatcherConfig)
			want string
		}{
			{func(c *DispatcherConfig) { c.Workers = -1 }, "Workers must be at least 1"},
			{func(c *DispatcherConfig) { c.PerWebhook = -3 }, "PerWebhook must be at least 1"},
			{func(c *DispatcherConfig) { c.BatchSize = -1 }, "BatchSize must be at least 1"},
			{func(c *DispatcherConfig) { c.PollInterval = -time.Second }, "PollInterval must be positive"},
			{func(c *DispatcherConfig) { c.StoreTimeout = -time.Second }, "StoreTimeout must be positive"},
			{func(c *DispatcherConfig) { c.Store = nil }, "Store is required"},
			{func(c *DispatcherConfig) { c.Sender = nil }, "Sender is required"},
		} {
			cfg := &DispatcherConfig{Store: st, Sender: sender}
			tc.mod(cfg)
			_, err := NewDispatcher(cfg)
			require.ErrorContains(t, err, tc.want)
		}
	})

	t.Run("MaintainerOutOfRangeIsAnError", func(t *testing.T) {
		t.Parallel()
		_, err := NewMaintainer(&MaintainerConfig{Store: st, Retention: -time.Hour})
		require.ErrorContains(t, err, "Retention must be positive")
		_, err = NewMaintainer(&MaintainerConfig{Store: st, BatchSize: -1})
		require.ErrorContains(t, err, "BatchSize must be at least 1")
		_, err = NewMaintainer(&MaintainerConfig{})
		require.ErrorContains(t, err, "Store is required")
		m, err := NewMaintainer(&MaintainerConfig{Store: st})
		require.NoError(t, err)
		require.Equal(t, LogRetentionDefault, m.cfg.Retention)
	})

	t.Run("StartTwiceFailsStopTwiceIsHarmless", func(t *testing.T) {
		t.Parallel()
		b := dispatcherSetup(t)
		d := b.dispatcher(t, nil)
		require.ErrorContains(t, d.Start(t.Context()), "already started")
		d.Stop()
		d.Stop()
		never, err := NewDispatcher(&DispatcherConfig{Store: st, Sender: sender})
		require.NoError(t, err)
		never.Stop() // before Start: nothing to stop
	})
}

// TestDispatcherPerWebhookCap: a webhook never has more than PerWebhook attempts in flight, and while
// it is at its cap another webhook's deliveries still go through.
func TestDispatcherPerWebhookCap(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	hung := b.gate(t)
	hungRcv := newReceiver(t, hung.handler)
	healthy := newReceiver(t, nil)
	hungID := b.webhook(t, hungRcv.srv.URL)
	b.dispatcher(t, func(c *DispatcherConfig) { c.Workers, c.PerWebhook = 8, 2 })

	b.publish(t, 6) // to the hung webhook only
	nextReq(t, hungRcv)
	nextReq(t, hungRcv)
	b.webhook(t, healthy.srv.URL)
	ds := b.publish(t, 3) // each event goes to both webhooks now
	for range 3 {
		nextReq(t, healthy)
	}
	require.LessOrEqual(t, hung.inflight.Load(), int64(2), "the hung webhook holds its cap and no more")
	require.Empty(t, hungRcv.reqs, "no third attempt to the hung webhook started")
	for _, d := range ds {
		if d.WebhookID != hungID {
			waitDone(t, b, d.ID)
		}
	}

	hung.waitHolding(t, 2)
	hung.release()
	for range 9 - 2 {
		nextReq(t, hungRcv)
	}
	require.Equal(t, int64(2), hung.maxSeen.Load(), "never more than PerWebhook at once")
}

// waitDone waits until the delivery's outcome is written.
func waitDone(t *testing.T, b *dispatcherBundle, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.delivery(t, id).State != webhook.DeliverySucceeded {
		require.True(t, time.Now().Before(deadline), "delivery %s never succeeded", id)
		time.Sleep(5 * time.Millisecond) // polling the database for an outcome; not a timing assertion
	}
}

// TestDispatcherRetriesOutcomeWrites: an outcome write that fails is retried; the attempt is logged
// once and not sent again.
func TestDispatcherRetriesOutcomeWrites(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.webhook(t, rcv.srv.URL)
	b.st.failCompletes.Store(2)
	d := b.dispatcher(t, nil)
	ds := b.publish(t, 1)

	require.ErrorIs(t, waitFor(t, &d.testSignals.OutcomeWriteFailed, "outcome write failed"), errInjected)
	require.ErrorIs(t, waitFor(t, &d.testSignals.OutcomeWriteFailed, "outcome write failed"), errInjected)
	written := waitFor(t, &d.testSignals.OutcomesWritten, "outcomes written")
	require.Len(t, written, 1)
	require.Equal(t, ds[0].ID, written[0].Attempt.DeliveryID)

	got := b.delivery(t, ds[0].ID)
	require.Equal(t, webhook.DeliverySucceeded, got.State)
	require.Equal(t, 1, got.Attempts, "one attempt logged")
	require.Len(t, rcv.reqs, 1, "sent once: the retried write did not re-send")
	require.Contains(t, b.logs.String(), "write delivery outcomes; retrying")
}

// TestDispatcherStopWithAttemptsInFlight: Stop claims nothing more, waits for the attempt in flight
// and writes its outcome before it returns; what it never claimed stays pending, unleased, for the
// next process.
func TestDispatcherStopWithAttemptsInFlight(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	g := b.gate(t)
	rcv := newReceiver(t, g.handler)
	b.webhook(t, rcv.srv.URL)
	ds := b.publish(t, 3)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.Workers, c.PerWebhook = 4, 1 })
	require.Equal(t, []string{ds[0].ID}, claimedIDs(waitFor(t, &d.testSignals.Claimed, "claimed")),
		"the cap allots one (a webhook that has not answered yet gets none claimed ahead)")
	nextReq(t, rcv)

	stopReleasing(t, d, g)
	written := waitFor(t, &d.testSignals.OutcomesWritten, "outcomes written")
	require.Equal(t, ds[0].ID, written[0].Attempt.DeliveryID)
	require.Equal(t, webhook.DeliverySucceeded, b.delivery(t, ds[0].ID).State, "the in-flight attempt's outcome was written before Stop returned")
	for _, dl := range ds[1:] {
		got := b.delivery(t, dl.ID)
		require.Equal(t, webhook.DeliveryPending, got.State)
		require.True(t, got.LockedUntil.IsZero(), "never claimed: another process may take it now")
	}
	require.Empty(t, rcv.reqs, "nothing was sent after Stop began")
}

// stopReleasing stops d while an attempt waits at g: once Stop has begun, g lets it finish.
func stopReleasing(t *testing.T, d *Dispatcher, g *gate) {
	t.Helper()
	stopped := make(chan struct{})
	go func() { d.Stop(); close(stopped) }()
	waitFor(t, &d.testSignals.Stopping, "stop began")
	g.release()
	<-stopped
}

// TestDispatcherGivesBackClaimedAheadAtStop: a webhook that answers gets deliveries claimed ahead of
// its slots; Stop sends none of them and gives them back, unleased, so another process takes them now
// rather than when their leases end.
func TestDispatcherGivesBackClaimedAheadAtStop(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	g := b.gate(t)
	rcv := firstThenGate(t, g)
	b.webhook(t, rcv.srv.URL)
	first := b.publish(t, 1)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.Workers, c.PerWebhook = 4, 1 })
	nextReq(t, rcv)
	waitDone(t, b, first[0].ID)

	ds := b.publish(t, 3)
	for {
		if ids := claimedIDs(waitFor(t, &d.testSignals.Claimed, "claimed")); slices.Contains(ids, ds[0].ID) {
			require.Equal(t, []string{ds[0].ID, ds[1].ID}, ids, "one slot, and one claimed ahead")
			break
		}
	}
	nextReq(t, rcv)
	stopReleasing(t, d, g)
	require.Equal(t, webhook.DeliverySucceeded, b.delivery(t, ds[0].ID).State)
	for _, dl := range ds[1:] {
		got := b.delivery(t, dl.ID)
		require.Equal(t, webhook.DeliveryPending, got.State)
		require.True(t, got.LockedUntil.IsZero(), "given back (or never claimed): another process may take it now")
	}
	require.Empty(t, rcv.reqs, "the delivery claimed ahead was not sent after Stop began")
}

// TestDispatcherOutcomeWriteHasATimeLimit: an outcome write that hangs (a stalled connection) ends
// at StoreTimeout and is retried; once the database answers, the outcome is written.
func TestDispatcherOutcomeWriteHasATimeLimit(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.webhook(t, rcv.srv.URL)
	b.st.stallCompletes.Store(true)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.StoreTimeout = 100 * time.Millisecond })
	ds := b.publish(t, 1)
	require.ErrorIs(t, waitFor(t, &d.testSignals.OutcomeWriteFailed, "outcome write failed"), context.DeadlineExceeded,
		"the stalled write ended at its time limit")
	b.st.stallCompletes.Store(false)
	written := waitFor(t, &d.testSignals.OutcomesWritten, "outcomes written")
	require.Equal(t, ds[0].ID, written[0].Attempt.DeliveryID)
	require.Equal(t, webhook.DeliverySucceeded, b.delivery(t, ds[0].ID).State)
}

// TestDispatcherStopCutsOutcomeRetriesShort: while outcome writes keep failing, Stop waits
// StoreTimeout for them and then ends the backoff at once: no further try after it gave up, instead
// of sleeping through the rest of the backoff series (which would block a shutdown for half a minute).
func TestDispatcherStopCutsOutcomeRetriesShort(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.webhook(t, rcv.srv.URL)
	b.st.failCompletes.Store(1 << 20)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.StoreTimeout = 50 * time.Millisecond })
	b.publish(t, 1)
	// After the sixth failure the writer backs off for 3.2 s, far longer than Stop's 50 ms grace.
	for range 6 {
		// Injected, or a claim holding the writer past the short StoreTimeout: a failure either way.
		require.Error(t, waitFor(t, &d.testSignals.OutcomeWriteFailed, "outcome write failed"))
	}
	d.Stop()
	require.Empty(t, d.testSignals.OutcomeWriteFailed.C(), "no try after Stop gave up waiting")
	require.Contains(t, b.logs.String(), "giving up at shutdown")
}

// TestDispatcherLogsAnOutageOnce: claims failing through a database outage log one error, and one
// line when claims work again, however many polls fail in between.
func TestDispatcherLogsAnOutageOnce(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.webhook(t, rcv.srv.URL)
	b.st.failClaims.Store(true)
	d := b.dispatcher(t, nil)
	for range 5 {
		waitFor(t, &d.testSignals.ClaimFailed, "claim failed")
	}
	b.st.failClaims.Store(false)
	b.publish(t, 1)
	nextReq(t, rcv)

	logs := b.logs.String()
	require.Equal(t, 1, strings.Count(logs, "claim deliveries failed"), "logs:\n%s", logs)
	require.Equal(t, 1, strings.Count(logs, "claim deliveries recovered"), "logs:\n%s", logs)

	// A second outage is logged again.
	b.st.failClaims.Store(true)
	for range 3 {
		waitFor(t, &d.testSignals.ClaimFailed, "claim failed")
	}
	b.st.failClaims.Store(false)
	b.publish(t, 1)
	nextReq(t, rcv)
	require.Equal(t, 2, strings.Count(b.logs.String(), "claim deliveries failed"))
}

// TestMaintainerStartStop: the maintainer runs at Start, signals each run, and Stop ends it.
func TestMaintainerStartStop(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	m, err := NewMaintainer(&MaintainerConfig{Store: b.st, Clock: b.clock, Interval: time.Hour})
	require.NoError(t, err)
	m.TestSignals.Init()
	require.NoError(t, m.Start(t.Context()))
	require.ErrorContains(t, m.Start(t.Context()), "already started")
	require.NoError(t, waitFor(t, &m.TestSignals.Swept, "swept"))
	m.Stop()
	m.Stop()
}

// answeringHere waits until the dispatcher counts webhookID as answering (its attempt has ended
// and succeeded), failing the test if it never does within a generous hang guard.
func answeringHere(t *testing.T, d *Dispatcher, webhookID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.mu.Lock()
		ok := d.answering[webhookID]
		d.mu.Unlock()
		if ok {
			return
		}
		require.True(t, time.Now().Before(deadline), "webhook %s never counted as answering", webhookID)
		time.Sleep(5 * time.Millisecond) // polling the dispatcher's state; not a timing assertion
	}
}

// TestDispatcherPacesWebhooksThatDoNotAnswer: beyond unansweredUnpaced attempts in flight to webhooks
// that have not answered, more start no faster than UnansweredRate (on the dispatcher's clock, here
// held still), while a webhook that answers gets every delivery at once.
func TestDispatcherPacesWebhooksThatDoNotAnswer(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	hung := b.gate(t)
	hungRcv := newReceiver(t, hung.handler)
	healthy := newReceiver(t, nil)
	healthyID := b.webhook(t, healthy.srv.URL)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.UnansweredRate = 8 }) // bursts of 2
	b.publish(t, 1)
	nextReq(t, healthy) // new: one of the unpaced
	answeringHere(t, d, healthyID)

	for range unansweredUnpaced + 10 {
		b.webhook(t, hungRcv.srv.URL)
	}
	for round := range 2 {
		b.publish(t, 3) // to the healthy webhook and every one that hangs
		for range 3 {
			nextReq(t, healthy)
		}
		if round == 0 {
			for range unansweredUnpaced + 2 { // the unpaced, then a burst
				nextReq(t, hungRcv)
			}
		}
		require.Empty(t, hungRcv.reqs, "the clock stands still: no token, no other attempt to a webhook that does not answer")
	}

	b.clock.Add(time.Second) // 8 tokens, of which a burst of 2 are kept
	nextReq(t, hungRcv)
	nextReq(t, hungRcv)
	b.publish(t, 1)
	nextReq(t, healthy)
	require.Empty(t, hungRcv.reqs, "no more than the burst")
}

// TestDispatcherNotifyNamesWebhooks: a Notify that names webhooks (a publish in this process) makes
// the next claim look at those alone; one that names none looks at every webhook.
func TestDispatcherNotifyNamesWebhooks(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.st.failClaims.Store(true) // the claim at start finds nothing to do, whenever it runs
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.PollInterval = time.Hour })
	waitFor(t, &d.testSignals.ClaimFailed, "claim failed")
	b.st.failClaims.Store(false)
	a := b.webhook(t, rcv.srv.URL)
	b.webhook(t, rcv.srv.URL)
	ds := b.publish(t, 1) // due to both; nobody told the dispatcher yet
	var toA, toOther string
	for _, dl := range ds {
		if dl.WebhookID == a {
			toA = dl.ID
		} else {
			toOther = dl.ID
		}
	}
	d.Notify(a)
	require.Equal(t, []string{toA}, claimedIDs(waitFor(t, &d.testSignals.Claimed, "claimed")), "the named webhook's alone")
	nextReq(t, rcv)
	d.Notify()
	require.Equal(t, []string{toOther}, claimedIDs(waitFor(t, &d.testSignals.Claimed, "claimed")), "every webhook's")
	nextReq(t, rcv)
}

// TestNamedClaimsDoNotWaitForAWalk: while a walk of every webhook is held in the database, a
// publish's named webhook is claimed and attempted.
func TestNamedClaimsDoNotWaitForAWalk(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	a := b.webhook(t, rcv.srv.URL)
	b.st.walks, b.st.walking = make(chan struct{}), make(chan struct{}, 1)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.PollInterval = time.Hour })
	t.Cleanup(func() { close(b.st.walks) }) // before the dispatcher's Stop
	<-b.st.walking                          // the walk at start
	ds := b.publish(t, 1)
	d.Notify(a)
	require.Equal(t, ds[0].EventID, nextReq(t, rcv).header.Get("webhook-id"), "the event, sent while the walk is held")
}

// TestClaimsTakeFewWebhooksPerTransaction: with OneWriter, a claim allotted more than
// claimWebhooksMax webhooks takes them in several transactions, and every delivery goes.
func TestClaimsTakeFewWebhooksPerTransaction(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	for range 2*claimWebhooksMax + 1 {
		b.webhook(t, rcv.srv.URL)
	}
	b.publish(t, 1)
	b.dispatcher(t, nil)
	for range 2*claimWebhooksMax + 1 {
		nextReq(t, rcv)
	}
	require.EqualValues(t, claimWebhooksMax, b.st.mostAllotted.Load())
}

// TestClaimKeepsWhatItTookBeforeAFailure: when a claim's second transaction fails, the deliveries
// its first one leased are attempted now, not once their leases end (the clock stands still here).
func TestClaimKeepsWhatItTookBeforeAFailure(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	for range claimWebhooksMax + 1 {
		b.webhook(t, rcv.srv.URL)
	}
	b.publish(t, 1)
	b.st.failClaim.Store(2)
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.PollInterval = time.Hour })
	for range claimWebhooksMax {
		nextReq(t, rcv)
	}
	require.Contains(t, b.logs.String(), errInjected.Error(), "the failure is logged")
	d.Notify()
	nextReq(t, rcv) // the one the failed transaction was to take
}

// TestFailedWebhooksWaitForAWalk: once an attempt fails, its webhook's next deliveries are paced
// like every webhook that does not answer, so they are left to the walk: they don't join the
// claims of webhooks named for new events.
func TestFailedWebhooksWaitForAWalk(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	b.webhook(t, failing.srv.URL)
	b.publish(t, 2)
	healthy := newReceiver(t, nil)
	h := b.webhook(t, healthy.srv.URL)
	b.st.walks, b.st.walking = make(chan struct{}), make(chan struct{}, 1)
	b.st.freeWalks.Store(1) // the walk at start claims the failing webhook's first delivery
	releaseWalks := sync.OnceFunc(func() { close(b.st.walks) })
	d := b.dispatcher(t, func(c *DispatcherConfig) { c.PollInterval, c.PerWebhook = time.Hour, 1 })
	t.Cleanup(releaseWalks) // before the dispatcher's Stop
	nextReq(t, failing)
	<-b.st.walking // the next walk, held
	ds := b.publish(t, 1)
	d.Notify(h)
	require.Equal(t, ds[len(ds)-1].EventID, nextReq(t, healthy).header.Get("webhook-id"))
	require.Zero(t, len(failing.reqs), "the failing webhook's next delivery waits for the walk")
	releaseWalks()
	nextReq(t, failing)
}

// TestClaimLoopsTogetherStayWithinWorkers: the two claim loops may claim at once (on PostgreSQL
// their transactions run side by side). The slots one allots are held until it knows what it got,
// so the other never hands them out too, and the attempts in flight never pass Workers.
func TestClaimLoopsTogetherStayWithinWorkers(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	b := bundleOn(t, db)
	g := b.gate(t)
	rcv := newReceiver(t, g.handler)
	b.webhook(t, rcv.srv.URL)
	b.publish(t, 5)
	b.st.holdWalkClaim, b.st.walkClaiming = make(chan struct{}), make(chan struct{}, 1)
	releaseWalk := sync.OnceFunc(func() { close(b.st.holdWalkClaim) })
	const workers = 4 // and so 2 per account
	d := b.dispatcher(t, func(c *DispatcherConfig) {
		c.Workers, c.PollInterval, c.OneWriter = workers, time.Hour, false
	})
	t.Cleanup(releaseWalk) // before the dispatcher's Stop
	<-b.st.walkClaiming    // the walk at start, inside its claim, holds acme's 2 slots

	// Two other accounts' webhooks get deliveries and are named: either could take 2 slots.
	var named []string
	for _, name := range []string{"globex", "initech"} {
		acct := b.account(t, name)
		named = append(named, b.webhookOf(t, acct, rcv.srv.URL))
		b.publishTo(t, acct, 5)
	}
	d.Notify(named...)
	require.Len(t, waitFor(t, &d.testSignals.Claimed, "named claim"), workers-2, "the slots the walk does not hold")
	releaseWalk()
	require.Len(t, waitFor(t, &d.testSignals.Claimed, "walk's claim"), 2)
	for range workers {
		nextReq(t, rcv)
	}
	g.waitHolding(t, workers)
	require.EqualValues(t, workers, g.maxSeen.Load(), "never more than Workers at once")
}

// TestDispatcherWritesLeasesOnly: every transaction of the dispatcher (claims, outcome writes) is
// marked store.WithLeasesOnly, so that a driver may commit it without waiting for the disk.
func TestDispatcherWritesLeasesOnly(t *testing.T) {
	t.Parallel()
	b := dispatcherSetup(t)
	rcv := newReceiver(t, nil)
	b.webhook(t, rcv.srv.URL)
	d := b.dispatcher(t, nil)
	ds := b.publish(t, 2)
	d.Notify()
	for _, dl := range ds {
		nextReq(t, rcv)
		waitDone(t, b, dl.ID)
	}
	d.Stop()
	require.Positive(t, b.st.txs.Load())
	require.Zero(t, b.st.durable.Load(), "no transaction of the dispatcher asked for a durable commit")
}

// TestFanOutToNewWebhooksGoesOnPastThePace: attempts to webhooks that have not answered yet are
// paced once unansweredUnpaced of them are in flight; each of those that ends makes room for the
// next without the pace, so a fan-out to many new webhooks goes on as they answer. Here the pace's
// next token is 1000 s away and no poll comes: only the attempts that end wake the walk that claims
// the rest. On both databases.
func TestFanOutToNewWebhooksGoesOnPastThePace(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fanOutPastThePace(t, dispatcherSetup(t), true)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{MaxConns: 4})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		fanOutPastThePace(t, bundleOn(t, db), false)
	})
}

func fanOutPastThePace(t *testing.T, b *dispatcherBundle, oneWriter bool) {
	const hooks = 2 * unansweredUnpaced
	// Each webhook has a path of its own. The handler reports it: the receiver's own channel hears
	// of a request before the handler runs.
	paths := make(chan string, 2*hooks)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { paths <- r.URL.Path })
	for i := range hooks {
		b.webhook(t, fmt.Sprintf("%s/%d", rcv.srv.URL, i))
	}
	b.publish(t, 1)
	b.dispatcher(t, func(c *DispatcherConfig) {
		c.PollInterval, c.UnansweredRate, c.OneWriter = time.Hour, 0.001, oneWriter
	})
	seen := map[string]int{}
	for range hooks {
		select {
		case p := <-paths:
			seen[p]++
			require.Equal(t, 1, seen[p], "%s: its event arrived twice", p)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d webhooks got their event; no other arrived in 30 s", len(seen), hooks)
		}
	}
}
