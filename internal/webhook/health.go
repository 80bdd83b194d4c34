package webhook

import "time"

// Health rules of SPEC §11.
const (
	// BreakerThreshold is how many consecutive failed attempts open a webhook's circuit breaker: from
	// then on it gets one attempt in flight at a time, across every process, until one succeeds.
	BreakerThreshold = 5
	// DisableMinFailures is how many attempts must have failed, with none succeeding, before a
	// webhook failing for longer than the disable-after period is disabled.
	DisableMinFailures = 10
	// DisabledFailing is the disabled_reason of a webhook the service disabled for failing.
	DisabledFailing = "failing"
)

// Health is what the outcomes of a webhook's attempts say about its endpoint. The dispatcher's
// outcome writes keep it; nothing else changes it but a resume, which clears it.
type Health struct {
	// ConsecutiveFailures counts the failed attempts since the last success.
	ConsecutiveFailures int
	// FailingSince is when the first of those failed; zero while the last attempt succeeded.
	FailingSince time.Time
	// LastError is the error of the last failed attempt ("" when none failed yet).
	LastError string
	// DisabledReason is DisabledFailing once the service disabled the webhook, "" otherwise (a pause
	// by the user leaves it empty); DisabledAt is when.
	DisabledReason string
	DisabledAt     time.Time
}

// BreakerOpen reports whether the webhook may have only one attempt in flight.
func (h Health) BreakerOpen() bool { return h.ConsecutiveFailures >= BreakerThreshold }

// HealthChange is what a batch of outcomes does to one webhook's health, in the order they happened.
type HealthChange struct {
	WebhookID string
	// Succeeded reports whether any attempt of the batch succeeded; the counts below then start
	// after the last success instead of adding to the stored ones.
	Succeeded bool
	// Failures counts the failed attempts (after the last success, when Succeeded).
	Failures int
	// FirstFailure is when the first of those failed; LastError is the last one's error.
	FirstFailure time.Time
	LastError    string
}

// HealthChanges folds a batch of attempts, in the order they ended, into one change per webhook, in
// first-seen order. Callers leave test attempts out: a customer's test of a broken endpoint is not a
// failing delivery.
func HealthChanges(attempts []*Attempt) []*HealthChange {
	var out []*HealthChange
	byHook := map[string]*HealthChange{}
	for _, a := range attempts {
		c := byHook[a.WebhookID]
		if c == nil {
			c = &HealthChange{WebhookID: a.WebhookID}
			byHook[a.WebhookID] = c
			out = append(out, c)
		}
		if a.Succeeded {
			c.Succeeded, c.Failures, c.FirstFailure, c.LastError = true, 0, time.Time{}, ""
			continue
		}
		if c.Failures == 0 || a.CreatedAt.Before(c.FirstFailure) {
			c.FirstFailure = a.CreatedAt
		}
		c.Failures++
		c.LastError = a.Error
	}
	return out
}

// SetActive pauses or resumes w. Resuming a paused or disabled webhook clears its disabled reason
// and its failure count: it starts afresh, with a whole disable-after period and a closed breaker.
func (w *Webhook) SetActive(active bool) {
	if active && !w.IsActive {
		w.DisabledReason, w.DisabledAt = "", time.Time{}
		w.ConsecutiveFailures, w.FailingSince = 0, time.Time{}
	}
	w.IsActive = active
}
