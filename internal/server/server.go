// Package server assembles the service: store, use cases, dispatcher, maintenance and the HTTP server
// (API, UI, health, metrics), and shuts it all down gracefully.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quikly/webhooks/internal/api"
	"github.com/quikly/webhooks/internal/app"
	"github.com/quikly/webhooks/internal/delivery"
	"github.com/quikly/webhooks/internal/secretbox"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/store/postgres"
	"github.com/quikly/webhooks/internal/store/sqlite"
	"github.com/quikly/webhooks/internal/ui/console"
	"github.com/quikly/webhooks/internal/ui/share"
)

// Version is the build's version, set with -ldflags "-X …/server.Version=v1.2.3"; otherwise the
// module version from the build info, or "dev".
var Version = ""

// UserAgent returns the User-Agent of deliveries.
func UserAgent() string {
	v := Version
	if v == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if v == "" {
		v = "dev"
	}
	return "Quikly-Webhooks/" + v
}

// HTTP server defaults (SPEC §15: slow clients are bounded).
const (
	// ReadTimeoutDefault bounds how long a whole request, headers and body, may take to arrive.
	ReadTimeoutDefault = 30 * time.Second
	// ReadHeaderTimeoutDefault bounds the headers alone, tighter than the whole request.
	ReadHeaderTimeoutDefault = 10 * time.Second
	// IdleTimeoutDefault closes a keep-alive connection that carries no request for this long.
	IdleTimeoutDefault = 120 * time.Second
	// ShutdownTimeoutDefault is how long a graceful shutdown waits for requests in progress.
	ShutdownTimeoutDefault = 15 * time.Second
)

// Config is the service's configuration (SPEC §1); the CLI fills it from flags and QUIKLY_* vars.
// Zero durations and counts take their defaults; negative ones are invalid (see Validate).
type Config struct {
	Addr          string
	DatabaseURL   string
	BaseURL       string
	RetrySchedule []time.Duration
	// DeliveryTimeout bounds each attempt. Defaults to delivery.TimeoutDefault.
	DeliveryTimeout     time.Duration
	AllowPrivateTargets bool
	// LogRetention is how long delivery logs are kept. Defaults to delivery.LogRetentionDefault.
	LogRetention  time.Duration
	EncryptionKey string
	// RateLimit is API requests per second per account (bursts of twice that); 0 disables the limit.
	RateLimit float64
	// Workers, PerAccount and PerWebhook bound the attempts in flight. Zero means the defaults
	// (delivery.WorkersDefault, …); negative is invalid.
	Workers    int
	PerAccount int
	PerWebhook int
	// UnansweredRate paces the attempts to webhooks that do not answer (per second, in all); 0 is
	// delivery.UnansweredRateDefault, negative no bound.
	UnansweredRate float64
	// DisableAfter is how long a webhook may fail before it is disabled; 0 is the default, negative
	// never disables.
	DisableAfter time.Duration
	// MaintenanceInterval is how often maintenance runs; 0 is the default.
	MaintenanceInterval time.Duration
	// ApplicationName names the process's PostgreSQL connections ("" for the driver's default).
	ApplicationName string
	// MaxWebhooks caps the webhooks of one account; zero means app.MaxWebhooksDefault, -1 no cap.
	MaxWebhooks int
	// ReadTimeout bounds a whole request (headers and body). Defaults to ReadTimeoutDefault.
	ReadTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Defaults to IdleTimeoutDefault.
	IdleTimeout time.Duration
}

// Validate reports the first setting that is out of range, naming it. New calls it too; the CLI
// calls it before it opens the database, so a bad flag fails before anything starts.
func (c *Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"delivery timeout", c.DeliveryTimeout}, {"log retention", c.LogRetention},
		{"read timeout", c.ReadTimeout}, {"idle timeout", c.IdleTimeout}, {"maintenance interval", c.MaintenanceInterval},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s must be positive, got %s", d.name, d.v)
		}
	}
	for i, d := range c.RetrySchedule {
		if d <= 0 {
			return fmt.Errorf("retry schedule entry %d must be positive, got %s", i+1, d)
		}
	}
	switch {
	case c.Workers < 0:
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	case c.PerAccount < 0:
		return fmt.Errorf("per-account must be at least 1, got %d", c.PerAccount)
	case c.PerWebhook < 0:
		return fmt.Errorf("per-webhook must be at least 1, got %d", c.PerWebhook)
	case c.MaxWebhooks < -1:
		return fmt.Errorf("max webhooks must be at least 1 (or -1: no cap), got %d", c.MaxWebhooks)
	case math.IsNaN(c.UnansweredRate) || math.IsInf(c.UnansweredRate, 0):
		return fmt.Errorf("unanswered rate must be a number, got %v", c.UnansweredRate)
	case c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0):
		return fmt.Errorf("rate limit must be 0 (disabled) or a positive number, got %v", c.RateLimit)
	}
	return nil
}

// OpenStore opens the database named by cfg.DatabaseURL, migrates it and checks the encryption key
// against the one that sealed its secrets.
func OpenStore(ctx context.Context, cfg *Config) (store.Store, error) {
	var box *secretbox.Box
	if cfg.EncryptionKey != "" {
		var err error
		if box, err = secretbox.New(cfg.EncryptionKey); err != nil {
			return nil, err
		}
	}
	var st store.Store
	switch path, ok := sqlite.PathFromURL(cfg.DatabaseURL); {
	case ok:
		db, err := sqlite.Open(ctx, path, sqlite.Options{Box: box})
		if err != nil {
			return nil, err
		}
		st = db
	case IsPostgres(cfg.DatabaseURL):
		db, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Box: box, ApplicationName: cfg.ApplicationName})
		if err != nil {
			return nil, fmt.Errorf("postgres %s: %w", RedactURL(cfg.DatabaseURL), err)
		}
		st = db
	default:
		return nil, fmt.Errorf("database URL %q: use sqlite:PATH or postgres://…", RedactURL(cfg.DatabaseURL))
	}
	if err := checkEncryptionKey(ctx, st, box); err != nil {
		st.Close()
		return nil, err
	}
	// With a key, no secret stays in clear: those written before the key was set are sealed now.
	if _, err := st.WebhookSealSecrets(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// encryptionCheck is a sealed known value: opening it proves the key is the one that sealed secrets.
const (
	encryptionCheckSetting = "encryption_check"
	encryptionCheckValue   = "quikly-encryption-check"
)

func checkEncryptionKey(ctx context.Context, st store.Store, box *secretbox.Box) error {
	return st.Tx(ctx, func(tx store.Tx) error {
		sealed, err := tx.SettingGet(ctx, encryptionCheckSetting)
		if err != nil {
			return err
		}
		switch {
		case sealed == "" && box != nil:
			return tx.SettingSet(ctx, encryptionCheckSetting, box.Seal(encryptionCheckValue))
		case sealed == "":
			return nil
		case box == nil:
			return errors.New("webhook secrets in this database are encrypted: set QUIKLY_ENCRYPTION_KEY to the key that encrypted them")
		}
		if v, err := box.Open(sealed); err != nil || v != encryptionCheckValue {
			return errors.New("QUIKLY_ENCRYPTION_KEY is not the key that encrypted this database's webhook secrets")
		}
		return nil
	})
}

// isSQLite reports whether st is SQLite, whose writes take turns on one writer.
func isSQLite(st store.Store) bool {
	_, ok := st.(*sqlite.DB)
	return ok
}

// IsPostgres reports whether a database URL names PostgreSQL.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// RedactURL hides a password in a database URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Service is a running quikly serve: HTTP server and delivery.
type Service struct {
	Store      store.Store
	App        *app.App
	Dispatcher *delivery.Dispatcher
	// Maintainer expires held deliveries and prunes old logs.
	Maintainer *delivery.Maintainer
	Registry   *prometheus.Registry
	cfg        *Config
	log        *slog.Logger
}

// New wires the service over an open store, or says which setting of cfg is invalid.
func New(cfg *Config, st store.Store, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newQueueCollector(st))
	metrics := delivery.NewMetrics(reg)
	sender := delivery.NewSender(delivery.SenderConfig{Timeout: cfg.DeliveryTimeout, AllowPrivate: cfg.AllowPrivateTargets, UserAgent: UserAgent()})
	d, err := delivery.NewDispatcher(&delivery.DispatcherConfig{Store: st, Sender: sender,
		Policy: delivery.RetryPolicy{Schedule: cfg.RetrySchedule}, Metrics: metrics, Logger: log,
		Workers: cfg.Workers, PerAccount: cfg.PerAccount, PerWebhook: cfg.PerWebhook, UnansweredRate: cfg.UnansweredRate,
		OneWriter: isSQLite(st)})
	if err != nil {
		return nil, err
	}
	m, err := delivery.NewMaintainer(&delivery.MaintainerConfig{Store: st, Retention: cfg.LogRetention, Logger: log,
		DisableAfter: cfg.DisableAfter, Interval: cfg.MaintenanceInterval})
	if err != nil {
		return nil, err
	}
	a := &app.App{Store: st, Tester: &delivery.Tester{Store: st, Sender: sender, Metrics: metrics},
		BaseURL: strings.TrimRight(cfg.BaseURL, "/"), AllowPrivateTargets: cfg.AllowPrivateTargets, Notify: d.Notify, Handoff: d.Handoff,
		MaxWebhooks: cfg.MaxWebhooks, LogRetention: cfg.LogRetention}
	return &Service{Store: st, App: a, Dispatcher: d, Maintainer: m, Registry: reg, cfg: cfg, log: log}, nil
}

// Handler returns the HTTP handler: API, health and metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/p/", share.New(s.App, s.log))
	mux.Handle("/", console.New(s.App, s.log))
	s.addOps(mux)
	return api.New(s.App, api.Config{RateLimit: s.cfg.RateLimit, Logger: s.log}).Mount(mux)
}

// OpsHandler returns the handler of a delivery-only process: /healthz, /readyz and /metrics.
func (s *Service) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	s.addOps(mux)
	return mux
}

// addOps adds /healthz, /readyz and /metrics.
func (s *Service) addOps(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Store.Ping(ctx); err != nil {
			http.Error(w, "database unreachable\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
}

// HTTPServer returns the HTTP server of handler, bounding slow clients (SPEC §15): a whole request
// must arrive within ReadTimeout and an idle keep-alive connection closes after IdleTimeout. There is
// no WriteTimeout on purpose: it would count the handler's time too, and a synchronous test send
// answers only after its attempt, which may take the whole delivery timeout.
func (s *Service) HTTPServer(handler http.Handler) *http.Server {
	read := cmp.Or(s.cfg.ReadTimeout, ReadTimeoutDefault)
	return &http.Server{
		Handler:           handler,
		ReadTimeout:       read,
		ReadHeaderTimeout: min(read, ReadHeaderTimeoutDefault),
		IdleTimeout:       cmp.Or(s.cfg.IdleTimeout, IdleTimeoutDefault),
	}
}

// Start starts delivery and maintenance; ctx ending stops claiming and maintenance (Stop still
// waits for the attempts in flight).
func (s *Service) Start(ctx context.Context) error {
	if err := s.Dispatcher.Start(ctx); err != nil {
		return err
	}
	if err := s.Maintainer.Start(ctx); err != nil {
		s.Dispatcher.Stop()
		return err
	}
	return nil
}

// Stop stops maintenance and claiming, lets in-flight attempts finish (each within the delivery
// timeout), writes their outcomes and closes the store.
func (s *Service) Stop() {
	s.Maintainer.Stop()
	s.Dispatcher.Stop()
	s.Store.Close()
}

// Run serves on ln and delivers until ctx ends, then shuts down gracefully: the HTTP server stops
// taking requests, and Stop finishes the deliveries in flight.
func (s *Service) Run(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := s.HTTPServer(handler)
	// Delivery outlives ctx: it stops in Stop, after the HTTP server, so in-flight work finishes.
	if err := s.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	s.log.Info("shutting down: finishing in-flight deliveries")
	shutCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeoutDefault)
	defer cancel()
	srv.Shutdown(shutCtx)
	s.Stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
