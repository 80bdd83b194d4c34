package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync"
	"time"
)

// benchAccount is the account every scenario works in.
const benchAccount = "bench"

// env is one scenario's world: a fresh database, an API key, a receiver, and quikly serve (running or
// stopped), with quikly worker processes beside it in scaleout.
type env struct {
	b     *bench
	name  string
	dbURL string
	drop  func(context.Context) error
	key   string
	args  []string
	conns int

	rcv *receiver
	svc *service   // nil while stopped
	api *apiClient // of svc
	// workers are quikly worker processes against the same database (scaleout); none elsewhere.
	workers []*service
}

// newEnv creates a database named name, an API key of benchAccount, a receiver, and starts quikly
// serve with commonArgs and args. API clients keep up to conns connections alive.
func (b *bench) newEnv(ctx context.Context, name string, conns int, args ...string) (*env, error) {
	dbURL, drop, err := b.dbs.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	e := &env{b: b, name: name, dbURL: dbURL, drop: drop, conns: conns,
		args: append(append([]string{"--database", dbURL}, b.commonArgs()...), args...)}
	if e.rcv, err = newReceiver(); err != nil {
		e.close(ctx)
		return nil, err
	}
	if e.key, err = createAPIKey(ctx, b.bin, dbURL, benchAccount); err != nil {
		e.close(ctx)
		return nil, err
	}
	if err := e.start(ctx); err != nil {
		e.close(ctx)
		return nil, err
	}
	return e, nil
}

// start starts quikly serve.
func (e *env) start(ctx context.Context) error {
	var echo io.Writer
	if e.b.o.Verbose {
		echo = e.b.progress
	}
	svc, err := startQuikly(ctx, e.b.bin, e.args, echo)
	if err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	e.svc, e.api = svc, newAPIClient(svc.Addr, e.key, e.conns)
	return nil
}

// startWorkers starts n quikly worker processes against e's database, and quikly serve too when it
// is stopped, all at once, and waits until each is ready.
func (e *env) startWorkers(ctx context.Context, n int) error {
	var echo io.Writer
	if e.b.o.Verbose {
		echo = e.b.progress
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	if e.svc == nil {
		wg.Go(func() {
			if err := e.start(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	argv := append([]string{"worker", "--worker-addr", "127.0.0.1:0", "--database", e.dbURL}, e.b.workerArgs()...)
	for i := range n {
		wg.Go(func() {
			w, err := startProcess(ctx, e.b.bin, argv, workerLine, echo)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: worker %d: %w", e.name, i+1, err))
				return
			}
			e.workers = append(e.workers, w)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// processes are e's running quikly processes by role: "serve", then "worker-1", "worker-2"….
func (e *env) processes() iter.Seq2[string, *service] {
	return func(yield func(string, *service) bool) {
		if e.svc != nil && !yield("serve", e.svc) {
			return
		}
		for i, w := range e.workers {
			if !yield("worker-"+strconv.Itoa(i+1), w) {
				return
			}
		}
	}
}

// stop stops quikly serve and the workers gracefully.
func (e *env) stop() error {
	var errs []error
	for i, w := range e.workers {
		if err := w.stop(); err != nil {
			errs = append(errs, fmt.Errorf("worker-%d: %w", i+1, err))
		}
	}
	e.workers = nil
	if e.svc == nil {
		return errors.Join(errs...)
	}
	// Idle keep-alive connections would only delay the server's shutdown.
	e.api.close()
	errs = append(errs, e.svc.stop())
	e.svc, e.api = nil, nil
	return errors.Join(errs...)
}

// close stops quikly, the receiver, and drops the database. It reports an unclean stop: SIGTERM must
// end quikly with exit 0 (SPEC §9).
func (e *env) close(ctx context.Context) error {
	err := e.stop()
	if e.rcv != nil {
		e.rcv.close()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return errors.Join(err, e.drop(ctx))
}

// hook creates a webhook through the API, to the receiver (at path /name), subscribed to events, and
// registers its secret with the receiver. hang makes the receiver hold its requests until the sender
// gives up.
func (e *env) hook(ctx context.Context, name string, hang bool, events ...string) (string, error) {
	id, secret, err := e.api.createWebhook(ctx, name, e.rcv.URL+"/"+name, events...)
	if err != nil {
		return "", err
	}
	if err := e.rcv.register(id, secret, hang); err != nil {
		return "", err
	}
	return id, nil
}

// tally copies the receiver's request counts into res.
func (e *env) tally(res *Result) {
	n, bad, why := e.rcv.totals()
	res.Requests += n
	res.Unverified += bad
	if res.FirstUnverified == "" {
		res.FirstUnverified = why
	}
}
