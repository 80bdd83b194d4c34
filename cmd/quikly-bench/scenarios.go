package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Wait limits. Every wait is bounded by both: stall (no request at all reached the receiver for that
// long) and a total that grows with the work.
const (
	stallLimit = 60 * time.Second
	// minWait is the least total time a wait for deliveries gets; perItemWait is added per delivery
	// expected (a floor of 1,000 deliveries/s, far below anything healthy).
	minWait     = 2 * time.Minute
	perItemWait = time.Millisecond
	// drainAllMax is the largest backlog that the backlog scenario waits to drain; above it (the full
	// million) only memory and the first claim are measured.
	drainAllMax = 50_000
	// pacedInFlightMax bounds the open-loop generator of paced: a create that would exceed it is
	// skipped and counted instead of piling up goroutines.
	pacedInFlightMax = 256
	// clientErrorsMax stops an e2e client after so many consecutive failed creates (quikly is gone).
	clientErrorsMax = 50
)

func waitLimit(items int) time.Duration { return minWait + time.Duration(items)*perItemWait }

// Targets of issue 18 (ratios and costs measured in one run, so they hold on any machine), and those
// of earlier issues that it keeps.
const (
	drainRatioTarget = 0.50
	e2eRatioSQLite   = 0.25
	e2eRatioPostgres = 0.08
	// cpuPerEventSQLite and cpuPerEventPostgres bound e2e's CPU per delivered event, in ms: quikly's
	// processes plus the database server's (SQLite runs inside quikly).
	cpuPerEventSQLite   = 0.25
	cpuPerEventPostgres = 0.8
	pacedP99SQLite      = 25.0 // ms
	pacedP99Postgres    = 50.0 // ms
	isolationTarget     = 0.9
	backlogRSSTarget    = 256.0 // MiB
	firstClaimTarget    = 100.0 // ms
)

// byDatabase picks the target of the run's database.
func (b *bench) byDatabase(sqlite, postgres float64) float64 {
	if b.dbs.Kind() == "sqlite" {
		return sqlite
	}
	return postgres
}

// The ceiling's requests.
const (
	ceilingUserAgent = "Quikly-Webhooks/bench"
	// ceilingHookID names the made-up webhook the ceiling signs for.
	ceilingHookID = "wh_ceiling"
	// ceilingSendTimeout is quikly's default delivery timeout.
	ceilingSendTimeout = 10 * time.Second
)

// runCeiling measures the physical limit of the run: signed POSTs, exactly like quikly's (same
// headers, same body size, same signing, keep-alive), sent by a pool of clients straight to a
// receiver like the one every other scenario uses, with no queue and no database. For each client
// count of --ceiling-clients it runs the clients twice: in a separate process, as quikly's sender is,
// and inside the receiver's process. The ceiling is the best of all runs, whichever placement made it:
// a limit the machine reached is a limit, and taking a lower one would flatter the ratios.
func (b *bench) runCeiling(ctx context.Context, res *Result) error {
	rcv, err := newReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()
	secret := webhook.NewSecret()
	if err := rcv.register(ceilingHookID, secret, false); err != nil {
		return err
	}
	n := b.sz.CeilingRequests
	var errs []error
	best, bestIn := math.NaN(), math.NaN()
	for _, clients := range b.sz.CeilingClients {
		p := ceilingParams{URL: rcv.URL + "/ceiling", Secret: secret, N: n, Clients: clients}
		rate, err := ceilingSubprocess(ctx, p)
		res.detail("separate_process_per_s_with_"+strconv.Itoa(clients)+"_clients", round(rate))
		if err != nil {
			errs = append(errs, fmt.Errorf("%d clients in a separate process: %w", clients, err))
		} else if math.IsNaN(best) || rate > best {
			best = rate
		}
		rate, err = ceilingRun(ctx, p)
		res.detail("same_process_per_s_with_"+strconv.Itoa(clients)+"_clients", round(rate))
		if err != nil {
			errs = append(errs, fmt.Errorf("%d clients in the receiver's process: %w", clients, err))
		} else if math.IsNaN(bestIn) || rate > bestIn {
			bestIn = rate
		}
	}
	res.Expected = 2 * n * len(b.sz.CeilingClients)
	res.Delivered = rcv.hook(ceilingHookID).Distinct
	res.Requests, res.Unverified, res.FirstUnverified = rcv.totals()
	res.detail("body_bytes", len(ceilingBody(0)))
	ceiling := best
	if math.IsNaN(ceiling) || bestIn > ceiling {
		ceiling = bestIn
	}
	res.metric("signed POSTs/s (ceiling: best run)", ceiling, "/s")
	res.metric("best, client in a separate process", best, "/s")
	res.metric("best, client in receiver's process", bestIn, "/s")
	if len(errs) == 0 {
		b.ceiling = ceiling
	}
	return errors.Join(errs...)
}

// ceilingClientEnv names the environment variable that makes this binary (or the test binary) the
// ceiling's client process; it holds a ceilingParams as JSON.
const ceilingClientEnv = "QUIKLY_BENCH_CEILING_CLIENT"

// ceilingParams say what one ceiling run sends.
type ceilingParams struct {
	URL     string
	Secret  string
	N       int
	Clients int
}

// ceilingOutcome is what the client process reports on stdout.
type ceilingOutcome struct {
	Rate  float64
	Error string
}

// ceilingClientMain runs the ceiling's client when the environment asks for it, and reports whether
// it did; main and TestMain call it first.
func ceilingClientMain() bool {
	raw := os.Getenv(ceilingClientEnv)
	if raw == "" {
		return false
	}
	var p ceilingParams
	out := ceilingOutcome{}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		out.Error = "decode parameters: " + err.Error()
	} else if rate, err := ceilingRun(context.Background(), p); err != nil {
		out.Rate, out.Error = rate, err.Error()
	} else {
		out.Rate = rate
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return true
}

// ceilingSubprocess runs one ceiling run in a child process of this same binary.
func ceilingSubprocess(ctx context.Context, p ceilingParams) (float64, error) {
	self, err := os.Executable()
	if err != nil {
		return math.NaN(), fmt.Errorf("find own binary: %w", err)
	}
	params, _ := json.Marshal(p) // plain fields always encode
	ctx, cancel := context.WithTimeout(ctx, waitLimit(p.N))
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), ceilingClientEnv+"="+string(params))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return math.NaN(), fmt.Errorf("ceiling client: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var out ceilingOutcome
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return math.NaN(), fmt.Errorf("ceiling client: %q: %w", stdout.String(), err)
	}
	if out.Error != "" {
		return out.Rate, errors.New(out.Error)
	}
	return out.Rate, nil
}

// ceilingBody is the body of request i: a lead_session.created body of the same size as the queued
// deliveries of drain.
func ceilingBody(i int) []byte {
	data := fmt.Appendf(nil, `{"lead_session_id":%q,"channel":"api","channel_id":"c-%d","client_name":"Bench Client","brief":%q,"status":"gathering_info"}`,
		randid.New("ls_"), i, benchBrief)
	return webhook.Body(webhook.LeadSessionCreated, time.Now(), ceilingHookID, data)
}

// ceilingRun sends p.N signed POSTs from p.Clients concurrent clients and returns requests per
// second.
func ceilingRun(ctx context.Context, p ceilingParams) (float64, error) {
	n, clients, url, secret := p.N, p.Clients, p.URL, p.Secret
	key, err := webhook.SecretKey(secret)
	if err != nil {
		return math.NaN(), err
	}
	// Bodies and ids are made before the clock starts: quikly's are in the database already.
	bodies := make([][]byte, n)
	ids := make([]string, n)
	for i := range n {
		bodies[i], ids[i] = ceilingBody(i), randid.New("evt_")
	}
	// The transport is configured as quikly's sender's is.
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: clients,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var next, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := ceilingSend(ctx, client, url, secret, key, ids[i], bodies[i]); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return math.NaN(), err
	}
	if f := failed.Load(); f > 0 {
		return float64(int64(n)-f) / elapsed.Seconds(), fmt.Errorf("%d of %d requests failed, first: %w", f, n, firstErr)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// ceilingSend makes one request as quikly's sender does: sign both headers at send time, one
// deadline for the whole request, read (at most 64 KiB of) the answer.
func ceilingSend(ctx context.Context, client *http.Client, url, secret string, key []byte, eventID string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, ceilingSendTimeout)
	defer cancel()
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {ceilingUserAgent},
		"X-Quikly-Event":      {webhook.LeadSessionCreated},
		"X-Quikly-Signature":  {webhook.SignQuikly(secret, body)},
		"X-Quikly-Timestamp":  {ts},
		"X-Quikly-Webhook-Id": {ceilingHookID},
		"webhook-id":          {eventID},
		"webhook-timestamp":   {ts},
		"webhook-signature":   {webhook.SignStandard([][]byte{key}, eventID, now.Unix(), body)},
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, delivery.ResponseBodyMax)); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// ratioToCeiling adds the metric prefix+"ratio to ceiling": rate ÷ the ceiling of this run, with
// target t when t > 0.
func (b *bench) ratioToCeiling(res *Result, prefix string, rate, t float64) {
	if b.ceiling <= 0 || math.IsNaN(b.ceiling) {
		res.Notes = append(res.Notes, prefix+"no ratio: the ceiling of this run was not measured")
		return
	}
	m := res.metric(prefix+"ratio to ceiling", rate/b.ceiling, "ratio")
	if t > 0 {
		m.atLeast(t)
	}
}

// runDrain queues deliveries to one webhook while quikly is stopped, starts it, and measures how fast
// it delivers them all: from the moment it is ready to the last receipt.
func (b *bench) runDrain(ctx context.Context, res *Result) (err error) {
	e, err := b.newEnv(ctx, "drain", 4)
	if err != nil {
		return err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	out, err := b.drainPass(ctx, res, e, "", 0)
	if err != nil {
		return err
	}
	res.metric("deliveries/s", out.rate, "/s")
	b.ratioToCeiling(res, "", out.rate, drainRatioTarget)
	b.reportCPU(res, "", out.cpu, 0)
	return nil
}

// drainOutcome is what one drain measured.
type drainOutcome struct {
	// rate is deliveries per second, from when the first quikly process was ready to the last receipt.
	rate       float64
	cpu        cpuUse
	duplicates int
}

// drainPass queues DrainEvents deliveries to a new webhook of e while quikly is stopped, then starts
// quikly serve (with workers quikly worker processes, all at once) and waits until every delivery
// has arrived. CPU is measured from when every process is ready. Details are named with prefix.
func (b *bench) drainPass(ctx context.Context, res *Result, e *env, prefix string, workers int) (out drainOutcome, err error) {
	n := b.sz.DrainEvents
	hook, err := e.hook(ctx, "drain", false, webhook.LeadSessionCreated)
	if err != nil {
		return out, err
	}
	if err := e.stop(); err != nil {
		return out, err
	}
	if err := b.queueWith(ctx, res, e, func(st store.Store, account string) error {
		return publish(ctx, st, account, n, 500)
	}); err != nil {
		return out, err
	}
	if workers == 0 {
		err = e.start(ctx)
	} else {
		err = e.startWorkers(ctx, workers)
	}
	if err != nil {
		return out, err
	}
	var started, firstReady, lastReady time.Time
	for _, svc := range e.processes() {
		if started.IsZero() || svc.Started.Before(started) {
			started = svc.Started
		}
		if firstReady.IsZero() || svc.Ready.Before(firstReady) {
			firstReady = svc.Ready
		}
		if svc.Ready.After(lastReady) {
			lastReady = svc.Ready
		}
	}
	before := e.rcv.hook(hook).Distinct
	meter := b.startCPU(e)
	res.Expected += n
	werr := e.rcv.waitFor(ctx, e.name, func() bool { return e.rcv.hook(hook).Distinct >= n }, stallLimit, waitLimit(n))
	out.cpu.spent, out.cpu.err = meter.stop(ctx)
	h := e.rcv.hook(hook)
	out.cpu.events = h.Distinct - before
	out.duplicates = h.Requests - h.Distinct
	res.Delivered += h.Distinct
	res.detail(prefix+"startup_ms", round(ms(lastReady.Sub(started))))
	res.detail(prefix+"duplicate_requests", out.duplicates)
	if workers > 0 {
		b.succeededBy(ctx, res, e, prefix)
	}
	if werr != nil {
		return out, werr
	}
	out.rate = float64(n) / h.Last.Sub(firstReady).Seconds()
	return out, nil
}

// cpuPerDelivery records the CPU time quikly has used since it started, per delivery: the cost that
// bounds its rate once the machine's CPUs are busy.
func cpuPerDelivery(res *Result, svc *service, deliveries int) {
	cpu, err := cpuTime(svc.Pid())
	if err != nil || deliveries == 0 {
		return
	}
	res.detail("quikly_cpu_seconds", round(cpu.Seconds()))
	res.detail("quikly_cpu_us_per_delivery", round(float64(cpu.Microseconds())/float64(deliveries)))
}

// runE2E runs concurrent API clients creating lead sessions (each publishing lead_session.created to
// one subscribed webhook) for a while, then waits until every accepted event has arrived.
func (b *bench) runE2E(ctx context.Context, res *Result) (err error) {
	e, err := b.newEnv(ctx, "e2e", b.sz.E2EClients)
	if err != nil {
		return err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	hook, err := e.hook(ctx, "e2e", false, webhook.LeadSessionCreated)
	if err != nil {
		return err
	}
	out, err := b.e2ePass(ctx, res, e, hook, "")
	res.metric("accepted events/s", out.acceptedRate, "/s")
	res.metric("delivered events/s", out.deliveredRate, "/s")
	if out.complete {
		b.ratioToCeiling(res, "", out.deliveredRate, b.byDatabase(e2eRatioSQLite, e2eRatioPostgres))
	}
	b.reportCPU(res, "", out.cpu, b.byDatabase(cpuPerEventSQLite, cpuPerEventPostgres))
	res.metric("create→receipt p50", out.latency.P50, "ms")
	res.metric("create→receipt p99", out.latency.P99, "ms")
	return err
}

// e2eOutcome is what one e2e load measured.
type e2eOutcome struct {
	acceptedRate float64
	// deliveredRate is accepted events delivered per second, from the first create to the last
	// receipt; NaN when none arrived.
	deliveredRate float64
	// complete says whether every accepted event arrived.
	complete   bool
	latency    latencies
	cpu        cpuUse
	duplicates int
}

// e2ePass runs E2EClients concurrent API clients against e's quikly serve, creating lead sessions
// (each publishing lead_session.created to hook) for E2EDuration, then waits until every accepted
// event has arrived at hook. CPU is measured from the first create to the end of the wait. Details
// are named with prefix.
func (b *bench) e2ePass(ctx context.Context, res *Result, e *env, hook, prefix string) (*e2eOutcome, error) {
	clients, dur := b.sz.E2EClients, b.sz.E2EDuration
	type created struct {
		id     string
		at     time.Time // when the create request was sent
		answer time.Duration
	}
	var (
		mu       sync.Mutex
		all      []created
		failures = map[string]int{}
		seq      atomic.Int64
		wg       sync.WaitGroup
	)
	meter := b.startCPU(e)
	start := time.Now()
	deadline := start.Add(dur)
	for range clients {
		wg.Go(func() {
			var mine []created
			consecutive := 0
			for time.Now().Before(deadline) && ctx.Err() == nil && consecutive < clientErrorsMax {
				at := time.Now()
				id, status, err := e.api.createLeadSession(ctx, int(seq.Add(1)))
				if err != nil {
					consecutive++
					mu.Lock()
					failures[failureKey(status, err)]++
					mu.Unlock()
					continue
				}
				consecutive = 0
				mine = append(mine, created{id, at, time.Since(at)})
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	genEnd := time.Now()
	accepted := len(all)
	res.Expected += accepted
	werr := e.rcv.waitFor(ctx, e.name, func() bool { return e.rcv.hook(hook).Distinct >= accepted }, stallLimit, waitLimit(accepted))
	out := &e2eOutcome{complete: werr == nil}
	out.cpu.spent, out.cpu.err = meter.stop(ctx)
	h := e.rcv.hook(hook)
	var lat, answers []time.Duration
	delivered := 0
	for _, c := range all {
		answers = append(answers, c.answer)
		if l := e.rcv.lead(c.id); l.n > 0 {
			delivered++
			lat = append(lat, l.first.Sub(c.at))
		}
	}
	res.Delivered += delivered
	out.cpu.events = delivered
	out.latency = summarise(lat)
	out.duplicates = h.Requests - h.Distinct
	res.detail(prefix+"accepted", accepted)
	res.detail(prefix+"clients", clients)
	res.detail(prefix+"duration_s", dur.Seconds())
	res.detail(prefix+"create_answer", summarise(answers).jsonValue())
	res.detail(prefix+"create_to_receipt", out.latency.jsonValue())
	res.detail(prefix+"duplicate_requests", out.duplicates)
	if len(e.workers) > 0 {
		b.succeededBy(ctx, res, e, prefix)
	}
	out.acceptedRate = float64(accepted) / genEnd.Sub(start).Seconds()
	out.deliveredRate = math.NaN()
	if delivered > 0 {
		out.deliveredRate = float64(delivered) / h.Last.Sub(start).Seconds()
	}
	return out, errors.Join(werr, failuresError(failures, accepted))
}

// failureKey groups failed API calls: by status, or by the error when there was no answer.
func failureKey(status int, err error) string {
	if status != 0 {
		return "HTTP " + strconv.Itoa(status)
	}
	return err.Error()
}

// failuresError reports failed creates: the service refused or lost requests that a healthy one
// takes, and hiding that would flatter it.
func failuresError(failures map[string]int, ok int) error {
	if len(failures) == 0 {
		return nil
	}
	total := 0
	for _, n := range failures {
		total += n
	}
	keys := slices.Sorted(maps.Keys(failures))
	return fmt.Errorf("%d of %d creates failed (%s: %d, …)", total, total+ok, keys[0], failures[keys[0]])
}

// runPaced creates lead sessions at a steady rate (open loop: each create starts at its scheduled
// time, whatever the previous ones are doing) and measures create→receipt latency from the
// scheduled time, so that a stall cannot hide the requests it delays.
func (b *bench) runPaced(ctx context.Context, res *Result) (err error) {
	e, err := b.newEnv(ctx, "paced", pacedInFlightMax)
	if err != nil {
		return err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	hook, err := e.hook(ctx, "paced", false, webhook.LeadSessionCreated)
	if err != nil {
		return err
	}
	latency, err := pace(ctx, res, e, e.api, hook, "", b.sz.PacedRate, b.sz.PacedDuration)
	if latency == nil {
		return err
	}
	res.metric("create→receipt p50", latency.P50, "ms")
	res.metric("create→receipt p99", latency.P99, "ms").atMost(b.byDatabase(pacedP99SQLite, pacedP99Postgres))
	res.metric("create→receipt max", latency.Max, "ms")
	return err
}

// pace creates lead sessions through api at rate per second for dur, open loop, waits until hook has
// received each one accepted, and returns the create→receipt latencies (from the scheduled time).
// Details and the delivered and expected counts go to res, named with prefix. It returns nil
// latencies when nothing was measured.
func pace(ctx context.Context, res *Result, e *env, api *apiClient, hook, prefix string, rate int, dur time.Duration) (*latencies, error) {
	if rate <= 0 {
		return nil, errors.New("the paced rate must be positive")
	}
	n := int(dur.Seconds() * float64(rate))
	type created struct {
		id     string
		at     time.Time // scheduled
		answer time.Duration
	}
	sent := make([]created, n)
	var (
		mu       sync.Mutex
		failures = map[string]int{}
		skipped  int
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, pacedInFlightMax)
	steal, stealErr := startSteal()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		if err := sleepUntil(ctx, at); err != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped++
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			id, status, err := api.createLeadSession(ctx, i)
			if err != nil {
				mu.Lock()
				failures[failureKey(status, err)]++
				mu.Unlock()
				return
			}
			sent[i] = created{id, at, time.Since(at)}
		})
	}
	wg.Wait()
	genEnd := time.Now()
	accepted := 0
	for _, c := range sent {
		if c.id != "" {
			accepted++
		}
	}
	res.Expected += accepted
	werr := e.rcv.waitFor(ctx, prefix+"paced", func() bool { return e.rcv.hook(hook).Distinct >= accepted }, stallLimit, waitLimit(accepted))
	var stealPct float64
	if stealErr == nil {
		stealPct, stealErr = steal.percent()
	}
	if stealErr == nil {
		res.metric(prefix+"host CPU steal", stealPct, "%")
	} else {
		res.detail(prefix+"host_cpu_steal_error", stealErr.Error())
	}
	var lat, answers []time.Duration
	for _, c := range sent {
		if c.id == "" {
			continue
		}
		answers = append(answers, c.answer)
		if l := e.rcv.lead(c.id); l.n > 0 {
			res.Delivered++
			lat = append(lat, l.first.Sub(c.at))
		}
	}
	latency := summarise(lat)
	res.detail(prefix+"scheduled", n)
	res.detail(prefix+"accepted", accepted)
	res.detail(prefix+"skipped_generator_full", skipped)
	res.detail(prefix+"create_answer", summarise(answers).jsonValue())
	res.detail(prefix+"create_to_receipt", latency.jsonValue())
	res.metric(prefix+"events/s achieved", float64(accepted)/genEnd.Sub(start).Seconds(), "/s")
	if skipped > 0 {
		werr = errors.Join(werr, fmt.Errorf("%d creates skipped: %d were in flight", skipped, pacedInFlightMax))
	}
	if len(lat) == 0 {
		return nil, errors.Join(werr, failuresError(failures, accepted))
	}
	return &latency, errors.Join(werr, failuresError(failures, accepted))
}

// sleepUntil sleeps until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runFanout subscribes many webhooks to one event and publishes events one after another through
// the API, each time waiting until every webhook has it: deliveries per second of fan-out.
func (b *bench) runFanout(ctx context.Context, res *Result) (err error) {
	hooks, events := b.sz.FanoutWebhooks, b.sz.FanoutEvents
	const setupClients = 16
	e, err := b.newEnv(ctx, "fanout", setupClients)
	if err != nil {
		return err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	setup := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var errOnce sync.Once
	var setupErr error
	for range setupClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= hooks || ctx.Err() != nil {
					return
				}
				if _, err := e.hook(ctx, "fanout-"+strconv.Itoa(i), false, webhook.LeadSessionCreated); err != nil {
					errOnce.Do(func() { setupErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if setupErr != nil {
		return fmt.Errorf("create %d webhooks: %w", hooks, setupErr)
	}
	res.detail("webhooks_created_per_s", round(float64(hooks)/time.Since(setup).Seconds()))
	res.Expected = hooks * events
	var spans []time.Duration
	var total time.Duration
	for i := range events {
		at := time.Now()
		id, _, err := e.api.createLeadSession(ctx, i)
		if err != nil {
			return err
		}
		werr := e.rcv.waitFor(ctx, "fanout", func() bool { return e.rcv.lead(id).n >= hooks }, stallLimit, waitLimit(hooks))
		l := e.rcv.lead(id)
		res.Delivered += l.n
		if werr != nil {
			return werr
		}
		spans = append(spans, l.last.Sub(at))
		total += l.last.Sub(at)
	}
	cpuPerDelivery(res, e.svc, res.Delivered)
	span := summarise(spans)
	res.detail("event_to_last_receipt", span.jsonValue())
	res.metric("deliveries/s", float64(hooks*events)/total.Seconds(), "/s")
	res.metric("event→all webhooks p50", span.P50, "ms")
	res.metric("event→all webhooks max", span.Max, "ms")
	res.Notes = append(res.Notes, "every webhook points at the one loopback receiver, so keep-alive connections are shared across webhooks; a real fan-out to distinct hosts also pays for connection set-up")
	return nil
}

// runIsolation measures how much an endpoint that hangs until the delivery timeout, with a deep
// backlog queued before the healthy endpoint's deliveries, slows the healthy one: its rate with the
// hanging one, as a ratio of its rate alone.
func (b *bench) runIsolation(ctx context.Context, res *Result) error {
	res.detail("quikly_extra_args", []string{"--delivery-timeout", b.sz.IsolationTimeout.String()})
	res.detail("hung_backlog", b.sz.IsolationBacklog)
	alone, err := b.isolationPass(ctx, res, "isolation-alone", 0)
	if err != nil {
		return fmt.Errorf("healthy endpoint alone: %w", err)
	}
	shared, err := b.isolationPass(ctx, res, "isolation-hung", b.sz.IsolationBacklog)
	if err != nil {
		return fmt.Errorf("beside the hanging endpoint: %w", err)
	}
	res.metric("healthy alone", alone, "/s")
	res.metric("healthy beside hanging", shared, "/s")
	res.metric("ratio", shared/alone, "ratio").atLeast(isolationTarget)
	return nil
}

// isolationPass queues backlog deliveries to a hanging endpoint, then IsolationEvents to a healthy
// one, starts quikly and returns the healthy endpoint's deliveries per second.
func (b *bench) isolationPass(ctx context.Context, res *Result, name string, backlog int) (rate float64, err error) {
	n, timeout := b.sz.IsolationEvents, b.sz.IsolationTimeout
	e, err := b.newEnv(ctx, name, 4, "--delivery-timeout", timeout.String())
	if err != nil {
		return 0, err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	healthy, err := e.hook(ctx, "healthy", false, webhook.LeadSessionCreated)
	if err != nil {
		return 0, err
	}
	hung, err := e.hook(ctx, "hung", true, webhook.ProposalCreated)
	if err != nil {
		return 0, err
	}
	if err := e.stop(); err != nil {
		return 0, err
	}
	// The hanging endpoint's deliveries go first, so that they are due before every healthy one.
	if err := b.queueWith(ctx, res, e, func(st store.Store, account string) error {
		if err := queue(ctx, st, account, hung, webhook.ProposalCreated, backlog, 1000); err != nil {
			return err
		}
		return queue(ctx, st, account, healthy, webhook.LeadSessionCreated, n, 1000)
	}); err != nil {
		return 0, err
	}
	if err := e.start(ctx); err != nil {
		return 0, err
	}
	res.Expected += n
	werr := e.rcv.waitFor(ctx, name, func() bool { return e.rcv.hook(healthy).Distinct >= n }, stallLimit, waitLimit(n))
	h := e.rcv.hook(healthy)
	res.Delivered += h.Distinct
	res.detail(name+"_hung_requests", e.rcv.hook(hung).Requests)
	if werr != nil {
		return 0, werr
	}
	return float64(n) / h.Last.Sub(e.svc.Ready).Seconds(), nil
}

// runBacklog queues a huge backlog while quikly is stopped, starts it, and measures how soon the
// first delivery arrives after it is ready (the first claim, plus one loopback POST) and its peak
// resident memory after it has worked on the backlog for a while. It does not wait for a full-size
// backlog to drain.
func (b *bench) runBacklog(ctx context.Context, res *Result) (err error) {
	n, settle := b.sz.BacklogDeliveries, b.sz.BacklogSettle
	e, err := b.newEnv(ctx, "backlog", 4)
	if err != nil {
		return err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	hook, err := e.hook(ctx, "backlog", false, webhook.LeadSessionCreated)
	if err != nil {
		return err
	}
	if err := e.stop(); err != nil {
		return err
	}
	if err := b.queueWith(ctx, res, e, func(st store.Store, account string) error {
		return queue(ctx, st, account, hook, webhook.LeadSessionCreated, n, 5000)
	}); err != nil {
		return err
	}
	if err := e.start(ctx); err != nil {
		return err
	}
	svc := e.svc
	werr := e.rcv.waitFor(ctx, "backlog: first delivery", func() bool { return !e.rcv.firstReceipt().IsZero() }, stallLimit, stallLimit)
	if werr != nil {
		return werr
	}
	first := e.rcv.firstReceipt().Sub(svc.Ready)
	if err := sleepUntil(ctx, svc.Ready.Add(settle)); err != nil {
		return err
	}
	peak, current, err := memory(svc.Pid())
	if err != nil {
		return err
	}
	ran := time.Since(svc.Ready)
	h := e.rcv.hook(hook)
	res.detail("startup_ms", round(ms(svc.Ready.Sub(svc.Started))))
	res.detail("rss_now_mib", round(float64(current)/(1<<20)))
	res.detail("delivered_while_measuring", h.Distinct)
	res.metric("peak RSS (VmHWM)", float64(peak)/(1<<20), "MiB").atMost(backlogRSSTarget)
	res.metric("ready→first receipt", ms(first), "ms").atMost(firstClaimTarget)
	res.metric("deliveries/s while measuring", float64(h.Distinct)/ran.Seconds(), "/s")
	res.Notes = append(res.Notes, "the first claim is measured as the time from quikly logging that it serves (the dispatcher starts right after) to the first delivery's arrival, so it includes one loopback POST")
	if n > drainAllMax {
		res.Delivered = h.Distinct
		res.Notes = append(res.Notes, fmt.Sprintf("a backlog over %d is not waited for: only memory and the first claim are measured", drainAllMax))
		return nil
	}
	res.Expected = n
	werr = e.rcv.waitFor(ctx, "backlog", func() bool { return e.rcv.hook(hook).Distinct >= n }, stallLimit, waitLimit(n))
	res.Delivered = e.rcv.hook(hook).Distinct
	return werr
}

// queueWith opens e's database from this process (quikly is stopped), runs fill with the bench
// account's id, and records how long it took.
func (b *bench) queueWith(ctx context.Context, res *Result, e *env, fill func(st store.Store, account string) error) error {
	st, err := openStore(ctx, e.dbURL)
	if err != nil {
		return err
	}
	account, err := accountID(ctx, st, benchAccount)
	if err != nil {
		st.Close()
		return err
	}
	start := time.Now()
	if err := fill(st, account); err != nil {
		st.Close()
		return err
	}
	res.detail(e.name+"_queue_seconds", round(time.Since(start).Seconds()))
	if err := st.Close(); err != nil {
		return fmt.Errorf("close the database: %w", err)
	}
	return nil
}
