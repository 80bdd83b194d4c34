package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "quikly.db"), sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func TestOpenRefusesBadPaths(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing", "quikly.db"), sqlite.Options{})
	require.ErrorContains(t, err, "missing")
	_, err = sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
	require.Error(t, err)
}
