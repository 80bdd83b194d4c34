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
			var mu sync.Mutex
			var order []string
			run := func(ctx context.Context, name string, inside func()) <-chan error {
				done := make(chan error, 1)
				go func() {
					done <- db.Tx(ctx, func(store.Tx) error {
						inside()
						mu.Lock()
						order = append(order, name)
						mu.Unlock()
						return nil
					})
				}()
				return done
			}
			// queued waits until n requests wait in the writer's queue.
			queued := func(n int) {
				for len(db.reqs) < n {
					runtime.Gosched()
				}
			}
			started, hold := make(chan struct{}), make(chan struct{})
			holder := run(tc.first, "holder", func() { close(started); <-hold })
			<-started
			same := run(tc.first, "same kind", func() {})
			queued(1)
			other := run(tc.other, "other kind", func() {})
			queued(2)
			close(hold)
			for _, done := range []<-chan error{holder, same, other} {
				require.NoError(t, <-done)
			}
			require.Equal(t, []string{"holder", "other kind", "same kind"}, order)
		})
	}
}
