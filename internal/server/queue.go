package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quikly/webhooks/internal/store"
)

// queueCollector reads the queue's depth and age from the database at each scrape, so every process
// reports the whole queue, not its own share.
type queueCollector struct {
	st     store.Store
	depth  *prometheus.Desc
	oldest *prometheus.Desc
}

func newQueueCollector(st store.Store) *queueCollector {
	return &queueCollector{
		st:     st,
		depth:  prometheus.NewDesc("quikly_queue_depth", "Deliveries waiting to be delivered (pending or held by a paused webhook).", nil, nil),
		oldest: prometheus.NewDesc("quikly_oldest_pending_age_seconds", "Age of the oldest delivery waiting to be delivered; 0 when none.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.st.QueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	age := 0.0
	if !s.OldestPending.IsZero() {
		age = max(0, time.Since(s.OldestPending).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
