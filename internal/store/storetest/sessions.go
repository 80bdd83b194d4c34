package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
)

// runSessions checks the web UI session queries.
func runSessions(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	type bundle struct {
		st   store.Store
		acct *account.Account
	}
	setup := func(t *testing.T) *bundle {
		t.Helper()
		st, acct := openWithAccount(t, open)
		return &bundle{st: st, acct: acct}
	}
	hash := func() []byte {
		h := sha256.Sum256([]byte(randid.Base62(32)))
		return h[:]
	}
	insert := func(t *testing.T, b *bundle, expires time.Time) *store.ConsoleSession {
		t.Helper()
		s := &store.ConsoleSession{IDHash: hash(), AccountID: b.acct.ID, CSRFToken: randid.Base62(32),
			CreatedAt: base, ExpiresAt: expires}
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.SessionInsert(ctx, s) }))
		return s
	}
	deleteExpired := func(t *testing.T, b *bundle, now time.Time, limit int) int {
		t.Helper()
		var n int
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.SessionDeleteExpired(ctx, now, limit)
			return err
		}))
		return n
	}

	t.Run("InsertGetDelete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := insert(t, b, base.Add(12*time.Hour))

		got, err := b.st.SessionGet(ctx, s.IDHash)
		require.NoError(t, err)
		require.Equal(t, b.acct.ID, got.AccountID)
		require.Equal(t, b.acct.Name, got.AccountName, "the account's name comes with the session")
		require.Equal(t, s.CSRFToken, got.CSRFToken)
		require.True(t, got.CreatedAt.Equal(base))
		require.True(t, got.ExpiresAt.Equal(base.Add(12*time.Hour)))

		_, err = b.st.SessionGet(ctx, hash())
		require.Equal(t, errs.NotFound, errs.CodeOf(err))

		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.SessionDelete(ctx, s.IDHash) }))
		_, err = b.st.SessionGet(ctx, s.IDHash)
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
		require.NoError(t, b.st.Tx(ctx, func(tx store.Tx) error { return tx.SessionDelete(ctx, s.IDHash) }),
			"signing out twice is harmless")
	})

	t.Run("GetReturnsExpiredSessions", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The store has no clock: the use case decides what expired means.
		s := insert(t, b, base.Add(-time.Hour))
		got, err := b.st.SessionGet(ctx, s.IDHash)
		require.NoError(t, err)
		require.True(t, got.ExpiresAt.Equal(base.Add(-time.Hour)))
	})

	t.Run("DuplicateHashIsAnError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		s := insert(t, b, base.Add(time.Hour))
		dup := *s
		dup.CSRFToken = "other"
		err := b.st.Tx(ctx, func(tx store.Tx) error { return tx.SessionInsert(ctx, &dup) })
		require.Error(t, err)
		got, err := b.st.SessionGet(ctx, s.IDHash)
		require.NoError(t, err)
		require.Equal(t, s.CSRFToken, got.CSRFToken, "the first session is untouched")
	})

	t.Run("DeleteExpiredInBatches", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var expired []*store.ConsoleSession
		for i := range 3 {
			expired = append(expired, insert(t, b, base.Add(-time.Duration(i+1)*time.Minute)))
		}
		atNow := insert(t, b, base) // expiring exactly now counts as expired
		live := insert(t, b, base.Add(time.Minute))

		require.Equal(t, 2, deleteExpired(t, b, base, 2))
		require.Equal(t, 2, deleteExpired(t, b, base, 2))
		require.Equal(t, 0, deleteExpired(t, b, base, 2))
		for _, s := range append(expired, atNow) {
			_, err := b.st.SessionGet(ctx, s.IDHash)
			require.Equal(t, errs.NotFound, errs.CodeOf(err))
		}
		_, err := b.st.SessionGet(ctx, live.IDHash)
		require.NoError(t, err, "a live session stays")
	})
}
