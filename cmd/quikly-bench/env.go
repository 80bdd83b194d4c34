package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// benchAccount is the account every scenario works in.
const benchAccount = "bench"

// env is one scenario's world: a fresh database, an API key, a receiver, and quikly serve (running or
// stopped).
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

// stop stops quikly serve gracefully.
func (e *env) stop() error {
	if e.svc == nil {
		return nil
	}
	// Idle keep-alive connections would only delay the server's shutdown.
	e.api.close()
	err := e.svc.stop()
	e.svc, e.api = nil, nil
	return err
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
