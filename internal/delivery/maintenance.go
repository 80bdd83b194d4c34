package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quikly/webhooks/internal/clock"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/testsignal"
)

// Maintainer defaults.
const (
	// LogRetentionDefault is how long attempts, and held deliveries, are kept (--log-retention).
	LogRetentionDefault = 720 * time.Hour
	// MaintenanceIntervalDefault is how often maintenance runs.
	MaintenanceIntervalDefault = time.Minute
	// MaintenanceBatchSizeDefault caps the rows one maintenance statement touches.
	MaintenanceBatchSizeDefault = 1000
)

// MaintainerConfig configures a Maintainer. Its zero fields take their defaults; Store is required.
type MaintainerConfig struct {
	// Store is the database maintained.
	Store store.Store
	// Retention is how long logs and held deliveries are kept. Defaults to LogRetentionDefault.
	Retention time.Duration
	// DisableAfter is how long a webhook may fail without one success before it is disabled.
	// Defaults to DisableAfterDefault; negative never disables.
	DisableAfter time.Duration
	// Interval is the time between runs. Defaults to MaintenanceIntervalDefault.
	Interval time.Duration
	// BatchSize caps the rows of one statement. Defaults to MaintenanceBatchSizeDefault; must be at
	// least 1.
	BatchSize int
	// StoreTimeout bounds each batch. Defaults to StoreTimeoutDefault.
	StoreTimeout time.Duration
	// Clock decides what is old; nil means the real clock.
	Clock clock.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every zero field that has a default set to it.
func (c *MaintainerConfig) WithDefaults() *MaintainerConfig {
	out := *c
	out.Retention = cmp.Or(c.Retention, LogRetentionDefault)
	out.DisableAfter = cmp.Or(c.DisableAfter, DisableAfterDefault)
	out.Interval = cmp.Or(c.Interval, MaintenanceIntervalDefault)
	out.BatchSize = cmp.Or(c.BatchSize, MaintenanceBatchSizeDefault)
	out.StoreTimeout = cmp.Or(c.StoreTimeout, StoreTimeoutDefault)
	out.Logger = cmp.Or(c.Logger, slog.Default())
	return &out
}

func (c *MaintainerConfig) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("maintainer: Store is required")
	case c.Retention <= 0:
		return fmt.Errorf("maintainer: Retention must be positive, got %s", c.Retention)
	case c.Interval <= 0:
		return fmt.Errorf("maintainer: Interval must be positive, got %s", c.Interval)
	case c.BatchSize < 1:
		return fmt.Errorf("maintainer: BatchSize must be at least 1, got %d", c.BatchSize)
	case c.StoreTimeout <= 0:
		return fmt.Errorf("maintainer: StoreTimeout must be positive, got %s", c.StoreTimeout)
	}
	return nil
}

// Maintainer disables webhooks that have failed for DisableAfter (publishing webhook.disabled), drops held deliveries older than the retention ("expired while paused"), fails test
// deliveries whose sender died mid-attempt (tests are never retried), prunes attempts older than the
// retention and deletes expired web console sessions, in batches, so no statement holds
// the writer long. Every process may run one at once: each batch is an idempotent statement over
// whatever is old. Create it with NewMaintainer; Start it once and Stop it.
type Maintainer struct {
	cfg *MaintainerConfig

	startOnce sync.Once
	stopOnce  sync.Once
	started   bool
	cancel    context.CancelFunc
	done      chan struct{}

	// TestSignals tell a test when a run has finished. Disabled unless a test initialises them.
	TestSignals MaintainerTestSignals
}

// MaintainerTestSignals are the test signals of a Maintainer.
type MaintainerTestSignals struct {
	// Swept receives the error of each complete run (nil when it succeeded).
	Swept testsignal.Signal[error]
}

// Init enables the signals; call it before Start.
func (ts *MaintainerTestSignals) Init() { ts.Swept.Init() }

// NewMaintainer returns a maintainer configured by cfg, or an error saying which setting is invalid.
func NewMaintainer(cfg *MaintainerConfig) (*Maintainer, error) {
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &Maintainer{cfg: c}, nil
}

// Start runs maintenance at once and then every Interval until Stop or until ctx ends. It fails if
// called twice.
func (m *Maintainer) Start(ctx context.Context) error {
	err := errors.New("maintainer: already started")
	m.startOnce.Do(func() {
		err = nil
		ctx, m.cancel = context.WithCancel(ctx)
		m.done = make(chan struct{})
		m.started = true
		go m.run(ctx)
	})
	return err
}

// Stop ends maintenance, cancelling a run in progress (each batch is its own transaction, so nothing
// is left half done), and waits for it. Stop before Start, and a second Stop, do nothing.
func (m *Maintainer) Stop() {
	m.startOnce.Do(func() {})
	if !m.started {
		return
	}
	m.stopOnce.Do(func() {
		m.cancel()
		<-m.done
	})
}

func (m *Maintainer) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		err := m.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			m.cfg.Logger.Error("maintenance", "err", err)
		}
		m.TestSignals.Swept.Signal(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce expires and prunes everything older than the retention, one batch at a time.
func (m *Maintainer) RunOnce(ctx context.Context) error {
	now := clock.Now(m.cfg.Clock)
	cutoff := now.Add(-m.cfg.Retention)
	batch := m.cfg.BatchSize
	for _, step := range []struct {
		name string
		run  func(ctx context.Context, tx store.Tx) (int, error)
	}{
		{"disable failing webhooks", func(ctx context.Context, tx store.Tx) (int, error) {
			if m.cfg.DisableAfter < 0 {
				return 0, nil
			}
			disabled, err := DisableFailing(ctx, tx, now, m.cfg.DisableAfter, batch)
			for _, w := range disabled {
				m.cfg.Logger.Warn("webhook disabled: no attempt succeeded", "webhook", w.ID, "account", w.AccountID,
					"failing_since", w.FailingSince, "failures", w.ConsecutiveFailures, "last_error", w.LastError)
			}
			return len(disabled), err
		}},
		{"expire held deliveries", func(ctx context.Context, tx store.Tx) (int, error) {
			return ExpireHeld(ctx, tx, cutoff, now, batch)
		}},
		{"fail interrupted tests", func(ctx context.Context, tx store.Tx) (int, error) {
			return FailInterruptedTests(ctx, tx, now, batch)
		}},
		{"prune attempts", func(ctx context.Context, tx store.Tx) (int, error) { return tx.AttemptPrune(ctx, cutoff, batch) }},
		{"delete expired sessions", func(ctx context.Context, tx store.Tx) (int, error) {
			return tx.SessionDeleteExpired(ctx, now, batch)
		}},
	} {
		for {
			var n int
			tctx, cancel := context.WithTimeout(ctx, m.cfg.StoreTimeout)
			err := m.cfg.Store.Tx(tctx, func(tx store.Tx) error {
				var err error
				n, err = step.run(tctx, tx)
				return err
			})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", step.name, err)
			}
			if n < batch {
				break
			}
		}
	}
	return nil
}
