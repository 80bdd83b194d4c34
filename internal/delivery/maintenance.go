package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/quikly/webhooks/internal/store"
)

// Maintenance defaults.
const (
	LogRetentionDefault        = 720 * time.Hour
	MaintenanceIntervalDefault = time.Minute
	maintenanceBatch           = 1000
)

// Maintainer drops held deliveries older than the retention ("expired while paused"), prunes
// attempts older than it and deletes expired web console sessions, in batches, so no statement holds the writer long. Every process may run
// one at once: each batch is an idempotent statement over whatever is old.
type Maintainer struct {
	Store     store.Store
	Retention time.Duration // Defaults to LogRetentionDefault.
	Interval  time.Duration // Defaults to MaintenanceIntervalDefault.
	Now       func() time.Time
	Logger    *slog.Logger
	// Swept, when set, receives a value after each complete run (a test signal).
	Swept chan struct{}
}

// Run runs maintenance every Interval until ctx ends.
func (m *Maintainer) Run(ctx context.Context) {
	m.Retention = cmpOr(m.Retention, LogRetentionDefault)
	m.Interval = cmpOr(m.Interval, MaintenanceIntervalDefault)
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	t := time.NewTicker(m.Interval)
	defer t.Stop()
	for {
		if err := m.RunOnce(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("maintenance", "err", err)
		}
		if m.Swept != nil {
			select {
			case m.Swept <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce expires and prunes everything older than the retention, one batch at a time.
func (m *Maintainer) RunOnce(ctx context.Context) error {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	cutoff := now.Add(-cmpOr(m.Retention, LogRetentionDefault))
	for _, step := range []func(tx store.Tx) (int, error){
		func(tx store.Tx) (int, error) { return ExpireHeld(ctx, tx, cutoff, now, maintenanceBatch) },
		func(tx store.Tx) (int, error) { return FailInterruptedTests(ctx, tx, now, maintenanceBatch) },
		func(tx store.Tx) (int, error) { return tx.AttemptPrune(ctx, cutoff, maintenanceBatch) },
		func(tx store.Tx) (int, error) { return tx.SessionDeleteExpired(ctx, now, maintenanceBatch) },
	} {
		for {
			var n int
			err := m.Store.Tx(ctx, func(tx store.Tx) error {
				var err error
				n, err = step(tx)
				return err
			})
			if err != nil {
				return err
			}
			if n < maintenanceBatch {
				break
			}
		}
	}
	return nil
}
