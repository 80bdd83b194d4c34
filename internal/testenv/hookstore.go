package testenv

import (
	"context"
	"sync/atomic"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// hookStore is the service's real store with a test hook run at the end of every transaction that
// inserted an event, just before it commits: an error from the hook rolls the whole transaction
// back, as a crash at the last moment would. Everything else goes straight to the real store.
type hookStore struct {
	store.Store
	hook atomic.Pointer[func(ctx context.Context, eventType string) error]
}

// DeliveriesDue passes the real store's cross-process wake-ups through (nil, never ready, when it
// has none), so the dispatcher behaves as it does over the real store.
func (s *hookStore) DeliveriesDue() <-chan struct{} {
	if w, ok := s.Store.(store.Waker); ok {
		return w.DeliveriesDue()
	}
	return nil
}

// Tx runs fn in a real transaction and then, if fn inserted an event, the hook.
func (s *hookStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Tx(ctx, func(tx store.Tx) error {
		htx := &hookTx{Tx: tx}
		if err := fn(htx); err != nil {
			return err
		}
		if hook := s.hook.Load(); hook != nil {
			for _, eventType := range htx.events {
				if err := (*hook)(ctx, eventType); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// hookTx records the types of the events a transaction inserts.
type hookTx struct {
	store.Tx
	events []string
}

func (tx *hookTx) EventInsert(ctx context.Context, e *webhook.Event) error {
	if err := tx.Tx.EventInsert(ctx, e); err != nil {
		return err
	}
	tx.events = append(tx.events, e.Type)
	return nil
}

// FailBeforeCommit makes every transaction that inserts an event call fn with the event's type after
// everything else it wrote, just before the commit; an error from fn fails the use case and rolls the
// whole transaction back (the row and the event). It returns a function that removes the hook.
func (e *Env) FailBeforeCommit(fn func(ctx context.Context, eventType string) error) (remove func()) {
	e.hooks.hook.Store(&fn)
	return func() { e.hooks.hook.Store(nil) }
}
