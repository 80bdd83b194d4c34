// Package app holds the use cases: each validates its input, opens one transaction, changes domain
// state through the store and publishes the resulting events. The API, the web UI and the share page
// all call it, so they behave alike.
package app

import (
	"context"
	"encoding/base64"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/store"
)

// App is the set of use cases over one store. Safe for concurrent use.
type App struct {
	Store store.Store
	// Sender sends test events synchronously.
	Sender *delivery.Sender
	// Metrics counts test attempts alongside the dispatcher's; nil counts nothing.
	Metrics *delivery.Metrics
	// BaseURL builds share links, e.g. "http://localhost:8080".
	BaseURL string
	// AllowPrivateTargets accepts http:// URLs and private addresses (development and tests).
	AllowPrivateTargets bool
	// LeaseDuration is how long a synchronous test attempt keeps its delivery from the dispatcher.
	LeaseDuration time.Duration
	// Notify, when set, is called after a transaction that published deliveries commits, to wake
	// the dispatcher.
	Notify func()
	// LogRetention is how long logs and events are kept (recover cannot reach further back); zero
	// means delivery.LogRetentionDefault.
	LogRetention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// beforeCommitHook is the test hook of SetBeforeCommitHook; atomic because tests set it while
	// requests run.
	beforeCommitHook atomic.Pointer[func(ctx context.Context, eventType string) error]
}

func (a *App) notify() {
	if a.Notify != nil {
		a.Notify()
	}
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
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
		if err != nil || !ok || after == "" {
			return nil, errs.Field("cursor", "is not a cursor of this list")
		}
		p.After = after
	}
	return p, nil
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

// CreateAPIKey creates the account if needed and returns a new API key for it, in clear, once.
func (a *App) CreateAPIKey(ctx context.Context, accountName string) (string, error) {
	accountName = strings.TrimSpace(accountName)
	if accountName == "" || len(accountName) > 200 {
		return "", errs.Field("account", "must be 1 to 200 characters")
	}
	key, hash := account.NewAPIKey()
	err := a.Store.Tx(ctx, func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(ctx, accountName, a.now())
		if err != nil {
			return err
		}
		return tx.APIKeyInsert(ctx, acct.ID, hash, a.now())
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Authenticate returns the account of an API key, or errs.Unauthorized.
func (a *App) Authenticate(ctx context.Context, key string) (*account.Account, error) {
	unauthorized := errs.Errorf(errs.Unauthorized, "A valid API key is required in the X-API-Key header.")
	if !account.LooksLikeAPIKey(key) {
		return nil, unauthorized
	}
	// The lookup is by hash through a unique index: the database never compares the secret itself,
	// so timing reveals nothing about stored keys.
	acct, err := a.Store.AccountGetByKeyHash(ctx, account.HashAPIKey(key))
	if errs.CodeOf(err) == errs.NotFound {
		return nil, unauthorized
	}
	return acct, err
}
