package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueState is what the job queue's consumer says of itself.
type QueueState struct {
	// Pending is the number of jobs waiting to be handed to a worker.
	Pending uint64
	// InFlight is the number of jobs handed out and not yet acknowledged.
	InFlight uint64
	// Redelivered is the number of in-flight jobs handed out more than
	// once.
	Redelivered uint64
}

// QueueCollector reads the job queue's state at every scrape, so that the
// numbers are those of the whole cluster's shared consumer, not of one
// daemon.
type QueueCollector struct {
	read    func(context.Context) (QueueState, error)
	timeout time.Duration

	pending, inFlight, redelivered, up *prometheus.Desc
}

// NewQueueCollector returns a collector calling read, bounded by timeout,
// at every scrape.
func NewQueueCollector(read func(context.Context) (QueueState, error), timeout time.Duration) *QueueCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", name), help, nil, nil)
	}
	return &QueueCollector{
		read:        read,
		timeout:     timeout,
		pending:     d("pending_jobs", "Jobs in the queue waiting for a modem (the shared consumer's pending count)."),
		inFlight:    d("inflight_jobs", "Jobs handed to a worker and not yet acknowledged."),
		redelivered: d("redelivered_jobs", "In-flight jobs handed out more than once."),
		up:          d("up", "1 when the queue's state could be read at this scrape."),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.inFlight
	ch <- c.redelivered
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(s.Redelivered))
}
