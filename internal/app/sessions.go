package app

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
)

// SessionLifetime is how long a web console sign-in lasts. It is absolute, not sliding: after 12 hours
// (a working day) the person signs in again with their API key, so a session cookie left on a shared
// machine stops working by the next day.
const SessionLifetime = 12 * time.Hour

// sessionIDLen is the length in base62 characters of a session id: 43 × 5.95 ≈ 256 bits, far beyond
// guessing. The same length makes CSRF tokens.
const sessionIDLen = 43

// sessionPruneBatch bounds how many expired sessions one sign-in deletes, so the table stays small
// without a sign-in ever doing much work.
const sessionPruneBatch = 100

// Session is a signed-in web console visitor.
type Session struct {
	// ID is the session id in clear, the cookie's value. Only its SHA-256 is stored.
	ID      string
	Account *account.Account
	// CSRFToken must accompany every state-changing request of this session.
	CSRFToken string
	ExpiresAt time.Time
}

func hashSessionID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// errSignIn is the one answer to every failed sign-in: it does not say whether the key was malformed
// or unknown.
var errSignIn = errs.Errorf(errs.Unauthorized, "That API key is not valid.")

// SignIn checks an API key and opens a web console session for its account. The session expires
// after SessionLifetime. It answers errs.Unauthorized for a key that is not valid.
func (a *App) SignIn(ctx context.Context, apiKey string) (*Session, error) {
	// Pasted keys often carry a trailing newline or spaces; they are never part of a key.
	key, err := a.authenticateKey(ctx, strings.TrimSpace(apiKey))
	if errs.CodeOf(err) == errs.Unauthorized {
		return nil, errSignIn
	}
	if err != nil {
		return nil, err
	}
	acct := &account.Account{ID: key.AccountID, Name: key.AccountName}
	now := a.Now()
	s := &Session{ID: randid.Base62(sessionIDLen), Account: acct, CSRFToken: randid.Base62(sessionIDLen),
		ExpiresAt: now.Add(SessionLifetime)}
	err = a.Store.Tx(ctx, func(tx store.Tx) error {
		// Sign-ins are when sessions are made, so they are a natural moment to clear out expired ones.
		if _, err := tx.SessionDeleteExpired(ctx, now, sessionPruneBatch); err != nil {
			return err
		}
		return tx.SessionInsert(ctx, &store.ConsoleSession{IDHash: hashSessionID(s.ID), AccountID: acct.ID, APIKeyID: key.ID,
			CSRFToken: s.CSRFToken, CreatedAt: now, ExpiresAt: s.ExpiresAt})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SessionAccount returns the session of a session id with its account. A missing, unknown or expired
// session is errs.Unauthorized.
func (a *App) SessionAccount(ctx context.Context, sessionID string) (*Session, error) {
	unauthorized := errs.Errorf(errs.Unauthorized, "Your session has ended; sign in again.")
	if sessionID == "" || len(sessionID) > 128 {
		return nil, unauthorized
	}
	// The lookup is by hash through the primary key, so timing reveals nothing about stored ids.
	s, err := a.Store.SessionGet(ctx, hashSessionID(sessionID))
	if errs.CodeOf(err) == errs.NotFound {
		return nil, unauthorized
	}
	if err != nil {
		return nil, err
	}
	if !a.Now().Before(s.ExpiresAt) {
		return nil, unauthorized
	}
	return &Session{ID: sessionID, Account: &account.Account{ID: s.AccountID, Name: s.AccountName},
		CSRFToken: s.CSRFToken, ExpiresAt: s.ExpiresAt}, nil
}

// SignOut ends a session on the server, so its cookie stops working even if it was copied. Signing out
// of a session that does not exist is not an error.
func (a *App) SignOut(ctx context.Context, sessionID string) error {
	if sessionID == "" {
		return nil
	}
	return a.Store.Tx(ctx, func(tx store.Tx) error { return tx.SessionDelete(ctx, hashSessionID(sessionID)) })
}
