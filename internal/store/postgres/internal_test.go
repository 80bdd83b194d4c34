package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
)

func TestListenerSurvivesIdleChecks(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	l := newListener(cfg, "self", nil)
	l.idleCheck = 10 * time.Millisecond
	var listens atomic.Int32
	pings := make(chan struct{}, 1)
	l.onListen = func() { listens.Add(1) }
	l.onPing = func() {
		select {
		case pings <- struct{}{}:
		default:
		}
	}
	t.Cleanup(l.stop)
	due := l.start()
	<-due // listening
	for range 3 {
		<-pings // an idle wait ended in a ping that succeeded
	}
	pgtest.Exec(t, url, notifyDue)
	select {
	case <-due:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "a notification after idle checks did not wake the listener")
	}
	require.Equal(t, int32(1), listens.Load(), "the idle checks kept the first connection")
}

// TestListenerIgnoresItsOwnHandle: a notification whose payload names the listener's own handle wakes
// nobody (its process woke its dispatcher itself); any other does.
func TestListenerIgnoresItsOwnHandle(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	l := newListener(cfg, "me", nil)
	own := make(chan struct{}, 1)
	l.onOwn = func() { own <- struct{}{} }
	t.Cleanup(l.stop)
	due := l.start()
	<-due // listening
	pgtest.Exec(t, url, notifyDue+", 'me'")
	select {
	case <-own:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the listener never read its own notification")
	}
	require.Empty(t, due, "its own notification woke nobody")
	pgtest.Exec(t, url, notifyDue+", 'another'")
	select {
	case <-due:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "another handle's notification did not wake the listener")
	}
}

func TestRetryOnAnotherConn(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, retryOnAnotherConn(cancelled, context.Canceled))
	_, err := pgx.Connect(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=5")
	require.Error(t, err)
	require.False(t, retryOnAnotherConn(context.Background(), err), "a refused connection means the database is down")
	require.True(t, retryOnAnotherConn(context.Background(), pgx.ErrTxClosed))
}

func TestSessionsCommitDurably(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	// A URL that asks for less durability does not get it.
	db, err := Open(t.Context(), url+"?synchronous_commit=off", Options{MaxConns: 2, ApplicationName: "quikly-test"})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var sync, app string
	require.NoError(t, db.pool.QueryRow(t.Context(), "SELECT current_setting('synchronous_commit'), current_setting('application_name')").
		Scan(&sync, &app))
	require.Equal(t, "on", sync)
	require.Equal(t, "quikly-test", app)
	require.EqualValues(t, 2, db.pool.Config().MaxConns)
}

// TestLeaseWritesDoNotWaitForTheDisk: a transaction marked store.WithLeasesOnly (the dispatcher's
// claims, releases and outcome writes) commits asynchronously, every other one durably.
func TestLeaseWritesDoNotWaitForTheDisk(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), pgtest.NewDatabase(t), Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	syncCommit := func(ctx context.Context) string {
		var v string
		require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
			return tx.(*queries).q.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&v)
		}))
		return v
	}
	require.Equal(t, "on", syncCommit(t.Context()), "any transaction")
	require.Equal(t, "off", syncCommit(store.WithLeasesOnly(t.Context())), "a claim, a release or an outcome write")
	require.Equal(t, "on", syncCommit(t.Context()), "and the next one on the same connections")
}
