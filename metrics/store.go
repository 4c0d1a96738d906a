package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreUsage is how full one of simgate's JetStream streams or buckets is.
type StoreUsage struct {
	// Name is the stream's name (OTP_JOBS, OTP_EVENTS, KV_simgate_policy,
	// ...): not personal data.
	Name string
	// Bytes and Messages are what it holds; MaxBytes its limit, 0 when
	// unbounded.
	Bytes, Messages, MaxBytes uint64
}

// StoreCollector reads the usage of simgate's streams and buckets at every
// scrape (the cluster's, the same on every daemon).
type StoreCollector struct {
	read    func(context.Context) ([]StoreUsage, error)
	timeout time.Duration

	bytes, messages, limit, up *prometheus.Desc
}

// NewStoreCollector returns a collector calling read, bounded by timeout,
// at every scrape.
func NewStoreCollector(read func(context.Context) ([]StoreUsage, error), timeout time.Duration) *StoreCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "store", name), help, labels, nil)
	}
	return &StoreCollector{
		read:     read,
		timeout:  timeout,
		bytes:    d("bytes", "Bytes a JetStream stream or bucket of simgate's holds, per store.", "store"),
		messages: d("messages", "Messages a JetStream stream or bucket of simgate's holds, per store.", "store"),
		limit:    d("limit_bytes", "The store's size limit (nats.limits); absent when unbounded. Full, the job queue refuses new jobs, the events stream drops its oldest, a bucket refuses writes.", "store"),
		up:       d("up", "1 when the stores' usage could be read at this scrape."),
	}
}

// Describe implements prometheus.Collector.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.messages
	ch <- c.limit
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	stores, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, s := range stores {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes), s.Name)
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(s.Messages), s.Name)
		if s.MaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(s.MaxBytes), s.Name)
		}
	}
}
