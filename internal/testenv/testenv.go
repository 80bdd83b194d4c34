// Package testenv starts a real Quikly service for end-to-end tests: a real SQLite file (or the
// PostgreSQL of QUIKLY_TEST_DATABASE_URL, when a driver for it exists), the real HTTP handler on
// loopback, and real loopback receivers that record what they are sent.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/server"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres/pgtest"
	"github.com/quikly/webhooks/internal/webhook"
)

// Env is a running service.
type Env struct {
	t       *testing.T
	Service *server.Service
	// URL is the service's base URL (API under URL + "/api/external/v1").
	URL string
	// Key is an API key of the account "acme".
	Key string

	hooks *hookStore
}

// Options tune Start; the zero value is a service with a 3-step, 50 ms retry schedule, a 2 s
// delivery timeout and private targets allowed (the receivers are on loopback).
type Options struct {
	RetrySchedule   []time.Duration
	DeliveryTimeout time.Duration
	LogRetention    time.Duration
	PerWebhook      int
	PerAccount      int
	Workers         int
	// DisableAfter and MaintenanceInterval: see server.Config.
	DisableAfter        time.Duration
	MaintenanceInterval time.Duration
	// DisallowPrivate keeps the SSRF guard on.
	DisallowPrivate bool
	// RateLimit is API requests per second per key; zero disables the limit (as everywhere).
	RateLimit float64
	// MaxWebhooks caps the webhooks of one account; zero is app.MaxWebhooksDefault.
	MaxWebhooks int
	// Log, when set, receives the service's log lines too (at debug level), for tests of what the
	// log never holds. It must be safe for concurrent writes.
	Log io.Writer
}

// Start starts a service for the test and stops it at cleanup.
func Start(t *testing.T, o Options) *Env {
	t.Helper()
	if o.RetrySchedule == nil {
		o.RetrySchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 2 * time.Second
	}
	cfg := &server.Config{
		DatabaseURL:         DatabaseURL(t),
		RetrySchedule:       o.RetrySchedule,
		DeliveryTimeout:     o.DeliveryTimeout,
		AllowPrivateTargets: !o.DisallowPrivate,
		LogRetention:        o.LogRetention,
		RateLimit:           o.RateLimit,
		Workers:             o.Workers,
		PerAccount:          o.PerAccount,
		PerWebhook:          o.PerWebhook,
		DisableAfter:        o.DisableAfter,
		MaintenanceInterval: o.MaintenanceInterval,
		MaxWebhooks:         o.MaxWebhooks,
	}
	db, err := server.OpenStore(context.Background(), cfg)
	require.NoError(t, err)
	st := &hookStore{Store: db}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	if o.Log != nil {
		var w io.Writer = o.Log
		if testing.Verbose() {
			w = io.MultiWriter(o.Log, testWriter{t})
		}
		log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := server.New(cfg, st, log)
	if err != nil {
		db.Close()
		require.NoError(t, err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = svc.HTTPServer(nil) // the production server's limits
	srv.Start()
	svc.App.BaseURL = srv.URL
	srv.Config.Handler = svc.Handler()
	require.NoError(t, svc.Start(context.Background()))
	t.Cleanup(func() {
		srv.Close()
		svc.Stop()
	})
	e := &Env{t: t, Service: svc, URL: srv.URL, hooks: st}
	e.Key = e.NewKey("acme")
	return e
}

// BackendEnv names the variable that picks the store of end-to-end tests: "postgres" runs them on a
// fresh PostgreSQL database of QUIKLY_TEST_DATABASE_URL; anything else on a SQLite file.
const BackendEnv = "QUIKLY_TEST_BACKEND"

// DatabaseURL returns the URL of a fresh, empty database for one test, on the backend BackendEnv picks.
func DatabaseURL(t *testing.T) string {
	t.Helper()
	if os.Getenv(BackendEnv) == "postgres" {
		// A small pool: many tests share one server's connection limit.
		return pgtest.NewDatabase(t) + "?pool_max_conns=4"
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "quikly.db")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// NewKey returns a new API key of the named account, creating the account if needed.
func (e *Env) NewKey(account string) string {
	key, err := e.Service.App.CreateAPIKey(context.Background(), account)
	require.NoError(e.t, err)
	return key
}

// Response is an API response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *Response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Do sends an API request as key; body is marshalled to JSON unless it is a string or nil, and sent
// as application/json.
func (e *Env) Do(key, method, path string, body any) *Response {
	e.t.Helper()
	switch b := body.(type) {
	case nil:
		return e.DoRaw(key, method, path, "", "")
	case string:
		return e.DoRaw(key, method, path, "application/json", b)
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		return e.DoRaw(key, method, path, "application/json", string(data))
	}
}

// DoRaw sends an API request with a body as given and the Content-Type given ("" for none).
func (e *Env) DoRaw(key, method, path, contentType, body string) *Response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, e.URL+"/api/external/v1"+path, rd)
	require.NoError(e.t, err)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.APIClient().Do(req) // checks each response against the OpenAPI document
	require.NoError(e.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return &Response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// MaxPerSecond sorts at and returns the most of its times within any sliding second (a rate
// limit's check at a receiver).
func MaxPerSecond(at []time.Time) int {
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	most, j := 0, 0
	for i := range at {
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		most = max(most, j-i)
	}
	return most
}

// Received is one request a Receiver got.
type Received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a loopback HTTP endpoint that records every request and answers with Status (200 by
// default) or with Handler when set.
type Receiver struct {
	URL string
	got chan Received

	mu      sync.Mutex
	all     []Received
	status  int
	handler http.HandlerFunc
}

// NewReceiver starts a receiver, closed at cleanup.
func NewReceiver(t *testing.T) *Receiver {
	r := &Receiver{got: make(chan Received, 100000), status: http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := Received{Header: req.Header.Clone(), Body: body, At: time.Now()}
		r.mu.Lock()
		r.all = append(r.all, rec)
		status, handler := r.status, r.handler
		r.mu.Unlock()
		r.got <- rec
		if handler != nil {
			handler(w, req)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

// Respond makes the receiver answer status from now on.
func (r *Receiver) Respond(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.handler = status, nil
}

// Handle makes the receiver answer with h from now on (after recording the request).
func (r *Receiver) Handle(h http.HandlerFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handler = h
}

// Next waits for the next request, failing the test after a generous deadline (a hang guard, not a
// timing assertion).
func (r *Receiver) Next(t *testing.T) Received {
	t.Helper()
	select {
	case rec := <-r.got:
		return rec
	case <-time.After(30 * time.Second):
		t.Fatal("receiver: no request arrived")
		return Received{}
	}
}

// All returns every request received so far.
func (r *Receiver) All() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.all...)
}

// AccountID returns the account of an API key.
func (e *Env) AccountID(key string) string {
	e.t.Helper()
	acct, err := e.Service.App.Authenticate(context.Background(), key)
	require.NoError(e.t, err)
	return acct.ID
}

// Publish publishes an event for the account of key through the delivery engine's Go API, in its own
// transaction, and wakes the dispatcher.
func (e *Env) Publish(key, eventType string, data any) *webhook.Event {
	e.t.Helper()
	ctx := context.Background()
	var ev *webhook.Event
	// Outside the transaction: authenticating may write (a key's last use), and on SQLite a Tx inside
	// a Tx waits for itself.
	acct := e.AccountID(key)
	require.NoError(e.t, e.Service.Store.Tx(ctx, func(tx store.Tx) error {
		var err error
		ev, _, err = delivery.Publish(ctx, tx, nil, acct, eventType, data, time.Now())
		return err
	}))
	e.Service.Dispatcher.Notify()
	return ev
}

// Metric returns the value of a sample of /metrics, e.g. `quikly_deliveries_total{outcome="failed"}`;
// 0 when absent.
func (e *Env) Metric(sample string) float64 {
	e.t.Helper()
	res, err := http.Get(e.URL + "/metrics")
	require.NoError(e.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(e.t, err)
			return f
		}
	}
	return 0
}
