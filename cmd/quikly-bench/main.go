// Command quikly-bench measures Quikly Webhooks end to end. It starts its own loopback receiver, which
// verifies the signatures of every request, starts `quikly serve` as a subprocess on SQLite or
// PostgreSQL (a fresh database per scenario), runs named scenarios against it, prints a table of
// what it measured against the targets, and writes the same as JSON.
//
//	go run ./cmd/quikly-bench --all
//	go run ./cmd/quikly-bench --scenario ceiling --scenario drain --database postgres://…
//	go run ./cmd/quikly-bench --all --smoke   # tiny sizes: checks that everything arrives, verified
//
// Scenarios: ceiling (raw signed POSTs to the receiver, no queue: the physical limit of the run),
// drain (a queued backlog to one webhook), e2e (concurrent API clients), scaleout (PostgreSQL only:
// quikly serve and two quikly worker processes on one database, a drain and an e2e, everything
// delivered once), paced (a steady event rate), fanout (one event to many webhooks), isolation (a
// hanging endpoint beside a healthy one), noisy (one account's steady events beside another's
// hundreds of hung webhooks) and backlog (a million pending deliveries: memory and first claim).
// Ratios compare rates of the same run.
//
// drain, e2e and scaleout report CPU per delivered event, read from /proc over the scenario's
// measured interval: quikly's processes plus, on PostgreSQL, every process of the database server
// (which must run on this machine; otherwise a note says that it was not measured). SQLite runs
// inside quikly's process, so there quikly's CPU is the whole cost.
//
// soak (only with --scenario soak) creates events for --duration while killing and restarting
// quikly, cutting its database connections, pausing webhooks, rotating secrets and breaking
// receivers, then checks that nothing was lost (see soak.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
)

// scenarioNames are the scenarios in the order they run.
var scenarioNames = []string{"ceiling", "drain", "e2e", "scaleout", "paced", "fanout", "isolation", "noisy", "backlog"}

// ceilingScenarios report a ratio to the ceiling, which must come from the same run.
var ceilingScenarios = []string{"drain", "e2e", "scaleout"}

// soloScenarios run only when named with --scenario, never with --all: soak is minutes of injected
// faults, not a measurement of speed.
var soloScenarios = []string{"soak"}

// cli is the command line. Size flags left at zero take the default of the mode (full or --smoke).
type cli struct {
	All      bool     `help:"Run every scenario."`
	Scenario []string `name:"scenario" short:"s" placeholder:"NAME" help:"Scenario to run (repeatable): ceiling, drain, e2e, scaleout (PostgreSQL only), paced, fanout, isolation, noisy, backlog, soak (not part of --all)."`
	Database string   `name:"database" default:"sqlite" placeholder:"sqlite|postgres://…" help:"sqlite (a temporary file per scenario) or the URL of a PostgreSQL server (a fresh database per scenario, dropped after)."`
	Quikly   string   `name:"quikly" type:"path" placeholder:"PATH" help:"quikly binary to measure; by default ./cmd/quikly is built into a temporary directory (without -race)."`
	JSON     string   `name:"json" default:"bench-results/results.json" placeholder:"FILE" help:"Where to write the results as JSON."`
	Smoke    bool     `help:"Tiny sizes and short durations (CI): checks that everything is delivered and verified."`
	Verbose  bool     `short:"v" help:"Echo quikly's log."`
	Serve    []string `name:"quikly-arg" sep:"none" placeholder:"FLAG" help:"Extra flag of quikly serve in every scenario, e.g. --quikly-arg=--per-webhook=32 (repeatable; recorded in the results)."`
	Worker   []string `name:"worker-arg" sep:"none" placeholder:"FLAG" help:"Extra flag of the quikly worker processes of scaleout, e.g. --worker-arg=--per-webhook=32 (repeatable; recorded in its result). --quikly-arg is not passed to them: some of serve's flags are not the worker's."`

	CeilingRequests   int           `name:"ceiling-requests" help:"Requests per ceiling run (20000; smoke 1000)."`
	CeilingClients    []int         `name:"ceiling-clients" sep:"," placeholder:"N" help:"Concurrent clients of each ceiling run; the best run is the ceiling (16,64; smoke 16)."`
	DrainEvents       int           `name:"drain-events" help:"Queued deliveries of drain and of scaleout's drain (20000; smoke 200)."`
	E2EClients        int           `name:"e2e-clients" help:"Concurrent API clients of e2e and of scaleout's e2e (32; smoke 8)."`
	E2EDuration       time.Duration `name:"e2e-duration" help:"How long e2e and scaleout's e2e create lead sessions (30s; smoke 2s)."`
	PacedRate         int           `name:"paced-rate" help:"Events per second of paced (300; smoke 50)."`
	PacedDuration     time.Duration `name:"paced-duration" help:"How long paced runs (30s; smoke 2s)."`
	FanoutWebhooks    int           `name:"fanout-webhooks" help:"Webhooks subscribed to the fanout event (1000; smoke 20)."`
	FanoutEvents      int           `name:"fanout-events" help:"Events fanned out, one after another (10; smoke 3)."`
	IsolationEvents   int           `name:"isolation-events" help:"Deliveries to the healthy endpoint in each isolation pass (10000; smoke 200)."`
	IsolationBacklog  int           `name:"isolation-backlog" help:"Deliveries queued for the hanging endpoint (5000; smoke 100)."`
	IsolationTimeout  time.Duration `name:"isolation-timeout" help:"quikly's --delivery-timeout in isolation, how long the hanging endpoint holds each request (2s; smoke 1s)."`
	BacklogDeliveries int           `name:"backlog-deliveries" help:"Pending deliveries of backlog (1000000; smoke 2000)."`
	NoisyWebhooks     []int         `name:"noisy-webhooks" sep:"," placeholder:"N" help:"Hung webhooks of the noisy account, one pass each (50,500; smoke 5)."`
	BacklogSettle     time.Duration `name:"backlog-settle" help:"How long quikly runs on the backlog before its memory is read (5s; smoke 1s)."`
	SoakDuration      time.Duration `name:"duration" help:"How long soak creates events under injected faults (10m; smoke 60s)."`
	SoakRate          int           `name:"soak-rate" help:"Events per second that soak creates, across its accounts (20)."`
	Seed              uint64        `name:"seed" help:"Seed of soak's chaos (0: a random one, printed; give it again to replay the same faults)."`
}

// sizes are the sizes and durations of the scenarios.
type sizes struct {
	CeilingRequests   int
	CeilingClients    []int
	DrainEvents       int
	E2EClients        int
	E2EDuration       time.Duration
	PacedRate         int
	PacedDuration     time.Duration
	FanoutWebhooks    int
	FanoutEvents      int
	IsolationEvents   int
	IsolationBacklog  int
	IsolationTimeout  time.Duration
	BacklogDeliveries int
	BacklogSettle     time.Duration
	NoisyWebhooks     []int
	NoisyBacklog      int
	NoisyRate         int
	NoisyDuration     time.Duration
	SoakDuration      time.Duration
	SoakRate          int
}

// defaultSizes are those of the issue, or tiny ones for a smoke run.
func defaultSizes(smoke bool) (s sizes) {
	defer noisyDefaults(&s, smoke)
	if smoke {
		return sizes{CeilingRequests: 1000, CeilingClients: []int{16}, DrainEvents: 200, E2EClients: 8,
			E2EDuration: 2 * time.Second, PacedRate: 50, PacedDuration: 2 * time.Second, FanoutWebhooks: 20,
			FanoutEvents: 3, IsolationEvents: 200, IsolationBacklog: 100, IsolationTimeout: time.Second,
			BacklogDeliveries: 2000, BacklogSettle: time.Second, SoakDuration: time.Minute, SoakRate: 20}
	}
	return sizes{CeilingRequests: 20000, CeilingClients: []int{16, 64}, DrainEvents: 20000, E2EClients: 32,
		E2EDuration: 30 * time.Second, PacedRate: 300, PacedDuration: 30 * time.Second, FanoutWebhooks: 1000,
		FanoutEvents: 10, IsolationEvents: 10000, IsolationBacklog: 5000, IsolationTimeout: 2 * time.Second,
		BacklogDeliveries: 1_000_000, BacklogSettle: 5 * time.Second, SoakDuration: 10 * time.Minute, SoakRate: 20}
}

// options is a resolved command line.
type options struct {
	Scenarios []string
	Database  string
	Quikly    string
	JSON      string
	Smoke     bool
	Verbose   bool
	// Serve are extra flags of quikly serve, after the benchmark's own; Worker those of quikly worker.
	Serve, Worker []string
	Sizes         sizes
	// Seed is soak's chaos seed; 0 picks one.
	Seed uint64
}

// options resolves the command line: which scenarios, and the sizes of the mode with overrides.
func (c *cli) options() (*options, error) {
	o := &options{Database: c.Database, Quikly: c.Quikly, JSON: c.JSON, Smoke: c.Smoke, Verbose: c.Verbose,
		Serve: c.Serve, Worker: c.Worker, Sizes: defaultSizes(c.Smoke), Seed: c.Seed}
	every := slices.Concat(scenarioNames, soloScenarios)
	for _, s := range c.Scenario {
		if !slices.Contains(every, s) {
			return nil, fmt.Errorf("--scenario %q: choose from %s", s, strings.Join(every, ", "))
		}
	}
	switch {
	case c.All:
		o.Scenarios = slices.Clone(scenarioNames)
	case len(c.Scenario) > 0:
		want := slices.Clone(c.Scenario)
		// Ratios to the ceiling must come from the same run.
		if slices.ContainsFunc(want, func(s string) bool { return slices.Contains(ceilingScenarios, s) }) {
			want = append(want, "ceiling")
		}
		for _, s := range every {
			if slices.Contains(want, s) {
				o.Scenarios = append(o.Scenarios, s)
			}
		}
	default:
		return nil, errors.New("say what to run: --all or --scenario NAME")
	}
	s := &o.Sizes
	setInt(&s.CeilingRequests, c.CeilingRequests)
	setInt(&s.DrainEvents, c.DrainEvents)
	setInt(&s.E2EClients, c.E2EClients)
	setInt(&s.PacedRate, c.PacedRate)
	setInt(&s.FanoutWebhooks, c.FanoutWebhooks)
	setInt(&s.FanoutEvents, c.FanoutEvents)
	setInt(&s.IsolationEvents, c.IsolationEvents)
	setInt(&s.IsolationBacklog, c.IsolationBacklog)
	setInt(&s.BacklogDeliveries, c.BacklogDeliveries)
	setInt(&s.E2EDuration, c.E2EDuration)
	setInt(&s.PacedDuration, c.PacedDuration)
	setInt(&s.IsolationTimeout, c.IsolationTimeout)
	setInt(&s.BacklogSettle, c.BacklogSettle)
	setInt(&s.SoakDuration, c.SoakDuration)
	setInt(&s.SoakRate, c.SoakRate)
	if len(c.CeilingClients) > 0 {
		s.CeilingClients = c.CeilingClients
	}
	if len(c.NoisyWebhooks) > 0 {
		s.NoisyWebhooks = c.NoisyWebhooks
	}
	for _, n := range s.CeilingClients {
		if n <= 0 {
			return nil, errors.New("--ceiling-clients must be positive")
		}
	}
	if s.CeilingRequests < 0 || s.DrainEvents < 0 || s.E2EClients < 0 || s.PacedRate < 0 || s.FanoutWebhooks < 0 ||
		s.FanoutEvents < 0 || s.IsolationEvents < 0 || s.IsolationBacklog < 0 || s.BacklogDeliveries < 0 ||
		s.E2EDuration < 0 || s.PacedDuration < 0 || s.IsolationTimeout < 0 || s.BacklogSettle < 0 ||
		s.SoakDuration < 0 || s.SoakRate < 0 {
		return nil, errors.New("sizes and durations must be positive")
	}
	return o, nil
}

// setInt overrides *dst with v unless v is zero (the flag was not given).
func setInt[T int | time.Duration](dst *T, v T) {
	if v != 0 {
		*dst = v
	}
}

// parseArgs parses the command line.
func parseArgs(args []string) (*options, error) {
	var c cli
	parser, err := kong.New(&c, kong.Name("quikly-bench"),
		kong.Description("Benchmarks Quikly Webhooks against its own verifying loopback receiver."))
	if err != nil {
		return nil, err
	}
	if _, err := parser.Parse(args); err != nil {
		return nil, err
	}
	return c.options()
}

func main() {
	if ceilingClientMain() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "quikly-bench:", err)
		os.Exit(2)
	}
	rep, err := run(ctx, o, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quikly-bench:", err)
		os.Exit(1)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		for _, r := range failed {
			fmt.Fprintf(os.Stderr, "quikly-bench: %s failed: delivered %d of %d, %d unverified %s%s\n",
				r.Scenario, r.Delivered, r.Expected, r.Unverified, r.FirstUnverified, r.Error)
		}
		os.Exit(1)
	}
}

// bench is one run: its options, the quikly binary, where databases come from, and the ceiling that
// later scenarios are compared with.
type bench struct {
	o        *options
	sz       sizes
	bin      string
	dbs      databases
	progress io.Writer
	// ceiling is the best raw rate of the ceiling scenario of this run; 0 until it has run.
	ceiling float64
	// pg is the PostgreSQL server on this machine whose CPU is measured with quikly's; nil with
	// SQLite, or when it is not on this machine, which pgWhy then explains.
	pg    *pgServer
	pgWhy string
}

// commonArgs are the flags of quikly serve in every scenario: the benchmark's, then --quikly-arg.
func (b *bench) commonArgs() []string {
	// fanout subscribes all its webhooks in one account: more than --max-webhooks allows by default.
	maxHooks := "--max-webhooks=" + strconv.Itoa(max(b.sz.FanoutWebhooks, 100))
	return append([]string{"--allow-private-targets", "--rate-limit=0", maxHooks, "--retry-schedule", "1s,5s,30s"}, b.o.Serve...)
}

// workerArgs are the flags of quikly worker (scaleout): serve's delivery flags, then --worker-arg.
func (b *bench) workerArgs() []string {
	return append([]string{"--allow-private-targets", "--retry-schedule", "1s,5s,30s"}, b.o.Worker...)
}

// run runs the scenarios of o, prints the table to out and writes the JSON file. Progress goes to
// progress. An error means the run could not be set up; scenario failures are in the report.
func run(ctx context.Context, o *options, out, progress io.Writer) (*Report, error) {
	tmp, err := os.MkdirTemp("", "quikly-bench")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &bench{o: o, sz: o.Sizes, bin: o.Quikly, progress: progress}
	if b.bin == "" {
		fmt.Fprintln(progress, "building ./cmd/quikly …")
		if b.bin, err = buildQuikly(ctx, tmp); err != nil {
			return nil, err
		}
	}
	if b.dbs, err = openDatabases(o.Database, tmp); err != nil {
		return nil, err
	}
	rep := &Report{StartedAt: time.Now().UTC(), Database: b.dbs.Kind(), Smoke: o.Smoke, GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	// The notes are about the benchmark scenarios; soak says how it runs quikly in its own result.
	if slices.ContainsFunc(o.Scenarios, func(s string) bool { return !slices.Contains(soloScenarios, s) }) {
		rep.QuiklyArgs, rep.Notes = b.commonArgs(), []string{
			"quikly serve runs with --rate-limit 0 (disabled): the API's per-key rate limit (100/s by default) is out of the way, so e2e and paced measure the service rather than the limiter.",
			"quikly serve runs with --retry-schedule 1s,5s,30s, so that a failed attempt shows up within the run as a duplicate request (reported) instead of stalling it.",
			"Ratios compare rates measured in this run on this machine; the receiver, the load generators and quikly share its CPUs.",
			"Latencies run from when a create request was sent (paced: when it was scheduled) to when the receiver had read the delivery.",
		}
	}
	measuresCPU := slices.ContainsFunc(o.Scenarios, func(s string) bool { return slices.Contains(ceilingScenarios, s) })
	switch {
	case measuresCPU && b.dbs.Kind() == "sqlite":
		rep.Notes = append(rep.Notes, "CPU per event is quikly's own: SQLite runs inside its process.")
	case measuresCPU:
		if b.pg, err = findPostgres(ctx, o.Database); err != nil {
			b.pgWhy = err.Error()
			rep.Notes = append(rep.Notes, "The database server's CPU is not measured: "+b.pgWhy+".")
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("CPU per event counts every process of the PostgreSQL server (postmaster pid %d: backends, background writers, autovacuum, backends that exited), other databases' included: run on a quiet machine; cpu_database_backends_s is the share of the scenario's own database's backends.", b.pg.postmaster))
		}
	}
	scenarios := map[string]func(context.Context, *Result) error{
		"ceiling": b.runCeiling, "drain": b.runDrain, "e2e": b.runE2E, "scaleout": b.runScaleout, "paced": b.runPaced,
		"fanout": b.runFanout, "isolation": b.runIsolation, "noisy": b.runNoisy, "backlog": b.runBacklog, "soak": b.runSoak,
	}
	for _, name := range o.Scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(progress, "== %s\n", name)
		res := &Result{Scenario: name}
		start := time.Now()
		if err := scenarios[name](ctx, res); err != nil {
			res.Error = err.Error()
			fmt.Fprintf(progress, "   error: %v\n", err)
		}
		res.Seconds = round(time.Since(start).Seconds())
		if res.Skipped != "" {
			fmt.Fprintf(progress, "   skipped: %s\n", res.Skipped)
		}
		for _, m := range res.Metrics {
			fmt.Fprintf(progress, "   %s: %s\n", m.Name, formatValue(m.Value, m.Unit))
		}
		rep.Results = append(rep.Results, res)
	}
	printTable(out, rep)
	if err := writeJSON(o.JSON, rep); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "\nresults written to %s\n", o.JSON)
	return rep, ctx.Err()
}
