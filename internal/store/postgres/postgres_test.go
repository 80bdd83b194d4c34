package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/account"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/errs"
	"github.com/quikly/webhooks/internal/proposal"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/store/storetest"
	"github.com/quikly/webhooks/internal/webhook"
)

var base = time.Date(2026, 4, 3, 14, 30, 0, 0, time.UTC)

// wakeTimeout bounds the wait for a notification; it only matters when the test fails.
const wakeTimeout = 30 * time.Second

// openURL opens a store on the database at url with a small pool and closes it at cleanup.
func openURL(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLoopbackWithoutTLS: a server on this machine is reached without TLS under the default
// sslmode (prefer), and with it when the URL requires it.
func TestLoopbackWithoutTLS(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	for _, c := range []struct {
		sslmode string
		tls     bool
	}{{"", false}, {"prefer", false}, {"require", true}} {
		name := "quikly-tls-test-" + randid.Base62(8)
		u := url
		if c.sslmode != "" {
			u += "?sslmode=" + c.sslmode
		}
		db, err := postgres.Open(t.Context(), u, postgres.Options{MaxConns: 1, ApplicationName: name})
		if err != nil && c.tls {
			t.Skipf("the server refuses TLS: %v", err) // a server without a certificate
		}
		require.NoError(t, err)
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		var ssl bool
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = $1`, name).Scan(&ssl), "sslmode=%q", c.sslmode)
		conn.Close(t.Context())
		require.Equal(t, c.tls, ssl, "sslmode=%q", c.sslmode)
		db.Close()
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	pgtest.BaseURL(t) // skip (or, on CI, fail) once rather than in every subtest
	storetest.Run(t, func(t *testing.T) store.Store { return openURL(t, pgtest.NewDatabase(t)) })
}

type testBundle struct {
	url  string
	db   *postgres.DB
	acct *account.Account
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{url: pgtest.NewDatabase(t)}
	b.db = openURL(t, b.url)
	require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error {
		var err error
		b.acct, err = tx.AccountGetOrCreate(t.Context(), "acme", base)
		return err
	}))
	return b
}

func newWebhook(t *testing.T, st store.Store, accountID string) *webhook.Webhook {
	t.Helper()
	w := &webhook.Webhook{ID: randid.New("wh_"), AccountID: accountID, Name: "CRM", URL: "https://example.com/hook",
		Events: []string{webhook.ProposalCreated}, IsActive: true, Secret: webhook.NewSecret(), CreatedAt: base, UpdatedAt: base}
	require.NoError(t, st.Tx(t.Context(), func(tx store.Tx) error { return tx.WebhookInsert(t.Context(), w) }))
	return w
}

func publish(t *testing.T, st store.Store, accountID string, at time.Time) []*webhook.Delivery {
	t.Helper()
	var ds []*webhook.Delivery
	require.NoError(t, st.Tx(t.Context(), func(tx store.Tx) error {
		var err error
		_, ds, err = delivery.Publish(t.Context(), tx, nil, accountID, webhook.ProposalCreated, map[string]string{}, at)
		return err
	}))
	return ds
}

func claim(t *testing.T, st store.Store, now time.Time, limit int) []*store.ClaimedDelivery {
	t.Helper()
	var cs []*store.ClaimedDelivery
	require.NoError(t, st.Tx(t.Context(), func(tx store.Tx) error {
		var err error
		cs, err = storetest.ClaimDue(t.Context(), tx, now, now.Add(time.Minute), limit)
		return err
	}))
	return cs
}

func requireWake(t *testing.T, due <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-due:
	case <-time.After(wakeTimeout):
		require.FailNow(t, "no wake: "+msg)
	}
}

func TestWakesOtherHandles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := openURL(t, b.url) // another process, as far as PostgreSQL can tell
	due := b.db.DeliveriesDue()
	requireWake(t, due, "the listener wakes once it listens, for what it may have missed")
	ctx := t.Context()

	w := newWebhook(t, other, b.acct.ID)
	ds := publish(t, other, b.acct.ID, base)
	requireWake(t, due, "inserting deliveries wakes every listener")

	w.IsActive = false
	require.NoError(t, other.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) }))
	w.IsActive = true
	require.NoError(t, other.Tx(ctx, func(tx store.Tx) error { return tx.WebhookUpdate(ctx, w) }))
	requireWake(t, due, "resuming a webhook releases its held deliveries")

	cs := claim(t, other, base, 1)
	require.Len(t, cs, 1)
	require.NoError(t, other.Tx(ctx, func(tx store.Tx) error { return tx.DeliveryRelease(ctx, cs, base) }))
	requireWake(t, due, "releasing claimed deliveries")

	cs = claim(t, other, base, 1)
	require.Len(t, cs, 1)
	a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: cs[0].ID, WebhookID: w.ID, AccountID: b.acct.ID,
		EventID: cs[0].EventID, EventType: cs[0].EventType, Number: 1, Succeeded: true, StatusCode: 200, CreatedAt: base}
	require.NoError(t, other.Tx(ctx, func(tx store.Tx) error {
		return tx.DeliveryComplete(ctx, []*store.DeliveryOutcome{{Attempt: a, LeaseUntil: cs[0].LeaseUntil, State: webhook.DeliverySucceeded}}, nil)
	}))
	require.NoError(t, other.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.DeliveryRetry(ctx, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: ds[0].ID, Now: base, FreshSchedule: true})
		return err
	}))
	requireWake(t, due, "retrying a delivery")
}

func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	newWebhook(t, b.db, b.acct.ID)
	const n = 60
	for i := range n {
		publish(t, b.db, b.acct.ID, base.Add(time.Duration(i)*time.Millisecond))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			for {
				var cs []*store.ClaimedDelivery
				results[i] = b.db.Tx(t.Context(), func(tx store.Tx) error {
					var err error
					cs, err = storetest.ClaimDue(t.Context(), tx, base.Add(time.Second), base.Add(time.Minute), 7)
					return err
				})
				if results[i] != nil || len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					seen[c.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range results {
		require.NoError(t, err)
	}
	require.Len(t, seen, n, "every due delivery is claimed")
	for id, times := range seen {
		require.Equal(t, 1, times, "delivery %s is claimed by one claimer only", id)
	}
}

func TestGetForUpdateLocks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	p, err := proposal.NewProposal(b.acct.ID, proposal.ProposalCreate{Name: "Site", ClientName: "Acme", Currency: "USD",
		LineItems: []proposal.LineItemInput{{Description: "Design", Quantity: "1", UnitPrice: "10.00"}}}, base)
	require.NoError(t, err)
	require.NoError(t, b.db.Tx(ctx, func(tx store.Tx) error { return tx.ProposalInsert(ctx, p) }))

	locked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	defer letGo() // when the test fails, the first transaction must still end
	first := make(chan error, 1)
	go func() {
		first <- b.db.Tx(ctx, func(tx store.Tx) error {
			got, err := tx.ProposalGetForUpdate(ctx, b.acct.ID, p.ID)
			if err != nil {
				return err
			}
			close(locked)
			<-release
			got.Name = "Renamed by the first"
			return tx.ProposalUpdate(ctx, got)
		})
	}()
	<-locked
	second := make(chan string, 1)
	go func() {
		_ = b.db.Tx(ctx, func(tx store.Tx) error {
			got, err := tx.ProposalGetForUpdate(ctx, b.acct.ID, p.ID)
			if err != nil {
				return err
			}
			second <- got.Name
			return nil
		})
		close(second)
	}()
	// The second transaction must be waiting for the first's row lock before the first goes on.
	require.Eventually(t, func() bool {
		return waitingForLock(t, b.url)
	}, wakeTimeout, 10*time.Millisecond)
	letGo()
	require.NoError(t, <-first)
	require.Equal(t, "Renamed by the first", <-second, "the second read waits and sees the first's write")
}

// waitingForLock reports whether a backend of the database at url waits for a row lock.
func waitingForLock(t *testing.T, url string) bool {
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n))
	return n > 0
}

// terminateBackends kills every connection to the test database, as a server restart or a
// failover does.
func terminateBackends(t *testing.T, url string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	pgtest.Exec(t, pgtest.BaseURL(t), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, cfg.Database)
}

// fillPool runs as many transactions at once as db has connections (4), so the pool holds that many.
func fillPool(t *testing.T, db *postgres.DB) {
	t.Helper()
	var started, wg sync.WaitGroup
	started.Add(4)
	results := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			held := false
			results[i] = db.Tx(t.Context(), func(tx store.Tx) error {
				held = true
				started.Done()
				started.Wait() // hold this connection until every transaction has one
				return tx.SettingSet(t.Context(), fmt.Sprint("fill-", i), "1")
			})
			if !held {
				started.Done() // failed to begin: let the others go on
			}
		})
	}
	wg.Wait()
	for _, err := range results {
		require.NoError(t, err)
	}
}

func setAllowConnections(t *testing.T, url string, allow bool) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	pgtest.Exec(t, pgtest.BaseURL(t), fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t",
		pgx.Identifier{cfg.Database}.Sanitize(), allow))
}

func TestSurvivesConnectionLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	other := openURL(t, b.url)
	due := b.db.DeliveriesDue()
	requireWake(t, due, "listening")
	w := newWebhook(t, b.db, b.acct.ID)
	publish(t, other, b.acct.ID, base)
	requireWake(t, due, "the publish")
	// Fill both pools with connections that the kill will leave stale, with transactions that
	// notify nobody, so every wake below has one known cause.
	fillPool(t, b.db)
	fillPool(t, other)

	t.Log("killing every connection")
	terminateBackends(t, b.url)
	requireWake(t, due, "the listener reconnects and wakes, since it may have missed notifications")
	require.NoError(t, b.db.Ping(ctx), "stale connections do not make Ping fail while the database is up")
	fillPool(t, b.db)
	_, err := b.db.WebhookGet(ctx, b.acct.ID, w.ID)
	require.NoError(t, err)
	publish(t, other, b.acct.ID, base)
	requireWake(t, due, "the reconnected listener hears other handles again")

	t.Log("refusing connections: the database is down")
	setAllowConnections(t, b.url, false)
	terminateBackends(t, b.url)
	require.Error(t, b.db.Ping(ctx), "Ping fails while the database is down, so /readyz answers 503")
	err = b.db.Tx(ctx, func(tx store.Tx) error { return tx.SettingSet(ctx, "x", "1") })
	require.Error(t, err)
	_, err = b.db.WebhookGet(ctx, b.acct.ID, w.ID)
	require.Error(t, err)
	require.Equal(t, errs.Internal, errs.CodeOf(err), "an outage is not a missing row")

	t.Log("accepting connections again")
	setAllowConnections(t, b.url, true)
	require.NoError(t, b.db.Ping(ctx))
	require.NoError(t, b.db.Tx(ctx, func(tx store.Tx) error { return tx.SettingSet(ctx, "x", "1") }))
	requireWake(t, due, "the listener reconnects after the outage")
	publish(t, other, b.acct.ID, base)
	requireWake(t, due, "and hears other handles again")
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("RefusesAMissingDatabaseWithoutLeakingThePassword", func(t *testing.T) {
		t.Parallel()
		u, err := pgtest.WithDatabase(pgtest.BaseURL(t), "quikly_test_missing_"+randid.Base62(6))
		require.NoError(t, err)
		u = insertPassword(t, u, "s3cret-pw")
		_, err = postgres.Open(t.Context(), u, postgres.Options{})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "s3cret-pw")
	})

	t.Run("MigratesOnceWhenStartedTogether", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDatabase(t)
		var wg sync.WaitGroup
		results := make([]error, 3)
		for i := range results {
			wg.Go(func() {
				db, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 2})
				if err == nil {
					db.Close()
				}
				results[i] = err
			})
		}
		wg.Wait()
		for _, err := range results {
			require.NoError(t, err)
		}
	})

	t.Run("ClosedStoreAnswersErrors", func(t *testing.T) {
		t.Parallel()
		db := openURL(t, pgtest.NewDatabase(t))
		due := db.DeliveriesDue()
		require.NoError(t, db.Close())
		require.NoError(t, db.Close(), "closing twice is harmless")
		require.Error(t, db.Ping(t.Context()))
		require.Error(t, db.Tx(t.Context(), func(store.Tx) error { return nil }))
		require.NotNil(t, due)
	})
}

// insertPassword returns the URL u with user-info password pw.
func insertPassword(t *testing.T, u, pw string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	require.NoError(t, err)
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s", cfg.User, pw, cfg.Host, cfg.Port, cfg.Database)
}

func TestAttemptsKeepWhatTextCannotHold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	w := newWebhook(t, b.db, b.acct.ID)
	publish(t, b.db, b.acct.ID, base)
	c := claim(t, b.db, base, 1)[0]
	// An endpoint may answer anything; PostgreSQL text refuses NUL and invalid UTF-8, and a refused
	// row would fail the whole batch of outcomes.
	a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: w.ID, AccountID: b.acct.ID,
		EventID: c.EventID, EventType: c.EventType, Number: 1, StatusCode: 500, Error: "bad\x00reply \xff",
		ResponseBody: "binary\x00body", RequestHeaders: map[string]string{"webhook-id": c.EventID}, CreatedAt: base}
	require.NoError(t, b.db.Tx(ctx, func(tx store.Tx) error {
		return tx.DeliveryComplete(ctx, []*store.DeliveryOutcome{{Attempt: a, LeaseUntil: c.LeaseUntil, State: webhook.DeliveryFailed}}, nil)
	}))
	got, err := b.db.AttemptGet(ctx, &store.AttemptGetParams{AccountID: b.acct.ID, WebhookID: w.ID, ID: a.ID})
	require.NoError(t, err)
	require.Equal(t, "binary\x00body", got.ResponseBody, "the body is kept byte for byte")
	require.Equal(t, "bad\uFFFDreply \uFFFD", got.Error)
}

// interleave runs first in a transaction that, once first has run, stays open until second (run in
// another transaction) waits for one of its locks; then lets it commit and waits for both.
func interleave(t *testing.T, b *testBundle, first, second func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	ran, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	defer letGo() // when the test fails, the first transaction must still end, or closing the store waits for ever
	firstErr, secondErr := make(chan error, 1), make(chan error, 1)
	go func() {
		firstErr <- b.db.Tx(ctx, func(tx store.Tx) error {
			if err := first(ctx, tx); err != nil {
				return err
			}
			close(ran)
			<-release
			return nil
		})
	}()
	select {
	case <-ran:
	case err := <-firstErr:
		require.NoError(t, err)
		require.FailNow(t, "the first transaction ended early")
	}
	go func() { secondErr <- b.db.Tx(ctx, func(tx store.Tx) error { return second(ctx, tx) }) }()
	require.Eventually(t, func() bool { return waitingForLock(t, b.url) }, wakeTimeout, 10*time.Millisecond,
		"the second transaction waits for the first")
	letGo()
	require.NoError(t, <-firstErr)
	require.NoError(t, <-secondErr)
}

// TestPauseResumeAndDeleteSeeConcurrentWrites checks what SQLite gets from its single writer: a
// pause, resume or delete that commits while another transaction writes deliveries of the same
// webhook still applies to those deliveries.
func TestPauseResumeAndDeleteSeeConcurrentWrites(t *testing.T) {
	t.Parallel()
	state := func(t *testing.T, b *testBundle, id string) webhook.DeliveryState {
		t.Helper()
		d, err := b.db.DeliveryGet(t.Context(), b.acct.ID, id)
		require.NoError(t, err)
		return d.State
	}
	setActive := func(w *webhook.Webhook, active bool) func(ctx context.Context, tx store.Tx) error {
		return func(ctx context.Context, tx store.Tx) error {
			w.IsActive = active
			return tx.WebhookUpdate(ctx, w)
		}
	}
	publishIn := func(b *testBundle, ds *[]*webhook.Delivery) func(ctx context.Context, tx store.Tx) error {
		return func(ctx context.Context, tx store.Tx) error {
			var err error
			_, *ds, err = delivery.Publish(ctx, tx, nil, b.acct.ID, webhook.ProposalCreated, map[string]string{}, base)
			return err
		}
	}

	t.Run("ResumeWhileAPublishCommits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error { return setActive(w, false)(t.Context(), tx) }))
		var ds []*webhook.Delivery
		interleave(t, b, publishIn(b, &ds), setActive(w, true))
		require.Equal(t, webhook.DeliveryPending, state(t, b, ds[0].ID), "the resume released what the publish held")
	})

	t.Run("DeleteWhileAPublishCommits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		var ds []*webhook.Delivery
		interleave(t, b, publishIn(b, &ds), func(ctx context.Context, tx store.Tx) error {
			return tx.WebhookDelete(ctx, &store.WebhookDeleteParams{AccountID: b.acct.ID, ID: w.ID, Now: base})
		})
		require.Equal(t, webhook.DeliveryCancelled, state(t, b, ds[0].ID), "a deleted webhook is sent nothing")
	})

	t.Run("ResumeWhileARetryIsWritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		d := publish(t, b.db, b.acct.ID, base)[0]
		c := claim(t, b.db, base, 1)[0]
		require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error { return setActive(w, false)(t.Context(), tx) }))
		a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: w.ID, AccountID: b.acct.ID,
			EventID: c.EventID, EventType: c.EventType, Number: 1, StatusCode: 500, CreatedAt: base}
		interleave(t, b, func(ctx context.Context, tx store.Tx) error {
			return tx.DeliveryComplete(ctx, []*store.DeliveryOutcome{{Attempt: a, LeaseUntil: c.LeaseUntil,
				State: webhook.DeliveryPending, NextAttemptAt: base.Add(time.Second), Retries: 1}}, nil)
		}, setActive(w, true))
		require.Equal(t, webhook.DeliveryPending, state(t, b, d.ID), "the resume released the held retry")
	})

	t.Run("PauseWhileAResendCommits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		d := publish(t, b.db, b.acct.ID, base)[0]
		c := claim(t, b.db, base, 1)[0]
		a := &webhook.Attempt{ID: randid.New("att_"), DeliveryID: c.ID, WebhookID: w.ID, AccountID: b.acct.ID,
			EventID: c.EventID, EventType: c.EventType, Number: 1, StatusCode: 500, CreatedAt: base}
		require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error {
			return tx.DeliveryComplete(t.Context(), []*store.DeliveryOutcome{{Attempt: a, LeaseUntil: c.LeaseUntil, State: webhook.DeliveryFailed}}, nil)
		}))
		interleave(t, b, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.DeliveryRetry(ctx, &store.DeliveryRetryParams{AccountID: b.acct.ID, ID: d.ID, Now: base, FreshSchedule: true})
			return err
		}, setActive(w, false))
		require.Equal(t, webhook.DeliveryHeld, state(t, b, d.ID), "the pause held the resent delivery")
	})

	t.Run("PauseWhileAReleaseCommits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		d := publish(t, b.db, b.acct.ID, base)[0]
		cs := claim(t, b.db, base, 1)
		interleave(t, b, func(ctx context.Context, tx store.Tx) error {
			return tx.DeliveryRelease(ctx, cs, base)
		}, setActive(w, false))
		require.Equal(t, webhook.DeliveryHeld, state(t, b, d.ID), "the pause held the released delivery")
	})

	t.Run("ReleaseAfterAPauseHolds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := newWebhook(t, b.db, b.acct.ID)
		d := publish(t, b.db, b.acct.ID, base)[0]
		cs := claim(t, b.db, base, 1)
		require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error { return setActive(w, false)(t.Context(), tx) }))
		require.NoError(t, b.db.Tx(t.Context(), func(tx store.Tx) error { return tx.DeliveryRelease(t.Context(), cs, base) }))
		require.Equal(t, webhook.DeliveryHeld, state(t, b, d.ID), "a delivery given back while paused waits, as a retry does")
	})
}

// TestConnectionLostMidTransactionIsUnavailable: when the server ends a transaction's connection
// before it commits (pg_terminate_backend, a restart), Tx says errs.Unavailable (503: retry), not an
// internal error, and nothing was written.
func TestConnectionLostMidTransactionIsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	err := b.db.Tx(ctx, func(tx store.Tx) error {
		if _, err := tx.AccountGetOrCreate(ctx, "doomed", base); err != nil {
			return err
		}
		// Another connection ends this one, as an operator or a failover would.
		pgtest.Exec(t, b.url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'idle in transaction'`)
		_, err := tx.AccountGetOrCreate(ctx, "doomed-too", base)
		return err
	})
	require.Error(t, err)
	require.Equal(t, errs.Unavailable, errs.CodeOf(err), "%v", err)
	_, err = b.db.AccountGetByName(ctx, "doomed")
	require.Equal(t, errs.NotFound, errs.CodeOf(err), "nothing was committed")
}
