package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/quikly/webhooks/internal/webhook"
)

// scaleoutWorkers is how many quikly worker processes run beside quikly serve in scaleout.
const scaleoutWorkers = 2

// runScaleout measures quikly serve and scaleoutWorkers quikly worker processes on one PostgreSQL
// database: a drain (a queued backlog, every process started at once) and an e2e (API clients
// against serve, every process delivering). It reports total rates, their ratio to the ceiling, CPU
// per event of every quikly process plus the database server, and duplicates; an event that never
// arrives fails it. On SQLite it is skipped: quikly worker runs only against PostgreSQL.
func (b *bench) runScaleout(ctx context.Context, res *Result) error {
	if b.dbs.Kind() != "postgres" {
		res.Skipped = "needs PostgreSQL (--database postgres://…): quikly worker runs only against it"
		return nil
	}
	res.detail("workers", scaleoutWorkers)
	res.detail("worker_args", b.workerArgs())
	res.Notes = append(res.Notes, fmt.Sprintf("serve, %d workers, PostgreSQL, the receiver and the load generators share this machine's %d CPUs: on 2 cores this shows correctness (every event delivered once) and the overhead of several processes sharing one queue, not a speed-up",
		scaleoutWorkers, runtime.NumCPU()))
	drain, derr := b.scaleoutDrain(ctx, res)
	if derr == nil {
		res.metric("drain deliveries/s", drain.rate, "/s")
		b.ratioToCeiling(res, "drain ", drain.rate, 0)
		b.reportCPU(res, "drain ", drain.cpu, 0)
	}
	e2e, eerr := b.scaleoutE2E(ctx, res)
	if e2e != nil {
		res.metric("e2e delivered events/s", e2e.deliveredRate, "/s")
		if e2e.complete {
			b.ratioToCeiling(res, "e2e ", e2e.deliveredRate, 0)
		}
		b.reportCPU(res, "e2e ", e2e.cpu, 0)
	}
	dups := drain.duplicates
	if e2e != nil {
		dups += e2e.duplicates
	}
	res.metric("duplicate deliveries", float64(dups), "")
	if derr != nil {
		derr = fmt.Errorf("drain: %w", derr)
	}
	if eerr != nil {
		eerr = fmt.Errorf("e2e: %w", eerr)
	}
	return errors.Join(derr, eerr)
}

// scaleoutDrain is scaleout's drain, in a database of its own.
func (b *bench) scaleoutDrain(ctx context.Context, res *Result) (out drainOutcome, err error) {
	e, err := b.newEnv(ctx, "scaleout-drain", 4)
	if err != nil {
		return out, err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	return b.drainPass(ctx, res, e, "drain_", scaleoutWorkers)
}

// scaleoutE2E is scaleout's e2e, in a database of its own: the workers start once the webhook exists,
// before the first create.
func (b *bench) scaleoutE2E(ctx context.Context, res *Result) (out *e2eOutcome, err error) {
	e, err := b.newEnv(ctx, "scaleout-e2e", b.sz.E2EClients)
	if err != nil {
		return nil, err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	hook, err := e.hook(ctx, "e2e", false, webhook.LeadSessionCreated)
	if err != nil {
		return nil, err
	}
	if err := e.startWorkers(ctx, scaleoutWorkers); err != nil {
		return nil, err
	}
	return b.e2ePass(ctx, res, e, hook, "e2e_")
}

// succeededBy records how many deliveries each of e's processes made (quikly_deliveries_total
// {outcome="succeeded"} of its /metrics), which shows that every process delivered. Read errors
// become a note: the count is for the reader, the receiver's count is what is checked.
func (b *bench) succeededBy(ctx context.Context, res *Result, e *env, prefix string) {
	by := map[string]float64{}
	for role, svc := range e.processes() {
		n, err := readMetric(ctx, svc.Addr, `quikly_deliveries_total{outcome="succeeded"}`)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%ssucceeded deliveries of %s not read: %v", prefix, role, err))
			n = math.NaN()
		}
		by[role] = round(n)
	}
	res.detail(prefix+"succeeded_by_process", by)
}
