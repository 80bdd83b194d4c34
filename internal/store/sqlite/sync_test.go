package sqlite

import (
	"context"
	"path/filepath"
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
