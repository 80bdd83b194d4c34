package delivery

import (
	"context"
	"time"

	"github.com/quikly/webhooks/internal/randid"
	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// ExpireHeld fails up to limit deliveries held since before cutoff, each with a log entry saying it
// expired while paused (SPEC §5), and returns how many it failed.
func ExpireHeld(ctx context.Context, tx store.Tx, cutoff, now time.Time, limit int) (int, error) {
	ds, err := tx.DeliveryListHeld(ctx, cutoff, limit)
	if err != nil {
		return 0, err
	}
	return len(ds), failWith(ctx, tx, ds, webhook.ErrorExpiredWhilePaused, now)
}

// FailInterruptedTests fails up to limit test deliveries whose sender died during the attempt (their
// lease ended at or before now), each with a log entry saying so: tests are never retried, not even
// after a crash (SPEC §13). It returns how many it failed.
func FailInterruptedTests(ctx context.Context, tx store.Tx, now time.Time, limit int) (int, error) {
	ds, err := tx.DeliveryListInterrupted(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	return len(ds), failWith(ctx, tx, ds, webhook.ErrorTestInterrupted, now)
}

// failWith fails ds, logging one attempt with reason as its error for each.
func failWith(ctx context.Context, tx store.Tx, ds []*webhook.Delivery, reason string, now time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	as := make([]*webhook.Attempt, len(ds))
	for i, d := range ds {
		as[i] = &webhook.Attempt{ID: randid.New("att_"), DeliveryID: d.ID, WebhookID: d.WebhookID,
			AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType, Number: d.Attempts + 1,
			Error: reason, RequestHeaders: map[string]string{}, CreatedAt: now}
	}
	return tx.DeliveryFail(ctx, as, now)
}
