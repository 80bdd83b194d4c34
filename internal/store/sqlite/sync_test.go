package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

// TestLeaseWritesDoNotWaitForTheDisk: a transaction marked store.WithLeasesOnly commits at
// synchronous NORMAL (no flush of its own), every other one at FULL.
func TestLeaseWritesDoNotWaitForTheDisk(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	level := func(ctx context.Context) int {
		var v int
		require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
			// Not through the statement cache: SQLite reads this pragma when it prepares it.
			return tx.(*queries).tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v)
		}))
		return v
	}
	const normal, full = 1, 2
	require.Equal(t, full, level(t.Context()), "any transaction")
	require.Equal(t, normal, level(store.WithLeasesOnly(t.Context())), "a claim, a release or an outcome write")
	require.Equal(t, full, level(t.Context()), "and back")
}

// writeOrder records the order in which transactions run on the writer.
type writeOrder struct {
	db    *DB
	mu    sync.Mutex
	order []string
}

// run starts a transaction with ctx that calls inside, then records name; it returns the
// transaction's outcome.
func (w *writeOrder) run(ctx context.Context, name string, inside func()) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- w.db.Tx(ctx, func(store.Tx) error {
			inside()
			w.mu.Lock()
			w.order = append(w.order, name)
			w.mu.Unlock()
			return nil
		})
	}()
	return done
}

// queued waits until n requests wait in the writer's queue.
func (w *writeOrder) queued(n int) {
	for len(w.db.reqs) < n {
		runtime.Gosched()
	}
}

// hold starts a transaction with ctx that holds the writer until the returned release is called.
func (w *writeOrder) hold(ctx context.Context, name string) (done <-chan error, release func()) {
	started, held := make(chan struct{}), make(chan struct{})
	done = w.run(ctx, name, func() { close(started); <-held })
	<-started
	return done, func() { close(held) }
}

// TestWriterTakesTurnsBetweenKinds: a group commits requests of one kind, and when both kinds
// wait, the kind that did not commit last goes first, whatever the order they came in.
func TestWriterTakesTurnsBetweenKinds(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	leases := store.WithLeasesOnly(t.Context())
	for _, tc := range []struct {
		name         string
		first, other context.Context // the kind of the request that holds the writer, and the other kind
	}{
		{"a durable write waits for one group of leases", leases, t.Context()},
		{"leases wait for one durable group", t.Context(), leases},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &writeOrder{db: db}
			holder, release := w.hold(tc.first, "holder")
			same := w.run(tc.first, "same kind", func() {})
			w.queued(1)
			other := w.run(tc.other, "other kind", func() {})
			w.queued(2)
			release()
			for _, done := range []<-chan error{holder, same, other} {
				require.NoError(t, <-done)
			}
			require.Equal(t, []string{"holder", "other kind", "same kind"}, w.order)
		})
	}
}

// TestLowPriorityWritesStepAside: in a group of leases, the requests marked store.WithLowPriority
// run after the others, and a request that is not low priority coming in while one runs commits
// before the next: the writes nobody waits on never hold up an API's write or a claim for more
// than one of them.
func TestLowPriorityWritesStepAside(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	leases := store.WithLeasesOnly(t.Context())
	low := store.WithLowPriority(leases)
	w := &writeOrder{db: db}
	holder, release := w.hold(leases, "holder")
	started, held := make(chan struct{}), make(chan struct{})
	low1 := w.run(low, "low 1", func() { close(started); <-held })
	w.queued(1)
	low2 := w.run(low, "low 2", func() {})
	w.queued(2)
	claim := w.run(leases, "claim", func() {})
	w.queued(3)
	release() // the next group: the claim, then the low-priority ones
	<-started
	create := w.run(t.Context(), "create", func() {})
	w.queued(1)
	close(held)
	for _, done := range []<-chan error{holder, low1, low2, claim, create} {
		require.NoError(t, <-done)
	}
	require.Equal(t, []string{"holder", "claim", "low 1", "create", "low 2"}, w.order)
}

// TestLowPriorityWritesAreNotStarved: every group of leases runs one low-priority request, even
// when other requests keep coming in.
func TestLowPriorityWritesAreNotStarved(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	leases := store.WithLeasesOnly(t.Context())
	w := &writeOrder{db: db}
	holder, release := w.hold(leases, "holder")
	started, held := make(chan struct{}), make(chan struct{})
	claim := w.run(leases, "claim", func() { close(started); <-held })
	w.queued(1)
	low := w.run(store.WithLowPriority(leases), "low", func() {})
	w.queued(2)
	release() // the next group: the claim, then the low-priority write
	<-started
	create := w.run(t.Context(), "create", func() {})
	w.queued(1)
	close(held)
	for _, done := range []<-chan error{holder, claim, low, create} {
		require.NoError(t, <-done)
	}
	require.Equal(t, []string{"holder", "claim", "low", "create"}, w.order)
}
