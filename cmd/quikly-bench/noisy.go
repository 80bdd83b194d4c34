package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Targets of the noisy scenario (issue on tenant isolation).
const (
	// noisyP99Ratio bounds the quiet account's create→receipt p99 beside the noisy one, as a multiple
	// of its p99 alone.
	noisyP99Ratio = 2.0
	// noisyRSSMaxMiB bounds quikly's peak resident memory beside the largest noisy account.
	noisyRSSMaxMiB = 256
	// noisyAccount owns the webhooks that never answer.
	noisyAccount = "noisy"
)

// runNoisy measures tenant isolation: the bench account creates lead sessions at a steady rate,
// alone and then beside a noisy account whose webhooks (NoisyWebhooks of them, one pass per size)
// point at endpoints that never answer, each with a backlog of NoisyBacklog deliveries. It reports
// the quiet account's create→receipt p50 and p99 in each pass, the ratio of each p99 beside to the
// p99 alone, and quikly's peak resident memory in each pass.
func (b *bench) runNoisy(ctx context.Context, res *Result) error {
	res.detail("noisy_backlog_per_webhook", b.sz.NoisyBacklog)
	res.detail("paced_rate", b.sz.NoisyRate)
	res.detail("paced_duration", b.sz.NoisyDuration.String())
	alone, _, err := b.noisyPass(ctx, res, "alone", 0)
	if err != nil {
		return fmt.Errorf("quiet account alone: %w", err)
	}
	res.metric("alone p50", alone.P50, "ms")
	res.metric("alone p99", alone.P99, "ms")
	for _, hooks := range b.sz.NoisyWebhooks {
		name := fmt.Sprintf("beside %d hung", hooks)
		beside, rss, err := b.noisyPass(ctx, res, fmt.Sprintf("hung%d", hooks), hooks)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.metric(name+" p50", beside.P50, "ms")
		res.metric(name+" p99", beside.P99, "ms")
		res.metric(name+" p99 / alone p99", beside.P99/alone.P99, "ratio").atMost(noisyP99Ratio)
		m := res.metric(name+" peak RSS", float64(rss)/(1<<20), "MiB")
		if hooks == b.sz.NoisyWebhooks[len(b.sz.NoisyWebhooks)-1] {
			m.atMost(noisyRSSMaxMiB)
		}
	}
	return nil
}

// noisyPass runs one pass: hooks hung webhooks of the noisy account, each with its backlog queued
// before quikly starts, then the quiet account's paced creates once every hung webhook is being
// attempted. It returns the quiet account's latencies and quikly's peak resident memory.
func (b *bench) noisyPass(ctx context.Context, res *Result, name string, hooks int) (lat *latencies, rss int64, err error) {
	var args []string
	if hooks > 100 { // quikly's default cap of webhooks per account
		args = append(args, fmt.Sprintf("--max-webhooks=%d", hooks))
	}
	e, err := b.newEnv(ctx, "noisy-"+name, pacedInFlightMax, args...)
	if err != nil {
		return nil, 0, err
	}
	defer func() { e.tally(res); err = errors.Join(err, e.close(ctx)) }()
	quiet, err := e.hook(ctx, "quiet", false, webhook.LeadSessionCreated)
	if err != nil {
		return nil, 0, err
	}
	var hung []string
	if hooks > 0 {
		key, err := createAPIKey(ctx, b.bin, e.dbURL, noisyAccount)
		if err != nil {
			return nil, 0, err
		}
		api := newAPIClient(e.svc.Addr, key, 8)
		defer api.close()
		for i := range hooks {
			path := fmt.Sprintf("hung-%d", i)
			id, secret, err := api.createWebhook(ctx, path, e.rcv.URL+"/"+path, webhook.ProposalCreated)
			if err != nil {
				return nil, 0, err
			}
			if err := e.rcv.register(id, secret, true); err != nil {
				return nil, 0, err
			}
			hung = append(hung, id)
		}
		api.close()
		if err := e.stop(); err != nil {
			return nil, 0, err
		}
		err = b.queueWith(ctx, res, e, func(st store.Store, _ string) error {
			account, err := accountID(ctx, st, noisyAccount)
			if err != nil {
				return err
			}
			for _, id := range hung {
				if err := queue(ctx, st, account, id, webhook.ProposalCreated, b.sz.NoisyBacklog, 1000); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		if err := e.start(ctx); err != nil {
			return nil, 0, err
		}
		// The noise is on once every hung webhook has an attempt waiting on its endpoint.
		attempted := func() bool {
			for _, id := range hung {
				if e.rcv.hook(id).Requests == 0 {
					return false
				}
			}
			return true
		}
		if err := e.rcv.waitFor(ctx, name+" noise", attempted, stallLimit, waitLimit(hooks)); err != nil {
			return nil, 0, err
		}
	}
	lat, err = pace(ctx, res, e, e.api, quiet, name+"_", b.sz.NoisyRate, b.sz.NoisyDuration)
	peak, _, merr := memory(e.svc.Pid())
	hungRequests := 0
	for _, id := range hung {
		hungRequests += e.rcv.hook(id).Requests
	}
	res.detail(name+"_hung_requests", hungRequests)
	if lat == nil && err == nil {
		err = errors.New("no delivery measured")
	}
	return lat, peak, errors.Join(err, merr)
}

// noisyDefaults are the noisy scenario's sizes: 50 and 500 hung webhooks, 20 queued deliveries each,
// 50 creates a second for 10 s by the quiet account.
func noisyDefaults(s *sizes, smoke bool) {
	if smoke {
		s.NoisyWebhooks, s.NoisyBacklog, s.NoisyRate, s.NoisyDuration = []int{5}, 2, 20, 2*time.Second
		return
	}
	s.NoisyWebhooks, s.NoisyBacklog, s.NoisyRate, s.NoisyDuration = []int{50, 500}, 20, 50, 10*time.Second
}
