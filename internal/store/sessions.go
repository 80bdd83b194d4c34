package store

import (
	"context"
	"time"
)

// ConsoleSession is a web console sign-in as the store keeps it (app.Session is the signed-in
// visitor). The cookie holds a random session id; only its SHA-256 (IDHash) is stored, so a leaked database does not let anyone take over a session.
type ConsoleSession struct {
	IDHash    []byte
	AccountID string
	// APIKeyID is the key that signed in; revoking it ends the session.
	APIKeyID string
	// AccountName is filled in by SessionGet from the account; SessionInsert ignores it.
	AccountName string
	// CSRFToken is the per-session token that every state-changing console form must carry.
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionReader reads web UI sessions.
type SessionReader interface {
	// SessionGet returns the session whose id hashes to idHash, expired or not (the caller judges
	// expiry against its own clock), or errs.ErrNotFound.
	SessionGet(ctx context.Context, idHash []byte) (*ConsoleSession, error)
}

// SessionWriter writes web UI sessions.
type SessionWriter interface {
	// SessionInsert stores a new session; an IDHash that already exists is an error.
	SessionInsert(ctx context.Context, s *ConsoleSession) error
	// SessionDelete deletes the session whose id hashes to idHash. Deleting a session that does not
	// exist is not an error, so signing out twice is harmless.
	SessionDelete(ctx context.Context, idHash []byte) error
	// SessionDeleteExpired deletes up to limit sessions that expired at or before now and returns how
	// many it deleted; callers loop while it returns limit.
	SessionDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
}
