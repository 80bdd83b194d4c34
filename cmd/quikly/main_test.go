package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/api"
	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/server"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testenv"
	"github.com/quikly/webhooks/internal/webhook"
)

// binary is quikly built without -race: the subprocess tests measure the service, not the detector.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quikly-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "quikly")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build quikly:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// quikly runs the binary to completion and returns stdout, stderr and the exit code.
func quikly(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

// proc is a running quikly subprocess.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

var addrPattern = regexp.MustCompile(`(?:addr=|http://)(127\.0\.0\.1:\d+)`)

// start runs a long-lived quikly command and waits for the address it listens on.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary, args...))
}

func TestStartupErrorsAreClear(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "q.db")

	_, stderr, code := quikly(t, nil, "serve", "--bogus")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "unknown flag --bogus")

	_, stderr, code = quikly(t, nil, "serve", "--database", "mysql://u:secretpw@h/db")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "sqlite:PATH or postgres://")
	require.NotContains(t, stderr, "secretpw", "passwords are redacted")

	_, stderr, code = quikly(t, nil, "serve", "--database", "sqlite:"+filepath.Join(dir, "missing", "q.db"))
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "missing")

	_, stderr, code = quikly(t, nil, "serve", "--database", db, "--retry-schedule", "30s,soon")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "--retry-schedule")

	p := start(t, "serve", "--database", db, "--addr", "127.0.0.1:0")
	_, stderr, code = quikly(t, nil, "serve", "--database", "sqlite:"+filepath.Join(dir, "other.db"), "--addr", p.addr)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "address already in use")

	_, stderr, code = quikly(t, nil, "worker", "--database", db)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "serve already delivers")
}

// TestNumericFlagsAreValidated: an out-of-range number is refused with a message naming the flag,
// before anything starts (no "serving" line, no database file), instead of a panic or a service that
// never sends.
func TestNumericFlagsAreValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--workers=-1"}, "--workers must be at least 1, got -1"},
		{[]string{"serve", "--workers=0"}, "--workers must be at least 1, got 0"},
		{[]string{"serve", "--per-webhook=-3"}, "--per-webhook must be at least 1, got -3"},
		{[]string{"serve", "--rate-limit=-1"}, "--rate-limit must be 0 (disabled) or a positive number"},
		{[]string{"serve", "--delivery-timeout=0s"}, "--delivery-timeout must be positive"},
		{[]string{"serve", "--log-retention=-1h"}, "--log-retention must be positive"},
		{[]string{"serve", "--retry-schedule=30s,-1m"}, "--retry-schedule"},
		{[]string{"worker", "--database=postgres://nowhere.invalid/db", "--workers=-1"}, "--workers must be at least 1"},
		{[]string{"serve", "--max-webhooks=0"}, "--max-webhooks must be at least 1, got 0"},
		{[]string{"serve", "--per-account=0"}, "--per-account must be at least 1, got 0"},
		{[]string{"serve", "--disable-after=-1h"}, "--disable-after must not be negative"},
		{[]string{"serve", "--workers=many"}, "--workers"},
	} {
		args := append(tc.args, "--database=sqlite:"+path, "--addr=127.0.0.1:0")
		if tc.args[0] == "worker" {
			args = append(tc.args, "--worker-addr=127.0.0.1:0")
		}
		_, stderr, code := quikly(t, nil, args...)
		require.NotEqual(t, 0, code, "%v", tc.args)
		require.Contains(t, stderr, tc.want, "%v", tc.args)
		require.NotContains(t, stderr, "serving", "%v: refused before serving", tc.args)
		require.NotContains(t, stderr, "panic", "%v", tc.args)
		require.NoFileExists(t, path, "%v: refused before opening the database", tc.args)
	}
}

// TestHelpShowsTheDefaults: the flags' defaults come from the Go constants.
func TestHelpShowsTheDefaults(t *testing.T) {
	t.Parallel()
	stdout, _, code := quikly(t, nil, "serve", "--help")
	require.Equal(t, 0, code)
	for _, want := range []string{
		`--workers=` + strconv.Itoa(delivery.WorkersDefault),
		`--per-webhook=` + strconv.Itoa(delivery.PerWebhookDefault),
		`--per-account=` + strconv.Itoa(delivery.PerAccountDefault),
		`--delivery-timeout=` + delivery.TimeoutDefault.String(),
		`--retry-schedule="` + delivery.RetryScheduleDefault + `"`,
		`--rate-limit=` + strconv.Itoa(api.RateLimitDefault),
		`--max-webhooks=` + strconv.Itoa(app.MaxWebhooksDefault),
	} {
		require.Contains(t, stdout, want)
	}
}

func TestAPIKeyCreatePrintsOnlyTheKey(t *testing.T) {
	t.Parallel()
	db := "QUIKLY_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "q.db")
	stdout, _, code := quikly(t, []string{db}, "apikey", "create", "--account", "acme")
	require.Equal(t, 0, code)
	require.Regexp(t, `^qk_[0-9A-Za-z]{32,}\n$`, stdout)
	again, _, _ := quikly(t, []string{db}, "apikey", "create", "--account", "acme")
	require.NotEqual(t, stdout, again)
	_, stderr, code := quikly(t, []string{db}, "apikey", "create")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "--account")
}

func TestEncryptionKeyMustMatch(t *testing.T) {
	t.Parallel()
	db := "QUIKLY_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "q.db")
	key1 := "QUIKLY_ENCRYPTION_KEY=" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	key2 := "QUIKLY_ENCRYPTION_KEY=" + "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	_, _, code := quikly(t, []string{db, key1}, "migrate")
	require.Equal(t, 0, code)
	_, stderr, code := quikly(t, []string{db}, "migrate")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "set QUIKLY_ENCRYPTION_KEY")
	_, stderr, code = quikly(t, []string{db, key2}, "migrate")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "not the key")
	_, stderr, code = quikly(t, []string{db, "QUIKLY_ENCRYPTION_KEY=short"}, "migrate")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "openssl rand -base64 32")
}

func TestEncryptedSecretsAtRest(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "q.db")
	env := []string{"QUIKLY_DATABASE_URL=sqlite:" + path, "QUIKLY_ENCRYPTION_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	key, _, _ := quikly(t, env, "apikey", "create", "--account", "acme")
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	p := startCmd(t, cmd)
	secret := createHook(t, p.addr, strings.TrimSpace(key), "https://crm.example.com/h")
	p.cmd.Process.Signal(syscall.SIGTERM)
	require.NoError(t, <-p.done)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	wal, _ := os.ReadFile(path + "-wal")
	require.NotContains(t, string(raw)+string(wal), secret, "the secret is not stored in clear")
}

// startCmd starts a prepared command and waits for the address it logs that it listens on.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := addrPattern.FindStringSubmatch(sc.Text()); m != nil {
			p.addr = m[1]
			break
		}
	}
	require.NotEmpty(t, p.addr, "quikly %v did not start listening:\n%s", cmd.Args[1:], strings.Join(lines, "\n"))
	go func() { io.Copy(io.Discard, stderr); p.done <- cmd.Wait() }()
	return p
}

// createHook creates a webhook through the API of a running quikly and returns its secret.
func createHook(t *testing.T, addr, key, url string) string {
	t.Helper()
	data := postCreated(t, addr, key, "/webhooks", fmt.Sprintf(`{"name":"hook","url":%q,"events":["proposal.created"]}`, url))
	m := regexp.MustCompile(`"secret":"([^"]+)"`).FindSubmatch(data)
	require.NotNil(t, m)
	return string(m[1])
}

// countingReceiver counts completed deliveries by webhook-id. Each takes a short pause (the endpoint's
// own work), so deliveries are in flight when the process dies; one whose sender went away before the
// answer is not counted, since the service never learnt that it arrived.
type countingReceiver struct {
	*testenv.Receiver
	mu     sync.Mutex
	counts map[string]int
	total  int
	seen   chan struct{}
}

func newCountingReceiver(t *testing.T, pause time.Duration) *countingReceiver {
	r := &countingReceiver{Receiver: testenv.NewReceiver(t), counts: map[string]int{}, seen: make(chan struct{}, 1)}
	r.Handle(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-time.After(pause):
		case <-req.Context().Done():
			return // the sender died mid-request
		}
		r.mu.Lock()
		r.counts[req.Header.Get("webhook-id")]++
		r.total++
		r.mu.Unlock()
		select {
		case r.seen <- struct{}{}:
		default:
		}
	})
	return r
}

func (r *countingReceiver) distinct() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts), r.total
}

// waitFor waits until cond holds, checking whenever the receiver sees a request, up to limit.
func (r *countingReceiver) waitFor(t *testing.T, limit time.Duration, what string, cond func(distinct, total int) bool) {
	t.Helper()
	deadline := time.After(limit)
	for {
		if cond(r.distinct()) {
			return
		}
		select {
		case <-r.seen:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			d, total := r.distinct()
			t.Fatalf("%s: not within %v (distinct %d, total %d)", what, limit, d, total)
		}
	}
}

// backlog publishes n events into the service's database from this process, as another writer.
func backlog(t *testing.T, dbURL string, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := server.OpenStore(ctx, &server.Config{DatabaseURL: dbURL})
	require.NoError(t, err)
	defer db.Close()
	var accountID string
	require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
		acct, err := tx.AccountGetOrCreate(ctx, "acme", time.Now())
		accountID = acct.ID
		return err
	}))
	for i := 0; i < n; i += 100 {
		require.NoError(t, db.Tx(ctx, func(tx store.Tx) error {
			for j := i; j < min(n, i+100); j++ {
				if _, _, err := delivery.Publish(ctx, tx, nil, accountID, webhook.ProposalCreated, map[string]int{"i": j}, time.Now()); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// crashSetup makes an account and a webhook to a counting receiver in a fresh database (dbURL, or
// the one testenv picks) and returns the arguments that serve it.
func crashSetup(t *testing.T, dbURL string) (db string, serveArgs []string, rcv *countingReceiver) {
	db = dbURL
	if db == "" {
		db = testenv.DatabaseURL(t) // SQLite, or PostgreSQL in the suite's PostgreSQL pass
	}
	serveArgs = []string{"serve", "--database", db, "--addr", "127.0.0.1:0", "--allow-private-targets",
		"--delivery-timeout", "2s", "--workers", "16", "--per-webhook", "16"}
	key, _, code := quikly(t, nil, "apikey", "create", "--account", "acme", "--database", db)
	require.Equal(t, 0, code)
	rcv = newCountingReceiver(t, 50*time.Millisecond)
	p := start(t, serveArgs...)
	createHook(t, p.addr, strings.TrimSpace(key), rcv.URL)
	p.cmd.Process.Signal(syscall.SIGTERM)
	require.NoError(t, <-p.done)
	return db, serveArgs, rcv
}

// killAndRestart kills p with -9 while some of the events are undelivered, starts serveArgs again
// and waits until every one of the events has arrived. It returns when the restart began.
func killAndRestart(t *testing.T, p *proc, serveArgs []string, rcv *countingReceiver, events int) time.Time {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
	before, _ := rcv.distinct()
	require.Less(t, before, events, "killed with events undelivered")
	restarted := time.Now()
	start(t, serveArgs...)
	rcv.waitFor(t, 2*time.Minute, "every event delivered", func(d, _ int) bool { return d == events })
	return restarted
}

// TestKill9LosesNothing: a backlog, kill -9 mid-delivery, restart: every event arrives at least once,
// and the attempts the dead process had in flight are taken up within the timeout plus 30 s.
func TestKill9LosesNothing(t *testing.T) {
	t.Parallel()
	const events = 400
	db, serveArgs, rcv := crashSetup(t, "")
	backlog(t, db, events)
	p := start(t, serveArgs...)
	rcv.waitFor(t, time.Minute, "first deliveries", func(d, _ int) bool { return d >= 50 })
	restarted := killAndRestart(t, p, serveArgs, rcv, events)
	_, total := rcv.distinct()
	t.Logf("delivered %d distinct events in %d requests; recovered in %v", events, total, time.Since(restarted))
	require.LessOrEqual(t, total-events, 16, "duplicates only for attempts in flight in the killed process")
	// The attempts cut off by the kill were not counted above, so the last ones to arrive are them,
	// taken up again when their leases expired.
	require.Less(t, time.Since(restarted), 2*time.Second+30*time.Second,
		"in-flight attempts were taken up again within the delivery timeout plus 30 s")
}

// TestKill9KeepsHandedOffDeliveries: once the webhook answers, API creates hand their deliveries
// straight to the dispatcher (no claim); those in flight at kill -9 are delivered after a restart,
// within the delivery timeout plus 30 s, when their leases end.
func TestKill9KeepsHandedOffDeliveries(t *testing.T) {
	t.Parallel()
	const inFlight = 10 // below --per-webhook's 16: every one is handed off
	db := testenv.DatabaseURL(t)
	out, _, code := quikly(t, nil, "apikey", "create", "--account", "acme", "--database", db)
	require.Equal(t, 0, code)
	key := strings.TrimSpace(out)
	rcv := newCountingReceiver(t, time.Second) // each attempt stays in flight for a second
	serveArgs := []string{"serve", "--database", db, "--addr", "127.0.0.1:0", "--allow-private-targets", "--delivery-timeout", "2s"}
	p := start(t, serveArgs...)
	createHook(t, p.addr, key, rcv.URL)
	const handedOff = "quikly_deliveries_handed_off_total"
	creates := 0
	for metric(t, p.addr, handedOff) == 0 { // the first create is claimed; once it answered, they are handed off
		require.Less(t, creates, 20, "no delivery was handed off")
		createProposal(t, p.addr, key)
		creates++
		rcv.waitFor(t, time.Minute, "the delivery", func(d, _ int) bool { return d == creates })
	}
	for range inFlight {
		createProposal(t, p.addr, key)
	}
	creates += inFlight
	require.Equal(t, float64(creates-1), metric(t, p.addr, handedOff), "all but the first handed off")
	restarted := killAndRestart(t, p, serveArgs, rcv, creates)
	require.Less(t, time.Since(restarted), 2*time.Second+30*time.Second,
		"taken up again within the delivery timeout plus 30 s")
}

// createProposal creates a proposal through the API of a running quikly.
func createProposal(t *testing.T, addr, key string) {
	t.Helper()
	postCreated(t, addr, key, "/proposals",
		`{"name":"Site","client_name":"Bo","client_email":"bo@example.test","currency":"USD","line_items":[{"description":"Design","quantity":1,"unit_price":100}]}`)
}

// postCreated POSTs a JSON body to an API path of a running quikly, requires 201 Created and returns
// the answer's body.
func postCreated(t *testing.T, addr, key, path, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/external/v1"+path, strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", data)
	return data
}

// TestSIGTERMFinishesInFlight: SIGTERM mid-delivery exits 0 after finishing in-flight attempts; a
// restart delivers the rest and nothing twice.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	t.Parallel()
	const events = 300
	db, serveArgs, rcv := crashSetup(t, "")
	backlog(t, db, events)
	p := start(t, serveArgs...)
	rcv.waitFor(t, time.Minute, "first deliveries", func(d, _ int) bool { return d >= 50 })
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-p.done, "exit 0 on SIGTERM")
	before, _ := rcv.distinct()
	require.Less(t, before, events, "stopped mid-backlog")

	start(t, serveArgs...)
	rcv.waitFor(t, 2*time.Minute, "every event delivered", func(d, _ int) bool { return d == events })
	_, total := rcv.distinct()
	require.Equal(t, events, total, "attempts in flight at SIGTERM finished and were recorded: nothing sent twice")
}

func TestListenVerifiesDeliveries(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	w := createHookEnv(t, e)
	cmd := exec.Command(binary, "listen", "--listen-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "QUIKLY_LISTEN_SECRET="+w.secret)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := startCmd(t, cmd)
	lines := bufio.NewScanner(stdout)

	res := e.Do(e.Key, "PUT", "/webhooks/"+w.id, map[string]any{"url": "http://" + p.addr + "/"})
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	entry := e.Do(e.Key, "POST", "/webhooks/"+w.id+"/test", nil).JSON(t)
	require.Equal(t, "succeeded", entry["status"], "listen answered 200: %v", entry)
	require.True(t, lines.Scan())
	require.Regexp(t, `^\S+Z test `+entry["event_id"].(string)+` verified$`, lines.Text())

	forged, err := http.Post("http://"+p.addr+"/", "application/json", strings.NewReader(`{"event":"test"}`))
	require.NoError(t, err)
	forged.Body.Close()
	require.Equal(t, http.StatusBadRequest, forged.StatusCode)
	require.True(t, lines.Scan())
	require.Contains(t, lines.Text(), "INVALID")
}

type hook struct{ id, secret string }

func createHookEnv(t *testing.T, e *testenv.Env) hook {
	res := e.Do(e.Key, "POST", "/webhooks", map[string]any{"name": "listen", "url": "http://127.0.0.1:1/", "events": []string{"proposal.created"}})
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	m := res.JSON(t)
	return hook{m["id"].(string), m["secret"].(string)}
}
