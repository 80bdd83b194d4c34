package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/procfs"

	"github.com/quikly/webhooks/internal/server"
)

// userHZ is the unit of CPU times in /proc/<pid>/stat: USER_HZ, 100 on Linux whatever the kernel's
// own tick rate.
const userHZ = 100

// procStat is what the benchmark reads of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	// cpu is the process's own user plus system time; reaped is that of its children it has waited
	// for (cutime plus cstime), which keeps the CPU of processes that have exited.
	cpu, reaped time.Duration
	// start is when the process started, in ticks since boot: with pid, it names one process, since
	// pids are reused.
	start uint64
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields are counted after its end.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	// f[0] is field 3 of proc(5) (state), so field k is f[k-3]: ppid 4, utime 14, stime 15, cutime 16,
	// cstime 17, starttime 22.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	var n [5]int64
	var errs []error
	for j, k := range []int{4, 14, 15, 16, 17} {
		n[j], err = strconv.ParseInt(f[k-3], 10, 64)
		errs = append(errs, err)
	}
	start, err := strconv.ParseUint(f[22-3], 10, 64)
	if err := errors.Join(append(errs, err)...); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ticks := func(t int64) time.Duration { return time.Duration(t) * time.Second / userHZ }
	return procStat{pid: pid, ppid: int(n[0]), cpu: ticks(n[1] + n[2]), reaped: ticks(n[3] + n[4]), start: start}, nil
}

// cpuTime reads the CPU time (user plus system) the process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, fmt.Errorf("read CPU time of quikly: %w", err)
	}
	return st.cpu, nil
}

// childrenOf reads every process of this machine whose parent is ppid. Processes that end while
// /proc is walked are left out.
func childrenOf(ppid int) ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		if st, err := readStat(pid); err == nil && st.ppid == ppid {
			out = append(out, st)
		}
	}
	return out, nil
}

// pgServer is a PostgreSQL server that runs on this machine: its postmaster, whose children are
// every process of the server (backends, background writers, autovacuum).
type pgServer struct {
	admin      string // URL to connect to, to list a database's backends
	postmaster int
}

// findPostgres finds the server of admin among this machine's processes: it asks a backend for its
// pid, and takes that process's parent as the postmaster once it is sure the pid means the same
// process here as on the server (not so when the server runs in a container or elsewhere).
// Either of two checks makes it sure: the backend's process title names this connection's client
// port, or postmaster.pid in the data directory (readable by a superuser on this machine) names the
// parent.
func findPostgres(ctx context.Context, admin string) (*pgServer, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(admin))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", server.RedactURL(admin), err)
	}
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil, fmt.Errorf("ask for the backend's pid: %w", err)
	}
	// Only superusers and pg_read_all_settings may read data_directory; without it the title must do.
	var dataDir *string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory', true)").Scan(&dataDir); err != nil {
		dataDir = nil
	}
	st, err := readStat(backend)
	if err != nil {
		return nil, fmt.Errorf("the server's backend pid %d is no process of this machine", backend)
	}
	if tcp, ok := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr); ok {
		// The title reads "postgres: [cluster:] user database host(port) state".
		title, err := os.ReadFile("/proc/" + strconv.Itoa(backend) + "/cmdline")
		if err == nil && bytes.Contains(title, []byte("("+strconv.Itoa(tcp.Port)+")")) {
			return &pgServer{admin: admin, postmaster: st.ppid}, nil
		}
	}
	if dataDir != nil && *dataDir != "" {
		data, err := os.ReadFile(filepath.Join(*dataDir, "postmaster.pid"))
		if err == nil {
			first, _, _ := strings.Cut(string(data), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid == st.ppid {
				return &pgServer{admin: admin, postmaster: st.ppid}, nil
			}
		}
	}
	return nil, fmt.Errorf("pid %d on this machine is not the server's backend of that pid (neither its process title nor postmaster.pid confirm it)", backend)
}

// pgReading is the CPU the server has used so far.
type pgReading struct {
	// own is the postmaster's own CPU and that of the children it has reaped (backends that exited).
	own time.Duration
	// children are the live children's, by pid and start.
	children map[procKey]time.Duration
}

// procKey names one process: pids are reused, start times tell them apart.
type procKey struct {
	pid   int
	start uint64
}

func (r *pgReading) total() time.Duration {
	t := r.own
	for _, c := range r.children {
		t += c
	}
	return t
}

// read reads the server's CPU. A child reaped while /proc is walked would count twice (its own
// time, then in the postmaster's) or not at all, so a walk during which the postmaster reaped one is
// made again.
func (s *pgServer) read() (*pgReading, error) {
	for try := 0; ; try++ {
		before, err := readStat(s.postmaster)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL's postmaster (pid %d): %w", s.postmaster, err)
		}
		children, err := childrenOf(s.postmaster)
		if err != nil {
			return nil, err
		}
		after, err := readStat(s.postmaster)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL's postmaster (pid %d): %w", s.postmaster, err)
		}
		if after.reaped != before.reaped && try < 5 {
			continue
		}
		r := &pgReading{own: after.cpu + after.reaped, children: make(map[procKey]time.Duration, len(children))}
		for _, c := range children {
			r.children[procKey{c.pid, c.start}] = c.cpu
		}
		return r, nil
	}
}

// backendsOf returns the pids of the backends connected to database db now.
func (s *pgServer) backendsOf(ctx context.Context, db string) (map[int]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(s.admin))
	if err != nil {
		return nil, fmt.Errorf("connect to list backends: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
	if err != nil {
		return nil, fmt.Errorf("list backends of %s: %w", db, err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("list backends of %s: %w", db, err)
	}
	out := make(map[int]bool, len(pids))
	for _, p := range pids {
		out[int(p)] = true
	}
	return out, nil
}

// meteredProc is one quikly process whose CPU a cpuMeter reads.
type meteredProc struct {
	role string // "serve", "worker-1", …
	pid  int
	at   time.Duration // CPU used when the meter started
}

// cpuMeter measures the CPU time that quikly's processes and the database server use over one
// interval (from start to stop). Not safe for concurrent use.
type cpuMeter struct {
	procs []meteredProc
	// pg is the server on this machine (PostgreSQL), nil with SQLite (inside quikly) or when the
	// server was not found.
	pg      *pgServer
	db      string // the scenario's database, whose backends are told from the rest of the server
	pgStart *pgReading
	started time.Time
	err     error
}

// cpuSpent is what a cpuMeter measured.
type cpuSpent struct {
	Interval time.Duration
	// Quikly is the CPU of every quikly process; ByProcess splits it by role.
	Quikly    time.Duration
	ByProcess map[string]time.Duration
	// Database is the CPU of the whole database server when DatabaseMeasured; Backends is the share
	// of the backends connected to the scenario's database at the end (the rest is background
	// processes, backends that exited and other databases' backends).
	Database         time.Duration
	Backends         time.Duration
	DatabaseMeasured bool
}

// startCPU reads the CPU of e's quikly processes and, on PostgreSQL, of the database server: the
// start of an interval that stop ends.
func (b *bench) startCPU(e *env) *cpuMeter {
	m := &cpuMeter{pg: b.pg, started: time.Now()}
	if b.dbs.Kind() == "postgres" {
		m.db = databaseName(e.dbURL)
	}
	for role, svc := range e.processes() {
		cpu, err := cpuTime(svc.Pid())
		if err != nil {
			m.err = fmt.Errorf("%s: %w", role, err)
			return m
		}
		m.procs = append(m.procs, meteredProc{role: role, pid: svc.Pid(), at: cpu})
	}
	if m.pg != nil {
		if m.pgStart, m.err = m.pg.read(); m.err != nil {
			return m
		}
	}
	return m
}

// stop reads the CPU again and returns what was used since start.
func (m *cpuMeter) stop(ctx context.Context) (*cpuSpent, error) {
	if m.err != nil {
		return nil, m.err
	}
	s := &cpuSpent{Interval: time.Since(m.started), ByProcess: map[string]time.Duration{}}
	// The server is read first: listing the database's backends afterwards costs it a connection.
	var end *pgReading
	if m.pg != nil {
		var err error
		if end, err = m.pg.read(); err != nil {
			return nil, err
		}
	}
	for _, p := range m.procs {
		cpu, err := cpuTime(p.pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.role, err)
		}
		s.ByProcess[p.role] = cpu - p.at
		s.Quikly += cpu - p.at
	}
	if end == nil {
		return s, nil
	}
	s.DatabaseMeasured = true
	s.Database = end.total() - m.pgStart.total()
	backends, err := m.pg.backendsOf(ctx, m.db)
	if err != nil {
		return nil, err
	}
	for k, cpu := range end.children {
		if backends[k.pid] {
			s.Backends += cpu - m.pgStart.children[k] // a backend that started since had 0
		}
	}
	return s, nil
}

// databaseName is the database of a postgres:// URL.
func databaseName(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// cpuUse is the CPU measured over an interval in which events were delivered, or why it was not.
type cpuUse struct {
	spent  *cpuSpent
	err    error
	events int
}

// cpuMetricName is the metric of CPU per event, quikly's processes and the database server together.
const cpuMetricName = "CPU per event (quikly + database)"

// reportCPU records the CPU per event of u: the metric label+cpuMetricName (with target t when t > 0)
// and details that split it, named with label in snake case. Without a reading of the database
// server the metric would be wrong, so it is left out and a note says why.
func (b *bench) reportCPU(res *Result, label string, u cpuUse, t float64) {
	if u.err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("%sCPU per event not measured: %v", label, u.err))
		return
	}
	if u.events <= 0 {
		res.Notes = append(res.Notes, label+"CPU per event not measured: no event was delivered while it was measured")
		return
	}
	spent, prefix := u.spent, strings.ReplaceAll(label, " ", "_")
	perEvent := func(d time.Duration) float64 { return ms(d) / float64(u.events) }
	res.detail(prefix+"cpu_events", u.events)
	res.detail(prefix+"cpu_interval_s", round(spent.Interval.Seconds()))
	res.detail(prefix+"cpu_quikly_s", round(spent.Quikly.Seconds()))
	res.detail(prefix+"cpu_quikly_ms_per_event", round(perEvent(spent.Quikly)))
	if len(spent.ByProcess) > 1 {
		by := map[string]float64{}
		for role, d := range spent.ByProcess {
			by[role] = round(d.Seconds())
		}
		res.detail(prefix+"cpu_quikly_s_by_process", by)
	}
	total := spent.Quikly
	switch {
	case b.dbs.Kind() == "sqlite":
		res.detail(prefix+"cpu_database_ms_per_event", 0.0)
		res.detail(prefix+"cpu_database", "SQLite runs inside quikly's process: its CPU is quikly's")
	case spent.DatabaseMeasured:
		total += spent.Database
		res.detail(prefix+"cpu_database_s", round(spent.Database.Seconds()))
		res.detail(prefix+"cpu_database_ms_per_event", round(perEvent(spent.Database)))
		res.detail(prefix+"cpu_database_backends_s", round(spent.Backends.Seconds()))
		res.detail(prefix+"cpu_database_rest_s", round((spent.Database - spent.Backends).Seconds()))
	default:
		res.Notes = append(res.Notes, fmt.Sprintf("%s%s not reported: the database server's CPU cannot be read on this machine (%s); quikly's own is in %scpu_quikly_ms_per_event",
			label, cpuMetricName, b.pgWhy, prefix))
		return
	}
	m := res.metric(label+cpuMetricName, perEvent(total), "ms")
	if t > 0 {
		m.atMost(t)
	}
}

// stealMeter measures the share of this machine's CPU time that its hypervisor gave to other
// machines (steal time, /proc/stat). On a shared host a pass can be slowed by its neighbours rather
// than by quikly: paced passes report it next to their latencies.
type stealMeter struct{ steal, total float64 }

// startSteal starts a stealMeter.
func startSteal() (*stealMeter, error) {
	steal, total, err := hostCPU()
	return &stealMeter{steal, total}, err
}

// percent is the steal time since the meter started, in % of all CPU time since then.
func (m *stealMeter) percent() (float64, error) {
	steal, total, err := hostCPU()
	if err != nil || total <= m.total {
		return 0, err
	}
	return 100 * (steal - m.steal) / (total - m.total), nil
}

// hostCPU reads the machine's steal time and total CPU time since boot, in seconds over all CPUs.
func hostCPU() (steal, total float64, err error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	s, err := fs.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	c := s.CPUTotal // guest time is counted in user time already
	return c.Steal, c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal, nil
}
