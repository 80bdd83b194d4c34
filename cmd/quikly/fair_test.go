package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/server"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// publish publishes n events of eventType for the named account into the database at dbURL, from
// this process, as another writer would.
func publish(t *testing.T, dbURL, accountName, eventType string, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := server.OpenStore(ctx, &server.Config{DatabaseURL: dbURL})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(ctx, accountName, time.Now())
		if err != nil {
			return err
		}
		for i := range n {
			if _, _, err := delivery.Publish(ctx, tx, nil, acct.ID, eventType, map[string]int{"i": i}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}))
}

// apiCall sends an API request to a running quikly and returns the status and body.
func apiCall(t *testing.T, addr, key, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+"/api/external/v1"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, data
}

// hookFor creates a webhook of key's account to url for eventType and returns its id.
func hookFor(t *testing.T, addr, key, url, eventType string) string {
	t.Helper()
	status, data := apiCall(t, addr, key, "POST", "/webhooks",
		fmt.Sprintf(`{"name":"hook","url":%q,"events":[%q]}`, url, eventType))
	require.Equal(t, http.StatusCreated, status, "%s", data)
	var w struct{ ID string }
	require.NoError(t, json.Unmarshal(data, &w))
	return w.ID
}

// scaleOut starts serve and two workers on a fresh PostgreSQL database with extra flags, and returns
// the database and serve's address.
func scaleOut(t *testing.T, flags ...string) (db, addr string) {
	db = pgtest.NewDatabase(t)
	common := append([]string{"--database", db, "--allow-private-targets"}, flags...)
	p := start(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, common...)...)
	for range 2 {
		start(t, append([]string{"worker", "--worker-addr", "127.0.0.1:0"}, common...)...)
	}
	return db, p.addr
}

func newKey(t *testing.T, db, account string) string {
	t.Helper()
	key, _, code := quikly(t, nil, "apikey", "create", "--account", account, "--database", db)
	require.Equal(t, 0, code)
	return strings.TrimSpace(key)
}

// TestPostgresScaleOutIsolation: serve and two workers; one account's 20 webhooks hang with a
// backlog; every event of another account arrives before the first hung attempt's timeout fires.
func TestPostgresScaleOutIsolation(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second
	db, addr := scaleOut(t, "--delivery-timeout", timeout.String(), "--retry-schedule", "1h")
	evil, acme := newKey(t, db, "evil"), newKey(t, db, "acme")
	hung := testenv.NewReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hung.Handle(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	for range 20 {
		hookFor(t, addr, evil, hung.URL, webhook.ProposalCreated)
	}
	healthy := testenv.NewReceiver(t)
	hookFor(t, addr, acme, healthy.URL, webhook.LeadSessionCreated)
	publish(t, db, "evil", webhook.ProposalCreated, 20)
	firstHung := hung.Next(t)
	const events = 20
	publish(t, db, "acme", webhook.LeadSessionCreated, events)
	var last time.Time
	for range events {
		last = healthy.Next(t).At
	}
	require.True(t, last.Before(firstHung.At.Add(timeout)),
		"the other account's deliveries all arrived (last at +%v) before the first hung timeout (+%v)",
		last.Sub(firstHung.At), timeout)
}

// TestPostgresScaleOutBreaker: with serve and two workers delivering, a webhook whose breaker is open
// has one attempt in flight at a time across all three processes.
func TestPostgresScaleOutBreaker(t *testing.T) {
	t.Parallel()
	db, addr := scaleOut(t, "--retry-schedule", "1h")
	key := newKey(t, db, "acme")
	rcv := testenv.NewReceiver(t)
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	rcv.Handle(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // the endpoint's own slowness, so overlapping attempts overlap
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	})
	id := hookFor(t, addr, key, rcv.URL, webhook.ProposalCreated)
	publish(t, db, "acme", webhook.ProposalCreated, webhook.BreakerThreshold)
	waitAttempts(t, addr, key, id, webhook.BreakerThreshold)
	mu.Lock()
	maxInFlight = inFlight
	mu.Unlock()

	const burst = 30
	publish(t, db, "acme", webhook.ProposalCreated, burst)
	waitAttempts(t, addr, key, id, webhook.BreakerThreshold+burst)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, maxInFlight, "one attempt in flight across every process while the breaker is open")
}

// waitAttempts waits until the webhook's log has n entries.
func waitAttempts(t *testing.T, addr, key, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status, data := apiCall(t, addr, key, "GET", "/webhooks/"+id+"/logs?limit=200", "")
		require.Equal(t, http.StatusOK, status, "%s", data)
		var page struct{ Data []json.RawMessage }
		require.NoError(t, json.Unmarshal(data, &page))
		if len(page.Data) >= n {
			require.Len(t, page.Data, n)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d attempts logged", len(page.Data), n)
		}
		time.Sleep(20 * time.Millisecond) // polling the log of another process
	}
}

// TestPostgresScaleOutRateLimit: serve and two workers deliver a backlog to a webhook limited to 5
// attempts a second; the loopback receiver counts at most 6 in any sliding second, and every
// delivery succeeds at its first attempt.
func TestPostgresScaleOutRateLimit(t *testing.T) {
	t.Parallel()
	const limit, backlog = 5, 20
	db, addr := scaleOut(t)
	key := newKey(t, db, "acme")
	rcv := testenv.NewReceiver(t)
	status, data := apiCall(t, addr, key, "POST", "/webhooks",
		fmt.Sprintf(`{"name":"limited","url":%q,"events":[%q],"rate_limit":%d}`, rcv.URL, webhook.ProposalCreated, limit))
	require.Equal(t, http.StatusCreated, status, "%s", data)
	var w struct{ ID string }
	require.NoError(t, json.Unmarshal(data, &w))
	publish(t, db, "acme", webhook.ProposalCreated, backlog)
	var at []time.Time
	for range backlog {
		at = append(at, rcv.Next(t).At)
	}
	most := testenv.MaxPerSecond(at)
	t.Logf("rate_limit %d over 3 processes: at most %d arrivals in any sliding second, %d over %v", limit, most, backlog, at[len(at)-1].Sub(at[0]))
	require.LessOrEqual(t, most, limit+1, "at most one over the limit in any second, across every process")
	waitAttempts(t, addr, key, w.ID, backlog)
	status, data = apiCall(t, addr, key, "GET", "/webhooks/"+w.ID+"/logs?status=failed", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"data":[],"next_cursor":null}`, string(data), "none failed because of the limit")
}
