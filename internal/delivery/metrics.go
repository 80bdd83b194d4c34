package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quikly/webhooks/internal/store"
	"github.com/quikly/webhooks/internal/webhook"
)

// Metrics counts attempts and their outcomes. A nil *Metrics counts nothing. Safe for concurrent use.
type Metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
	handedOff  prometheus.Counter
}

// NewMetrics registers the delivery metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quikly_deliveries_total",
			Help: "Delivery attempts by outcome: succeeded, retrying (failed, will be retried) or failed (for good).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quikly_attempt_duration_seconds",
			Help:    "How long each delivery attempt took, from sending to the end of the response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		handedOff: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quikly_deliveries_handed_off_total",
			Help: "Deliveries attempted as soon as their event was written, without a claim (see delivery.Handoff).",
		}),
	}
	for _, o := range []string{"succeeded", "retrying", "failed"} {
		m.deliveries.WithLabelValues(o) // expose zeros from the start
	}
	reg.MustRegister(m.deliveries, m.duration, m.handedOff)
	return m
}

// Observe counts one attempt's outcome and duration.
func (m *Metrics) Observe(o *store.DeliveryOutcome, d time.Duration) {
	if m == nil {
		return
	}
	outcome := "failed"
	switch o.State {
	case webhook.DeliverySucceeded:
		outcome = "succeeded"
	case webhook.DeliveryPending:
		outcome = "retrying"
	}
	m.deliveries.WithLabelValues(outcome).Inc()
	m.duration.Observe(d.Seconds())
}

// HandedOff counts n deliveries attempted without a claim.
func (m *Metrics) HandedOff(n int) {
	if m != nil {
		m.handedOff.Add(float64(n))
	}
}
