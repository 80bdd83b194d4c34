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
	"github.com/quikly/webhooks/internal/webhook"
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

// TestLeaseWritesDoNotWaitForTheDisk: the dispatcher's claim, release and outcome transactions commit
// asynchronously (a crash can only take back leases and outcomes), every other transaction durably.
func TestLeaseWritesDoNotWaitForTheDisk(t *testing.T) {
	t.Parallel()
	db, err := Open(t.Context(), pgtest.NewDatabase(t), Options{MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	syncCommit := func(tx store.Tx) string {
		var v string
		require.NoError(t, tx.(*queries).q.QueryRow(t.Context(), "SELECT current_setting('synchronous_commit')").Scan(&v))
		return v
	}
	now := time.Now()
	require.NoError(t, db.Tx(t.Context(), func(tx store.Tx) error {
		require.Equal(t, "on", syncCommit(tx), "any transaction")
		_, err := tx.DeliveryClaimDue(t.Context(), &store.DeliveryClaimDueParams{Now: now, LeaseUntil: now.Add(time.Minute)})
		require.Equal(t, "off", syncCommit(tx), "a claim")
		return err
	}))
	require.NoError(t, db.Tx(t.Context(), func(tx store.Tx) error {
		require.NoError(t, tx.DeliveryRelease(t.Context(), []*store.ClaimedDelivery{{Delivery: webhook.Delivery{ID: "dlv_x", WebhookID: "wh_x"}}}, now))
		require.Equal(t, "off", syncCommit(tx), "a release")
		return nil
	}))
	require.NoError(t, db.Tx(t.Context(), func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(t.Context(), "acme", now)
		require.NoError(t, err)
		w := &webhook.Webhook{ID: "wh_x", AccountID: acct.ID, Name: "x", URL: "https://127.0.0.1/", Events: []string{webhook.ProposalCreated},
			IsActive: true, Secret: webhook.NewSecret(), CreatedAt: now, UpdatedAt: now}
		require.NoError(t, tx.WebhookInsert(t.Context(), w))
		e := &webhook.Event{ID: "evt_x", AccountID: acct.ID, Type: webhook.ProposalCreated, OccurredAt: now}
		require.NoError(t, tx.EventInsert(t.Context(), e))
		d := &webhook.Delivery{ID: "dlv_x", AccountID: acct.ID, WebhookID: w.ID, EventID: e.ID, EventType: e.Type,
			Body: []byte(`{}`), State: webhook.DeliveryPending, NextAttemptAt: now, CreatedAt: now}
		require.NoError(t, tx.DeliveryInsert(t.Context(), []*webhook.Delivery{d}))
		require.Equal(t, "on", syncCommit(tx), "an event and its deliveries")
		a := &webhook.Attempt{ID: "att_x", DeliveryID: d.ID, WebhookID: w.ID, AccountID: acct.ID, EventID: e.ID, EventType: e.Type,
			Number: 1, RequestHeaders: map[string]string{}, CreatedAt: now}
		require.NoError(t, tx.DeliveryComplete(t.Context(), []*store.DeliveryOutcome{{Attempt: a, State: webhook.DeliveryFailed}}, nil))
		require.Equal(t, "off", syncCommit(tx), "an outcome")
		return nil
	}))
}
