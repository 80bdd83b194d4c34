package main

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
)

// succeeded scrapes a process's /metrics for its count of succeeded attempts.
func succeeded(t *testing.T, addr string) int {
	t.Helper()
	return int(metric(t, addr, `quikly_deliveries_total{outcome="succeeded"}`))
}

// metric scrapes a process's /metrics for the value of one sample.
func metric(t *testing.T, addr, sample string) float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	var body strings.Builder
	_, err = io.Copy(&body, res.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in the metrics of %s", sample, addr)
	return 0
}

func workerArgs(db string) []string {
	return []string{"worker", "--database", db, "--worker-addr", "127.0.0.1:0", "--allow-private-targets",
		"--delivery-timeout", "2s", "--workers", "16", "--per-webhook", "16"}
}

// TestPostgresScaleOut: one serve and two workers share a backlog; one worker is killed with -9
// mid-delivery; every event arrives, duplicates only for the attempts the dead worker had in flight,
// and the work was shared.
func TestPostgresScaleOut(t *testing.T) {
	t.Parallel()
	const events = 3000
	db, serveArgs, rcv := crashSetup(t, pgtest.NewDatabase(t))
	start(t, serveArgs...)
	doomed := start(t, workerArgs(db)...)
	survivor := start(t, workerArgs(db)...)
	backlog(t, db, events)

	rcv.waitFor(t, time.Minute, "first deliveries", func(d, _ int) bool { return d >= events/4 })
	doomedCount := succeeded(t, doomed.addr)
	require.NoError(t, doomed.cmd.Process.Kill())
	<-doomed.done
	before, _ := rcv.distinct()
	require.Less(t, before, events, "killed mid-backlog")

	rcv.waitFor(t, 2*time.Minute, "every event delivered", func(d, _ int) bool { return d == events })
	_, total := rcv.distinct()
	require.LessOrEqual(t, total-events, 16, "duplicates only for the killed worker's attempts in flight")
	require.Positive(t, doomedCount, "the killed worker had delivered its share")
	require.Positive(t, succeeded(t, survivor.addr), "the surviving worker delivered its share")
}

// TestPostgresOutageIsRiddenOut: while delivering, the database refuses connections and every
// connection of the service is terminated; /readyz answers 503, the service recovers on its own when
// the database is back, and nothing is lost.
func TestPostgresOutageIsRiddenOut(t *testing.T) {
	t.Parallel()
	const events = 1000
	db, serveArgs, rcv := crashSetup(t, pgtest.NewDatabase(t))
	p := start(t, serveArgs...)
	backlog(t, db, events)
	rcv.waitFor(t, time.Minute, "first deliveries", func(d, _ int) bool { return d >= 100 })

	u, err := url.Parse(db)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	admin := pgtest.BaseURL(t)
	pgtest.Exec(t, admin, `ALTER DATABASE "`+name+`" ALLOW_CONNECTIONS false`)
	pgtest.Exec(t, admin, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name)
	t.Cleanup(func() { pgtest.Exec(t, admin, `ALTER DATABASE "`+name+`" ALLOW_CONNECTIONS true`) })
	waitReady(t, p.addr, http.StatusServiceUnavailable)

	pgtest.Exec(t, admin, `ALTER DATABASE "`+name+`" ALLOW_CONNECTIONS true`)
	waitReady(t, p.addr, http.StatusOK)
	rcv.waitFor(t, 2*time.Minute, "every event delivered after the outage", func(d, _ int) bool { return d == events })
}

// waitReady polls /readyz until it answers status.
func waitReady(t *testing.T, addr string, status int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		res.Body.Close()
		if res.StatusCode == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz answered %d, not %d", res.StatusCode, status)
		}
		time.Sleep(50 * time.Millisecond) // polling an external state change
	}
}
