// Package app holds the use cases: each validates its input, opens one transaction, changes domain
// state through the store and publishes the resulting events. The API, the web UI and the share page
// all call it, so they behave alike.
package app

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
)

// App is the set of use cases over one store. Safe for concurrent use.
type App struct {
	Store store.Store
	// Tester sends test events synchronously (TestWebhook).
	Tester *delivery.Tester
	// BaseURL builds share links, e.g. "http://localhost:8080".
	BaseURL string
	// AllowPrivateTargets accepts http:// URLs and private addresses (development and tests).
	AllowPrivateTargets bool
	// Notify, when set, is called after a transaction that made deliveries due commits, to wake
	// the dispatcher: with the webhooks a publish gave deliveries, or with none to look at all.
	Notify func(webhookIDs ...string)
	// Handoff, when set, returns a delivery.Handoff for each transaction that publishes, so that
	// this process's dispatcher attempts what it can at once, without a claim.
	Handoff func() *delivery.Handoff
	// Clock is the time of every change; nil means the real clock.
	Clock clock.Clock
	// LogRetention is how long logs and events are kept (recover cannot reach further back); zero
	// means delivery.LogRetentionDefault.
	LogRetention time.Duration
	// MaxWebhooks caps the webhooks of one account. Defaults to MaxWebhooksDefault; -1 means no cap.
	MaxWebhooks int
}

func (a *App) notify(webhookIDs ...string) {
	if a.Notify != nil {
		a.Notify(webhookIDs...)
	}
}

// Now returns the time of a.Clock, in UTC.
func (a *App) Now() time.Time {
	return clock.Now(a.Clock).UTC()
}

// Page is one page of a list, newest first, and the cursor of the next page ("" when last).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// List limits of SPEC §4.
const (
	ListLimitDefault = 50
	ListLimitMax     = 200
)

// cursorPrefix versions cursors so their format can change without misreading old ones.
const cursorPrefix = "c1:"

// listParams turns a page request into store params, asking for one extra item to learn whether
// another page follows.
func listParams(accountID string, limit int, cursor string) (*store.ListParams, error) {
	if limit == 0 {
		limit = ListLimitDefault
	}
	if limit < 1 || limit > ListLimitMax {
		return nil, errs.Field("limit", "must be between 1 and 200")
	}
	p := &store.ListParams{AccountID: accountID, Limit: limit + 1}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		after, ok := strings.CutPrefix(string(raw), cursorPrefix)
		if err != nil || !ok || !idText(after) {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		p.After = after
	}
	return p, nil
}

// idText reports whether s could be an id of ours (prefix_base62 or a UUID), so that a forged cursor
// never takes other bytes to the store (PostgreSQL refuses NUL and invalid UTF-8 with an error).
func idText(s string) bool {
	if len(s) < 1 || len(s) > 100 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// page cuts the extra item off and makes the next cursor from the last item kept.
func page[T any](items []T, limit int, id func(T) string) *Page[T] {
	if limit == 0 {
		limit = ListLimitDefault
	}
	p := &Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id(p.Items[limit-1])))
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// MaxWebhooksDefault is the default of App.MaxWebhooks (SPEC §15).
const MaxWebhooksDefault = 100

// apiKeyTouchEvery is how stale an API key's last-used time may get: authenticating writes it at
// most this often per key, so a busy key costs one write a minute, not one per request.
const apiKeyTouchEvery = time.Minute

// CreateAPIKey creates the account if needed and returns a new API key for it, in clear, once.
func (a *App) CreateAPIKey(ctx context.Context, accountName string) (string, error) {
	accountName = strings.TrimSpace(accountName)
	if accountName == "" || len(accountName) > 200 {
		return "", errs.Field("account", "must be 1 to 200 characters")
	}
	key, hash := account.NewAPIKey()
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(ctx, accountName, a.Now())
		if err != nil {
			return err
		}
		return tx.APIKeyInsert(ctx, &store.APIKeyInsertParams{ID: randid.New("key_"), AccountID: acct.ID,
			Hash: hash, CreatedAt: a.Now()})
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Authenticate returns the account of an API key, or errs.Unauthorized (also for a revoked key).
func (a *App) Authenticate(ctx context.Context, key string) (*account.Account, error) {
	k, err := a.authenticateKey(ctx, key)
	if err != nil {
		return nil, err
	}
	return &account.Account{ID: k.AccountID, Name: k.AccountName}, nil
}

// authenticateKey returns the stored key of an API key, or errs.Unauthorized, and notes its use.
func (a *App) authenticateKey(ctx context.Context, key string) (*store.APIKey, error) {
	unauthorized := errs.Errorf(errs.Unauthorized, "A valid API key is required in the X-API-Key header.")
	if !account.LooksLikeAPIKey(key) {
		return nil, unauthorized
	}
	// The lookup is by hash through a unique index: the database never compares the secret itself,
	// so timing reveals nothing about stored keys.
	k, err := a.Store.APIKeyGetByHash(ctx, account.HashAPIKey(key))
	if errs.CodeOf(err) == errs.NotFound {
		return nil, unauthorized
	}
	if err != nil {
		return nil, err
	}
	if now := a.Now(); now.Sub(k.LastUsedAt) >= apiKeyTouchEvery {
		// Best effort: a failed note of use must not fail the request it authenticates.
		_ = a.Store.Tx(ctx, func(tx store.Tx) error { return tx.APIKeyTouch(ctx, k.ID, now) })
	}
	return k, nil
}

// ListAPIKeys returns the live API keys of the account named accountName, oldest first (never the
// keys themselves: only their hashes are stored).
func (a *App) ListAPIKeys(ctx context.Context, accountName string) ([]*store.APIKey, error) {
	acct, err := a.Store.AccountGetByName(ctx, strings.TrimSpace(accountName))
	if errs.CodeOf(err) == errs.NotFound {
		return nil, errs.Errorf(errs.NotFound, "There is no account named %q.", accountName)
	}
	if err != nil {
		return nil, err
	}
	return a.Store.APIKeyList(ctx, acct.ID)
}

// RevokeAPIKey deletes the API key id: from the next request on it answers errs.Unauthorized, and
// the console sessions signed in with it end.
func (a *App) RevokeAPIKey(ctx context.Context, id string) error {
	err := a.Store.Tx(ctx, func(tx store.Tx) error { return tx.APIKeyRevoke(ctx, id) })
	if errs.CodeOf(err) == errs.NotFound {
		return errs.Errorf(errs.NotFound, "There is no API key %q.", id)
	}
	return err
}
