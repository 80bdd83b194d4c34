package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// workerLine matches the line quikly worker logs once it serves its operations endpoints.
var workerLine = regexp.MustCompile(`msg="quikly worker delivering".*\baddr=(127\.0\.0\.1:\d+)`)

// proc is one quikly process of the soak (serve or a worker) across its restarts.
type proc struct {
	role string // "serve", "worker-1", "worker-2"
	argv []string
	// mu guards svc and ended; ended holds the processes the soak itself stopped or killed, so that
	// their exit is not reported as a crash.
	mu     sync.Mutex
	svc    *service
	ended  map[*service]bool
	starts int
}

// soakProcs are the quikly processes of one soak and what happened to them.
type soakProcs struct {
	bin  string
	echo io.Writer

	mu      sync.Mutex
	procs   []*proc
	crashes []string // unexpected exits, with the end of their log
	samples []resourceSample
}

// resourceSample is one reading of a process's resident memory and open file descriptors.
type resourceSample struct {
	at   time.Time
	role string
	pid  int
	rss  int64 // bytes
	fds  int
}

// start starts p (again) and watches it: an exit the soak did not cause is recorded as a crash and
// the process is started again, as a supervisor would.
func (ps *soakProcs) start(ctx context.Context, p *proc) error {
	var svc *service
	var err error
	// A restart on serve's fixed port can race the old socket's release; try a few times.
	for try := 0; try < 5; try++ {
		if svc, err = startProcess(ctx, ps.bin, p.argv, readyLine(p), ps.echo); err == nil || ctx.Err() != nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", p.role, err)
	}
	p.mu.Lock()
	p.svc = svc
	p.starts++
	p.mu.Unlock()
	go func() {
		<-svc.done
		p.mu.Lock()
		ended := p.ended[svc]
		p.mu.Unlock()
		if ended || ctx.Err() != nil {
			return
		}
		ps.mu.Lock()
		ps.crashes = append(ps.crashes, fmt.Sprintf("%s %s (pid %d) exited by itself: %v\n%s",
			time.Now().UTC().Format(time.RFC3339Nano), p.role, svc.Pid(), svc.waitErr, svc.logTail()))
		ps.mu.Unlock()
		p.mu.Lock()
		if p.svc == svc {
			p.svc = nil
		}
		p.mu.Unlock()
		time.Sleep(time.Second)
		ps.start(ctx, p) // an error leaves it down: the drain check will report what was not delivered
	}()
	return nil
}

func readyLine(p *proc) *regexp.Regexp {
	if p.argv[0] == "worker" {
		return workerLine
	}
	return servingLine
}

// kill sends SIGKILL to p and waits for it to end.
func (p *proc) kill() {
	svc := p.take()
	if svc == nil {
		return
	}
	svc.kill()
}

// stop stops p gracefully; SIGTERM must end it with exit 0 (SPEC §9).
func (p *proc) stop() error {
	svc := p.take()
	if svc == nil {
		return nil
	}
	if err := svc.stop(); err != nil {
		return fmt.Errorf("%s: %w", p.role, err)
	}
	return nil
}

// take detaches the running process from p, marked as ended by the soak; nil when none runs.
func (p *proc) take() *service {
	p.mu.Lock()
	defer p.mu.Unlock()
	svc := p.svc
	if svc != nil {
		if p.ended == nil {
			p.ended = map[*service]bool{}
		}
		p.ended[svc] = true
	}
	p.svc = nil
	return svc
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc == nil {
		return 0
	}
	return p.svc.Pid()
}

func (p *proc) addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc == nil {
		return ""
	}
	return p.svc.Addr
}

// sample reads the memory and descriptors of every running process.
func (ps *soakProcs) sample() {
	now := time.Now()
	for _, p := range ps.procs {
		pid := p.pid()
		if pid == 0 {
			continue
		}
		_, rss, err := memory(pid)
		if err != nil {
			continue // it just died
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		ps.mu.Lock()
		ps.samples = append(ps.samples, resourceSample{at: now, role: p.role, pid: pid, rss: rss, fds: len(fds)})
		ps.mu.Unlock()
	}
}

// sampleEvery samples until ctx ends.
func (ps *soakProcs) sampleEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		ps.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resourceSummary is how one role's memory and descriptors went: the first reading, the median of
// the steady phase (the second quarter of the run), the median of the late phase (its last quarter,
// before the drain), the last reading (after the drain) and the largest.
type resourceSummary struct {
	Samples    int     `json:"samples"`
	Restarts   int     `json:"restarts"`
	FirstMiB   float64 `json:"rss_first_mib"`
	SteadyMiB  float64 `json:"rss_steady_mib"`
	LateMiB    float64 `json:"rss_late_mib"`
	LastMiB    float64 `json:"rss_last_mib"`
	MaxMiB     float64 `json:"rss_max_mib"`
	FirstFDs   int     `json:"fds_first"`
	SteadyFDs  int     `json:"fds_steady"`
	LateFDs    int     `json:"fds_late"`
	LastFDs    int     `json:"fds_last"`
	MaxFDs     int     `json:"fds_max"`
	Growth     bool    `json:"growth"`
	GrowthNote string  `json:"growth_note,omitempty"`
}

// summarise sums up role's samples; the run's generation phase went from start to end.
func (ps *soakProcs) summarise(role string, start, end time.Time) resourceSummary {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var all []resourceSample
	for _, s := range ps.samples {
		if s.role == role {
			all = append(all, s)
		}
	}
	var sum resourceSummary
	if len(all) == 0 {
		return sum
	}
	span := end.Sub(start)
	phase := func(from, to float64) (rss []int64, fds []int) {
		for _, s := range all {
			f := float64(s.at.Sub(start)) / float64(span)
			if f >= from && f < to {
				rss, fds = append(rss, s.rss), append(fds, s.fds)
			}
		}
		return rss, fds
	}
	mib := func(b int64) float64 { return round(float64(b) / (1 << 20)) }
	sum.Samples = len(all)
	sum.FirstMiB, sum.FirstFDs = mib(all[0].rss), all[0].fds
	last := all[len(all)-1]
	sum.LastMiB, sum.LastFDs = mib(last.rss), last.fds
	for _, s := range all {
		sum.MaxMiB, sum.MaxFDs = max(sum.MaxMiB, mib(s.rss)), max(sum.MaxFDs, s.fds)
	}
	sr, sf := phase(0.25, 0.5)
	lr, lf := phase(0.75, 1.0)
	sum.SteadyMiB, sum.SteadyFDs = mib(int64(median(sr))), int(median(sf))
	sum.LateMiB, sum.LateFDs = mib(int64(median(lr))), int(median(lf))
	// Growth: the late phase well above the steady one, in memory or in descriptors. Restarts reset a
	// process, so this looks at the medians of the phases rather than at one process's life.
	if sum.SteadyMiB > 0 && sum.LateMiB > 1.5*sum.SteadyMiB {
		sum.Growth = true
		sum.GrowthNote = fmt.Sprintf("RSS median %0.f MiB late vs %0.f MiB steady", sum.LateMiB, sum.SteadyMiB)
	}
	if sum.SteadyFDs > 0 && float64(sum.LateFDs) > 1.5*float64(sum.SteadyFDs)+10 {
		sum.Growth = true
		sum.GrowthNote = strings.TrimPrefix(sum.GrowthNote+fmt.Sprintf("; fds median %d late vs %d steady", sum.LateFDs, sum.SteadyFDs), "; ")
	}
	return sum
}

func median[T int | int64](v []T) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

// queueDepth reads quikly_queue_depth (pending and held deliveries of the whole queue) from the
// /metrics of the process at addr.
func queueDepth(ctx context.Context, addr string) (int, error) {
	v, err := readMetric(ctx, addr, "quikly_queue_depth")
	return int(v), err
}

// readMetric reads one sample from the /metrics of the process at addr: series is the metric's name
// with its labels as Prometheus writes them, e.g. `quikly_deliveries_total{outcome="succeeded"}`.
func readMetric(ctx context.Context, addr, series string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", series, v, err)
			}
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /metrics", series)
}

// pgTerminate ends quikly's connections to the soak's own database (by datname, and by the
// application names quikly sets), connecting as admin: all of them, only serve's, or one at random.
// It returns how many it ended.
func pgTerminate(ctx context.Context, admin, dbURL, which string) (int, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return 0, err
	}
	db := strings.TrimPrefix(u.Path, "/")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(admin))
	if err != nil {
		return 0, fmt.Errorf("connect to terminate backends: %w", err)
	}
	defer conn.Close(context.Background())
	where := `datname = $1 AND application_name IN ('quikly-serve', 'quikly-worker') AND pid <> pg_backend_pid()`
	q := `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ` + where + `) t`
	switch which {
	case "serve":
		q = `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ` + where +
			` AND application_name = 'quikly-serve') t`
	case "one":
		q = `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM (SELECT pid FROM pg_stat_activity WHERE ` +
			where + ` ORDER BY random() LIMIT 1) p) t`
	}
	var n int
	if err := conn.QueryRow(ctx, q, db).Scan(&n); err != nil {
		return 0, fmt.Errorf("terminate backends: %w", err)
	}
	return n, nil
}
