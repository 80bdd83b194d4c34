package sqlite

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

// TestCheckpointsRunBesideTheWriter: the log of a large commit reaches the database file by the
// checkpointer's hand, while the writer's own checkpoints wait until the log is far larger.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "quikly.db")
	db, err := Open(t.Context(), path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.checkpointed.Init() // before the first commit, so before the checkpointer's first run

	var autoPages int
	require.NoError(t, db.Tx(t.Context(), func(tx store.Tx) error {
		return tx.(*queries).tx.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&autoPages)
	}))
	require.Equal(t, writerCheckpointPages, autoPages)

	before, err := os.Stat(path)
	require.NoError(t, err)
	const size = 8 << 20 // 2,000 pages: twice SQLite's default checkpoint threshold
	require.NoError(t, db.Tx(t.Context(), func(tx store.Tx) error {
		q := tx.(*queries)
		if _, err := q.tx.ExecContext(t.Context(), "CREATE TABLE ballast (b BLOB)"); err != nil {
			return err
		}
		_, err := q.tx.ExecContext(t.Context(), "INSERT INTO ballast VALUES (randomblob(?))", size)
		return err
	}))
	for {
		select {
		case c := <-db.checkpointed.C():
			require.NoError(t, c.err)
			after, err := os.Stat(path)
			require.NoError(t, err)
			if after.Size()-before.Size() >= size {
				return // the ballast is in the database file
			}
			// An earlier checkpoint (of the migrations' log, say), or one the ballast's commit raced.
		case <-time.After(time.Minute):
			t.Fatal("no checkpoint copied the ballast into the database file")
		}
	}
}
