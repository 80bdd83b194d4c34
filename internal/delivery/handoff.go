package delivery

import (
	"time"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Handoff hands the deliveries of one publish to this process's dispatcher as they are written,
// leased, so that each is attempted as soon as the publish commits, without a claim. Only a
// delivery that a claim would start at once goes this way: its webhook answers (its latest attempt
// here succeeded and none failed since), has no rate limit, nothing claimed ahead and a free slot
// within every cap. Every other delivery is written due, for the claims.
//
// A claim costs a read of the due webhooks and a write transaction after the publish's own, and
// its turn at SQLite's one writer comes after whatever else queued there: at a steady 50 creates a
// second, a fifth of a healthy webhook's create→receipt time (BENCHMARKS.md). A handed-off
// delivery is leased like a claimed one: if the process dies before its attempt's outcome is
// written, the lease ends and a claim takes it up again.
//
// Use one Handoff per transaction: pass it to Publish and call Done with the transaction's result.
// A nil *Handoff hands nothing off.
type Handoff struct {
	d     *Dispatcher
	taken []*store.ClaimedDelivery
}

// Handoff returns a Handoff for one publish's transaction.
func (d *Dispatcher) Handoff() *Handoff { return &Handoff{d: d} }

// take leases dl, a delivery to w being published at now, to this process and holds a slot for it,
// if it can be attempted at once (see Handoff). It reports whether it did.
func (h *Handoff) take(w *webhook.Webhook, dl *webhook.Delivery, now time.Time) bool {
	if h == nil || dl.State != webhook.DeliveryPending || w.RateLimit > 0 || w.ConsecutiveFailures > 0 {
		return false
	}
	d := h.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopping || !d.answering[w.ID] || len(d.queued[w.ID]) > 0 ||
		d.inflight.total >= d.cfg.Workers || d.inflight.account[w.AccountID] >= d.cfg.PerAccount ||
		d.inflight.hook[w.ID] >= d.cfg.PerWebhook {
		return false
	}
	d.inflight.add(w.ID, w.AccountID, 1)
	// Counted now, while Stop has not begun (stopping is false), so that Stop waits for it.
	d.attempts.Add(1)
	lease := leaseUntil(now, d.timeout).Truncate(time.Millisecond) // as the stores keep it
	dl.NextAttemptAt, dl.LockedUntil = lease, lease
	h.taken = append(h.taken, claimed(w, dl, now, lease))
	return true
}

// Done attempts what the Handoff took if its transaction committed (err == nil), and otherwise
// gives the slots back: nothing was written (or, if a commit that failed was written after all,
// the leases end and claims take the deliveries up).
func (h *Handoff) Done(err error) {
	if h == nil || len(h.taken) == 0 {
		return
	}
	d := h.d
	d.mu.Lock()
	for _, c := range h.taken {
		if err != nil {
			d.inflight.add(c.WebhookID, c.AccountID, -1)
			d.attempts.Done()
			continue
		}
		d.markServed(c)
		go d.attempt(c)
	}
	d.mu.Unlock()
	if err != nil {
		d.Notify() // the slots are free again
	} else {
		d.cfg.Metrics.HandedOff(len(h.taken))
	}
	h.taken = nil
}
