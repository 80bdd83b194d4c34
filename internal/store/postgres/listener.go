package postgres

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the LISTEN/NOTIFY channel of due deliveries. NOTIFY reaches only the listeners
// of the database it was sent in, so one fixed name serves any number of databases on a server.
const notifyChannel = "quikly_deliveries"

// notifyDue wakes the dispatchers of every process; the notifier sends it after the commits that may
// have made deliveries due, with a payload that names the sending handle.
const notifyDue = "NOTIFY " + notifyChannel

// Listener timing.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	// listenIdleCheck is how long the listener waits for a notification before it pings its
	// connection: a peer that vanished without closing the socket is noticed within this (plus the
	// ping's timeout) instead of TCP keepalive's minutes.
	listenIdleCheck   = 30 * time.Second
	listenPingTimeout = 10 * time.Second
)

// listener holds one connection, outside the pool, that LISTENs for due deliveries and turns each
// notification into a value on due. It runs from the first start until stop.
type listener struct {
	cfg *pgx.ConnConfig
	log *slog.Logger
	// self is the payload of this handle's own notifications, which it ignores: its process wakes
	// its dispatcher itself, naming the webhooks (a wake from here would walk every webhook).
	self string
	due  chan struct{} // buffered(1): wakes coalesce, a sender never blocks
	// idleCheck is listenIdleCheck; tests shorten it.
	idleCheck time.Duration
	// Test signals, nil outside tests: onListen after each LISTEN, onPing after each idle ping
	// that succeeded, onOwn after each notification of its own handle.
	onListen, onPing, onOwn func()

	startOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
}

// newListener returns a listener that connects with cfg, ignores notifications whose payload is self
// and logs to log (nil: slog.Default()).
func newListener(cfg *pgx.ConnConfig, self string, log *slog.Logger) *listener {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{cfg: cfg, self: self, log: log, due: make(chan struct{}, 1), idleCheck: listenIdleCheck,
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start starts listening unless it already did (or was stopped) and returns the wake channel.
func (l *listener) start() <-chan struct{} {
	l.startOnce.Do(func() { go l.run() })
	return l.due
}

// stop ends the listener and waits for its connection to close.
func (l *listener) stop() {
	l.cancel()
	l.startOnce.Do(func() { close(l.done) }) // never started: nothing to wait for
	<-l.done
}

func (l *listener) wake() {
	select {
	case l.due <- struct{}{}:
	default:
	}
}

func (l *listener) run() {
	defer close(l.done)
	backoff := listenBackoffMin
	failing := false // logged once per outage, not once per try
	for {
		listened, err := l.listen(failing)
		if l.ctx.Err() != nil {
			return
		}
		if listened {
			backoff, failing = listenBackoffMin, false // a connection that worked was lost: retry soon
		}
		if !failing {
			l.log.Warn("postgres: listening for due deliveries failed; reconnecting (dispatchers poll meanwhile)", "err", err)
			failing = true
		}
		// Jitter spreads the reconnects of many processes after a database restart.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listen connects, LISTENs and wakes for each notification until the connection fails or the
// listener stops. It reports whether LISTEN took effect.
func (l *listener) listen(failing bool) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(l.ctx, l.cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), listenPingTimeout)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(l.ctx, "LISTEN "+notifyChannel); err != nil {
		return false, err
	}
	if failing {
		l.log.Info("postgres: listening for due deliveries again")
	}
	if l.onListen != nil {
		l.onListen()
	}
	// Notifications sent while no connection listened are lost: whatever they announced may be due
	// now, so look.
	l.wake()
	for {
		ctx, cancel := context.WithTimeout(l.ctx, l.idleCheck)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil && n.Payload == l.self:
			if l.onOwn != nil {
				l.onOwn()
			}
		case err == nil:
			l.wake()
		case l.ctx.Err() != nil:
			return true, l.ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: make sure the server is still there.
			pctx, cancel := context.WithTimeout(l.ctx, listenPingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
			if l.onPing != nil {
				l.onPing()
			}
		default:
			return true, err
		}
	}
}
