// Package server assembles the service: store, use cases, dispatcher, maintenance and the HTTP server
// (API, UI, health, metrics), and shuts it all down gracefully.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/quikly/webhooks/internal/ui"
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

// Config is the service's configuration (SPEC §1); the CLI fills it from flags and QUIKLY_* vars.
type Config struct {
	Addr                string
	DatabaseURL         string
	BaseURL             string
	RetrySchedule       []time.Duration
	DeliveryTimeout     time.Duration
	AllowPrivateTargets bool
	LogRetention        time.Duration
	EncryptionKey       string
	// RateLimit is API requests per second per key; 0 is api.RateLimitDefault, -1 disables.
	RateLimit float64
	// Workers and PerWebhook size the dispatcher; zero means the defaults.
	Workers    int
	PerWebhook int
	// ApplicationName names the process's PostgreSQL connections ("" for the driver's default).
	ApplicationName string
	// MaxWebhooks caps the webhooks of one account; zero means app.MaxWebhooksDefault.
	MaxWebhooks int
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
	Registry   *prometheus.Registry
	cfg        *Config
	log        *slog.Logger
	// Maintainer expires held deliveries and prunes old logs.
	Maintainer *delivery.Maintainer
	stopMaint  context.CancelFunc
	maintDone  chan struct{}
}

// New wires the service over an open store.
func New(cfg *Config, st store.Store, log *slog.Logger) *Service {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newQueueCollector(st))
	metrics := delivery.NewMetrics(reg)
	timeout := cmpOr(cfg.DeliveryTimeout, delivery.TimeoutDefault)
	sender := delivery.NewSender(delivery.SenderConfig{Timeout: timeout, AllowPrivate: cfg.AllowPrivateTargets, UserAgent: UserAgent()})
	policy := delivery.RetryPolicy{Schedule: cfg.RetrySchedule}
	d := &delivery.Dispatcher{Store: st, Sender: sender, Policy: policy, Metrics: metrics, Logger: log,
		Timeout: timeout, Workers: cfg.Workers, PerWebhook: cfg.PerWebhook}
	a := &app.App{Store: st, Sender: sender, Metrics: metrics, BaseURL: strings.TrimRight(cfg.BaseURL, "/"),
		AllowPrivateTargets: cfg.AllowPrivateTargets, LeaseDuration: timeout + delivery.LeaseMargin, Notify: d.Notify,
		MaxWebhooks: cfg.MaxWebhooks, LogRetention: cfg.LogRetention}
	return &Service{Store: st, App: a, Dispatcher: d, Registry: reg, cfg: cfg, log: log,
		Maintainer: &delivery.Maintainer{Store: st, Retention: cfg.LogRetention, Logger: log}}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Handler returns the HTTP handler: API, health and metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/p/", ui.NewSharePages(s.App, s.log))
	mux.Handle("/", ui.NewConsole(s.App, s.log))
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

// Start starts delivery and maintenance.
func (s *Service) Start() {
	s.Dispatcher.Start()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopMaint = cancel
	s.maintDone = make(chan struct{})
	go func() { defer close(s.maintDone); s.Maintainer.Run(ctx) }()
}

// Stop stops claiming, lets in-flight attempts finish (each within the delivery timeout), writes their
// outcomes, stops maintenance and closes the store.
func (s *Service) Stop() {
	s.stopMaint()
	<-s.maintDone
	s.Dispatcher.Stop()
	s.Store.Close()
}

// Run serves on ln and delivers until ctx ends, then shuts down gracefully: the HTTP server stops
// taking requests, and Stop finishes the deliveries in flight.
func (s *Service) Run(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	s.Start()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	s.log.Info("shutting down: finishing in-flight deliveries")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	s.Stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
