package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/webhook"
)

// quiklyBin is quikly built once for every test, without -race: the smoke runs check the service's
// behaviour, and the race detector would only slow its subprocesses.
var quiklyBin string

func TestMain(m *testing.M) {
	// The ceiling scenario starts this binary again as its client process.
	if ceilingClientMain() {
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "quikly-bench-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	quiklyBin, err = buildQuikly(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testWriter sends the benchmark's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// smoke runs quikly-bench with args plus --smoke and returns the report and the printed table.
func smoke(t *testing.T, args ...string) (*Report, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.json")
	o, err := parseArgs(append([]string{"--smoke", "--quikly", quiklyBin, "--json", path}, args...))
	require.NoError(t, err)
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, o, &out, testWriter{t})
	require.NoError(t, err)
	t.Log(out.String())

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var written Report
	require.NoError(t, json.Unmarshal(data, &written), "the JSON file parses")
	require.Len(t, written.Results, len(rep.Results))
	return rep, out.String()
}

// requireAllDelivered checks that a scenario ran, that everything it had to deliver arrived, and that
// every request verified. Timings are not checked: CI machines are too noisy to assert them.
func requireAllDelivered(t *testing.T, r *Result) {
	t.Helper()
	require.Empty(t, r.Error, "%s ran without error", r.Scenario)
	require.Zero(t, r.Unverified, "%s: every request verified (%s)", r.Scenario, r.FirstUnverified)
	require.Positive(t, r.Expected, "%s delivered something", r.Scenario)
	require.Equal(t, r.Expected, r.Delivered, "%s: everything was delivered", r.Scenario)
	require.GreaterOrEqual(t, r.Requests, r.Delivered, r.Scenario)
	require.True(t, r.OK(), r.Scenario)
}

// requireCPU checks that r reports label+cpuMetricName, positive, split into quikly's share and the
// database's: zero on SQLite (inside quikly), positive on PostgreSQL. A PostgreSQL server that is
// not on this machine (a container, another host) cannot be read: then the metric must be absent
// and a note must say so.
func requireCPU(t *testing.T, r *Result, label string) {
	t.Helper()
	prefix := strings.ReplaceAll(label, " ", "_")
	require.Positive(t, r.Details[prefix+"cpu_events"], "%s: %sCPU was measured over delivered events", r.Scenario, label)
	require.Positive(t, r.Details[prefix+"cpu_quikly_ms_per_event"], "%s: %squikly's CPU per event", r.Scenario, label)
	i := slices.IndexFunc(r.Metrics, func(m *Metric) bool { return m.Name == label+cpuMetricName })
	if i < 0 {
		notReadable := slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "cannot be read on this machine") })
		require.True(t, notReadable, "%s: no %s%s metric, and no note why: %v", r.Scenario, label, cpuMetricName, r.Notes)
		t.Logf("%s: the database server is not on this machine; only quikly's CPU was checked", r.Scenario)
		return
	}
	require.Positive(t, r.Metrics[i].Value, "%s: %s%s", r.Scenario, label, cpuMetricName)
	if _, ok := r.Details[prefix+"cpu_database"]; ok { // SQLite
		require.Zero(t, r.Details[prefix+"cpu_database_ms_per_event"], r.Scenario)
		require.InDelta(t, r.Details[prefix+"cpu_quikly_ms_per_event"], r.Metrics[i].Value, 0.001, "%s: on SQLite the total is quikly's", r.Scenario)
		return
	}
	require.Positive(t, r.Details[prefix+"cpu_database_ms_per_event"], "%s: %sthe database server's CPU per event", r.Scenario, label)
	require.Positive(t, r.Details[prefix+"cpu_database_backends_s"], "%s: %sthe CPU of the scenario's database's backends", r.Scenario, label)
}

// TestSmoke runs every scenario at smoke size on SQLite, as CI does.
func TestSmoke(t *testing.T) {
	t.Parallel()
	rep, table := smoke(t, "--all")
	require.Equal(t, "sqlite", rep.Database)
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Scenario)
		if r.Scenario == "scaleout" {
			require.Contains(t, r.Skipped, "needs PostgreSQL", "scaleout runs quikly worker, which SQLite cannot")
			require.Empty(t, r.Error)
			continue
		}
		requireAllDelivered(t, r)
		require.NotEmpty(t, r.Metrics, r.Scenario)
		if r.Scenario == "drain" || r.Scenario == "e2e" {
			requireCPU(t, r, "")
		}
	}
	require.Equal(t, scenarioNames, names, "every scenario ran, in order")
	require.Empty(t, rep.Failed())
	for _, name := range scenarioNames {
		require.Contains(t, table, name)
	}
	require.Contains(t, table, "ratio to ceiling", "drain and e2e are compared with the ceiling of the same run")
	require.Contains(t, table, "skipped: needs PostgreSQL")
}

// TestSmokePostgres runs drain, e2e and scaleout (serve and two workers) at smoke size on the
// PostgreSQL of QUIKLY_TEST_DATABASE_URL: everything delivered, and CPU per event measured with the
// database server's share.
func TestSmokePostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.BaseURL(t)
	// CPU per event counts from when every process is ready: the drains are large enough that
	// deliveries remain by then, even when the three processes of scaleout start far apart.
	rep, table := smoke(t, "--scenario", "drain", "--scenario", "e2e", "--scenario", "scaleout", "--database", dbURL,
		"--drain-events", "3000")
	require.Equal(t, "postgres", rep.Database)
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Scenario)
		requireAllDelivered(t, r)
		switch r.Scenario {
		case "drain", "e2e":
			requireCPU(t, r, "")
		case "scaleout":
			require.Empty(t, r.Skipped)
			requireCPU(t, r, "drain ")
			requireCPU(t, r, "e2e ")
			for _, pass := range []string{"drain_", "e2e_"} {
				by, ok := r.Details[pass+"succeeded_by_process"].(map[string]float64)
				require.True(t, ok, "%s deliveries are counted by process", pass)
				require.Len(t, by, 1+scaleoutWorkers, "serve and every worker were read")
				cpu, ok := r.Details[pass+"cpu_quikly_s_by_process"].(map[string]float64)
				require.True(t, ok, "%s CPU is split by process", pass)
				require.Len(t, cpu, 1+scaleoutWorkers)
			}
			i := slices.IndexFunc(r.Metrics, func(m *Metric) bool { return m.Name == "duplicate deliveries" })
			require.GreaterOrEqual(t, i, 0, "duplicates are reported")
		}
	}
	require.Equal(t, []string{"ceiling", "drain", "e2e", "scaleout"}, names)
	require.Empty(t, rep.Failed())
	require.Contains(t, table, "not a speed-up")
}

// TestPostgresServerCPU finds the PostgreSQL server of QUIKLY_TEST_DATABASE_URL among this
// machine's processes and reads the CPU of a query that keeps one of its backends busy.
func TestPostgresServerCPU(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.BaseURL(t)
	ctx := context.Background()
	srv, err := findPostgres(ctx, dbURL)
	if err != nil {
		t.Skip("the server is not on this machine: ", err)
	}
	pm, err := readStat(srv.postmaster)
	require.NoError(t, err)
	require.NotEqual(t, 1, pm.pid, "the postmaster is not init")

	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var backend int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend))
	before, err := srv.read()
	require.NoError(t, err)
	st, err := readStat(backend)
	require.NoError(t, err)
	require.Contains(t, before.children, procKey{backend, st.start}, "the backend is a child of the postmaster")

	// Work until the backend has used at least one tick more than it had: a count of what the
	// kernel accounted, not a duration.
	for i := 0; ; i++ {
		require.Less(t, i, 10000, "the backend's CPU time never grew: pid %d is not the backend", backend)
		var n int64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 200000)").Scan(&n))
		now, err := readStat(backend)
		require.NoError(t, err)
		if now.cpu > before.children[procKey{backend, st.start}] {
			break
		}
	}
	after, err := srv.read()
	require.NoError(t, err)
	require.Greater(t, after.total(), before.total(), "the server's CPU grew")
	backends, err := srv.backendsOf(ctx, databaseName(dbURL))
	require.NoError(t, err)
	require.True(t, backends[backend], "the busy backend is one of its database's")
}

func TestReadStat(t *testing.T) {
	t.Parallel()
	st, err := readStat(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), st.pid)
	require.Equal(t, os.Getppid(), st.ppid)
	require.Positive(t, st.start)
	children, err := childrenOf(os.Getppid())
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(children, func(c procStat) bool { return c.pid == os.Getpid() }), "this process is a child of its parent")
}

func TestReceiverVerifiesSignatures(t *testing.T) {
	t.Parallel()
	r, err := newReceiver()
	require.NoError(t, err)
	t.Cleanup(r.close)
	secret := webhook.NewSecret()
	require.NoError(t, r.register("wh_1", secret, false))
	key, err := webhook.SecretKey(secret)
	require.NoError(t, err)

	body := []byte(`{"event":"lead_session.created","data":{"lead_session_id":"ls_1"}}`)
	send := func(mutate func(h http.Header)) int {
		now := time.Now().Unix()
		h := http.Header{}
		h.Set("X-Quikly-Webhook-Id", "wh_1")
		h.Set("X-Quikly-Signature", webhook.SignQuikly(secret, body))
		h["webhook-id"] = []string{"evt_1"}
		h["webhook-timestamp"] = []string{strconv.FormatInt(now, 10)}
		h["webhook-signature"] = []string{webhook.SignStandard([][]byte{key}, "evt_1", now, body)}
		mutate(h)
		req, err := http.NewRequest(http.MethodPost, r.URL+"/x", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = h
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}

	require.Equal(t, http.StatusOK, send(func(http.Header) {}))
	require.Equal(t, http.StatusOK, send(func(http.Header) {}), "a duplicate is answered")
	require.Equal(t, http.StatusBadRequest, send(func(h http.Header) { h.Set("X-Quikly-Signature", strings.Repeat("0", 64)) }))
	require.Equal(t, http.StatusBadRequest, send(func(h http.Header) { h["webhook-signature"] = []string{"v1,AAAA"} }))
	require.Equal(t, http.StatusBadRequest, send(func(h http.Header) { h.Set("X-Quikly-Webhook-Id", "wh_unknown") }))
	require.Equal(t, http.StatusBadRequest, send(func(h http.Header) { h["webhook-timestamp"] = []string{"1"} }))

	stats := r.hook("wh_1")
	require.Equal(t, 1, stats.Distinct)
	require.Equal(t, 2, stats.Requests)
	require.Equal(t, 1, r.lead("ls_1").n)
	requests, unverified, why := r.totals()
	require.Equal(t, 6, requests)
	require.Equal(t, 4, unverified)
	require.Contains(t, why, "X-Quikly-Signature")
}

func TestOptions(t *testing.T) {
	t.Parallel()
	o, err := parseArgs([]string{"--scenario", "drain"})
	require.NoError(t, err)
	require.Equal(t, []string{"ceiling", "drain"}, o.Scenarios, "drain's ratio needs the ceiling of the same run")
	require.Equal(t, 20000, o.Sizes.DrainEvents)

	o, err = parseArgs([]string{"--all", "--smoke", "--drain-events", "7"})
	require.NoError(t, err)
	require.Equal(t, scenarioNames, o.Scenarios)
	require.Equal(t, 7, o.Sizes.DrainEvents, "a size flag overrides the smoke default")
	require.Equal(t, 2000, o.Sizes.BacklogDeliveries)

	o, err = parseArgs([]string{"--scenario", "scaleout"})
	require.NoError(t, err)
	require.Equal(t, []string{"ceiling", "scaleout"}, o.Scenarios, "scaleout's ratios need the ceiling of the same run")

	o, err = parseArgs([]string{"--all", "--quikly-arg=--retry-schedule=1s,2s", "--worker-arg=--per-webhook=8", "--worker-arg=--retry-schedule=1s,2s"})
	require.NoError(t, err)
	require.Equal(t, []string{"--retry-schedule=1s,2s"}, o.Serve, "a flag's value may hold commas")
	require.Equal(t, []string{"--per-webhook=8", "--retry-schedule=1s,2s"}, o.Worker)

	_, err = parseArgs([]string{"--scenario", "nope"})
	require.ErrorContains(t, err, "choose from")
	_, err = parseArgs(nil)
	require.ErrorContains(t, err, "--all or --scenario")
}

// TestReportCPUWithoutServer checks that a PostgreSQL server whose processes were not found yields no
// CPU per event metric, which would count quikly alone, but a note that says why.
func TestReportCPUWithoutServer(t *testing.T) {
	t.Parallel()
	b := &bench{dbs: &postgresDBs{}, pgWhy: "pid 7 on this machine is not the server's backend of that pid"}
	res := &Result{Scenario: "e2e"}
	b.reportCPU(res, "", cpuUse{spent: &cpuSpent{Quikly: 40 * time.Millisecond}, events: 20}, cpuPerEventPostgres)
	require.Empty(t, res.Metrics)
	require.Len(t, res.Notes, 1)
	require.Contains(t, res.Notes[0], "cannot be read on this machine (pid 7")
	require.InDelta(t, 2.0, res.Details["cpu_quikly_ms_per_event"], 0.001, "quikly's own share is still recorded")
}
