package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// DisableAfterDefault is how long a webhook may fail without one success before it is disabled.
const DisableAfterDefault = 120 * time.Hour

// DisableFailing disables, in tx, up to limit webhooks none of whose attempts has succeeded since
// before now-after, having failed at least webhook.DisableMinFailures: each is paused with
// disabled_reason "failing" (its deliveries are held) and a webhook.disabled event goes to the
// account's other webhooks that subscribe to it. It returns the webhooks it disabled.
func DisableFailing(ctx context.Context, tx store.Tx, now time.Time, after time.Duration, limit int) ([]*webhook.Webhook, error) {
	failing, err := tx.WebhookListFailing(ctx, &store.WebhookListFailingParams{
		FailingSince: now.Add(-after), MinFailures: webhook.DisableMinFailures, Limit: limit})
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	for _, w := range failing {
		w.IsActive, w.DisabledReason, w.DisabledAt, w.UpdatedAt = false, webhook.DisabledFailing, now, now
		if err := tx.WebhookUpdate(ctx, w); err != nil {
			return nil, fmt.Errorf("disable webhook %s: %w", w.ID, err)
		}
		hooks, err := tx.WebhookListSubscribed(ctx, w.AccountID, webhook.WebhookDisabled)
		if err != nil {
			return nil, fmt.Errorf("disable webhook %s: %w", w.ID, err)
		}
		others := hooks[:0]
		for _, h := range hooks {
			if h.ID != w.ID {
				others = append(others, h)
			}
		}
		data, err := json.Marshal(webhook.NewDisabledData(w, w.FailingSince, w.LastError))
		if err != nil {
			return nil, err
		}
		if _, _, err := publishTo(ctx, tx, nil, w.AccountID, webhook.WebhookDisabled, json.RawMessage(data), now, others, time.Time{}); err != nil {
			return nil, fmt.Errorf("disable webhook %s: %w", w.ID, err)
		}
	}
	return failing, nil
}
