package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// TestSmoke runs every scenario at smoke size on SQLite, as CI does.
func TestSmoke(t *testing.T) {
	t.Parallel()
	rep, table := smoke(t, "--all")
	require.Equal(t, "sqlite", rep.Database)
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Scenario)
		requireAllDelivered(t, r)
		require.NotEmpty(t, r.Metrics, r.Scenario)
	}
	require.Equal(t, scenarioNames, names, "every scenario ran, in order")
	require.Empty(t, rep.Failed())
	for _, name := range scenarioNames {
		require.Contains(t, table, name)
	}
	require.Contains(t, table, "ratio to ceiling", "drain and e2e are compared with the ceiling of the same run")
}

// TestSmokePostgres runs drain at smoke size on the PostgreSQL of QUIKLY_TEST_DATABASE_URL, once
// quikly supports PostgreSQL.
func TestSmokePostgres(t *testing.T) {
	t.Parallel()
	dbURL := os.Getenv("QUIKLY_TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("QUIKLY_TEST_DATABASE_URL is not set")
	}
	rep, _ := smoke(t, "--scenario", "drain", "--database", dbURL)
	require.Equal(t, "postgres", rep.Database)
	for _, r := range rep.Results {
		if strings.Contains(r.Error, "not supported by this build") {
			t.Skip("this build of quikly has no PostgreSQL store yet: ", r.Error)
		}
		requireAllDelivered(t, r)
	}
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

	_, err = parseArgs([]string{"--scenario", "nope"})
	require.ErrorContains(t, err, "choose from")
	_, err = parseArgs(nil)
	require.ErrorContains(t, err, "--all or --scenario")
}
