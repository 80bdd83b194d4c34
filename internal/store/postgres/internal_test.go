package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
)

func TestListenerSurvivesIdleChecks(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	l := newListener(cfg, nil)
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
