package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// runKeys checks API keys (list, last use, revocation) and the count behind the webhook cap.
func runKeys(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	insertKey := func(t *testing.T, st store.Store, accountID string, at time.Time) (string, []byte) {
		t.Helper()
		_, hash := account.NewAPIKey()
		id := randid.New("key_")
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			return tx.APIKeyInsert(ctx, &store.APIKeyInsertParams{ID: id, AccountID: accountID, Hash: hash, CreatedAt: at})
		}))
		return id, hash
	}
	insertSession := func(t *testing.T, st store.Store, accountID, keyID string) []byte {
		t.Helper()
		h := sha256.Sum256([]byte(randid.Base62(32)))
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			return tx.SessionInsert(ctx, &store.ConsoleSession{IDHash: h[:], AccountID: accountID, APIKeyID: keyID,
				CSRFToken: randid.Base62(32), CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
		}))
		return h[:]
	}

	t.Run("ListTouchAndRevoke", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		var other *account.Account
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error {
			var err error
			other, err = tx.AccountGetOrCreate(ctx, "other-"+randid.Base62(6), base)
			return err
		}))
		first, firstHash := insertKey(t, st, acct.ID, base)
		second, _ := insertKey(t, st, acct.ID, base.Add(time.Second))
		insertKey(t, st, other.ID, base)

		keys, err := st.APIKeyList(ctx, acct.ID)
		require.NoError(t, err)
		require.Len(t, keys, 2, "another account's keys never show")
		require.Equal(t, []string{first, second}, []string{keys[0].ID, keys[1].ID}, "oldest first")
		require.True(t, keys[0].CreatedAt.Equal(base))
		require.True(t, keys[0].LastUsedAt.IsZero(), "never used")

		used := base.Add(time.Hour)
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.APIKeyTouch(ctx, first, used) }))
		k, err := st.APIKeyGetByHash(ctx, firstHash)
		require.NoError(t, err)
		require.True(t, k.LastUsedAt.Equal(used))

		mine := insertSession(t, st, acct.ID, first)
		kept := insertSession(t, st, acct.ID, second)
		require.NoError(t, st.Tx(ctx, func(tx store.Tx) error { return tx.APIKeyRevoke(ctx, first) }))
		_, err = st.APIKeyGetByHash(ctx, firstHash)
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "a revoked key no longer authenticates")
		_, err = st.SessionGet(ctx, mine)
		require.Equal(t, errs.NotFound, errs.CodeOf(err), "the sessions signed in with it end")
		_, err = st.SessionGet(ctx, kept)
		require.NoError(t, err, "sessions of other keys go on")
		keys, err = st.APIKeyList(ctx, acct.ID)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		err = st.Tx(ctx, func(tx store.Tx) error { return tx.APIKeyRevoke(ctx, first) })
		require.Equal(t, errs.NotFound, errs.CodeOf(err))
	})

	t.Run("WebhookCountForUpdateHoldsACapUnderConcurrentInserts", func(t *testing.T) {
		t.Parallel()
		st, acct := openWithAccount(t, open)
		const max, tries = 3, 12
		errFull := errors.New("full")
		var wg sync.WaitGroup
		results := make([]error, tries)
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = st.Tx(ctx, func(tx store.Tx) error {
					n, err := tx.WebhookCountForUpdate(ctx, acct.ID)
					if err != nil {
						return err
					}
					if n >= max {
						return errFull
					}
					return tx.WebhookInsert(ctx, &webhook.Webhook{ID: randid.New("wh_"), AccountID: acct.ID, Name: "n",
						URL: "https://x.test", Events: []string{webhook.ProposalCreated}, IsActive: true,
						Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base})
				})
			}()
		}
		wg.Wait()
		created := 0
		for _, err := range results {
			if err == nil {
				created++
			} else {
				require.ErrorIs(t, err, errFull)
			}
		}
		require.Equal(t, max, created)
		n, err := st.WebhookCount(ctx, acct.ID)
		require.NoError(t, err)
		require.Equal(t, max, n)
	})
}
