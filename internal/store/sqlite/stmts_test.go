package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
)

// TestPragmasRunEachTime: a pragma run through a transaction's queries takes effect every time, not
// only the first. SQLite runs some pragmas (secure_delete, which WebhookSealSecrets switches on) when
// it compiles them: a kept statement would not switch it on again, and preparing it between groups
// would switch it at the wrong time.
func TestPragmasRunEachTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "quikly.db"), Options{})
	require.NoError(t, err)
	defer db.Close()
	for i := range 3 { // the writer prepares what it lacked between groups
		var on, off int
		require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
			q := tx.(*queries)
			// The values are read unprepared: SQLite compiles what the pragma is into the statement.
			if _, err := q.exec(ctx, `PRAGMA secure_delete = 1`); err != nil {
				return err
			}
			if err := q.db.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&on); err != nil {
				return err
			}
			if _, err := q.exec(ctx, `PRAGMA secure_delete = 0`); err != nil {
				return err
			}
			return q.db.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&off)
		}))
		require.Equal(t, []int{1, 0}, []int{on, off}, "transaction %d: switched on, then off", i)
	}
}
