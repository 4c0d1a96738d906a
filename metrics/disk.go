package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DiskUsage is the state of the embedded NATS server's store: the disk it
// is on and what JetStream keeps there.
type DiskUsage struct {
	Free, Size     uint64 // of the file system, for unprivileged use
	JetStreamBytes uint64 // what the server's JetStream stores on it
}

// DiskCollector reads the store's disk usage at every scrape.
type DiskCollector struct {
	read func() (DiskUsage, error)

	free, size, used, up *prometheus.Desc
}

// NewDiskCollector returns a collector calling read at every scrape.
func NewDiskCollector(read func() (DiskUsage, error)) *DiskCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "store_disk", name), help, nil, nil)
	}
	return &DiskCollector{
		read: read,
		free: d("free_bytes", "Free space of the file system of the embedded NATS server's store. Near zero, JetStream writes fail: otp.request answers error until space returns."),
		size: d("size_bytes", "Size of the file system of the embedded NATS server's store."),
		used: d("jetstream_bytes", "What the embedded NATS server's JetStream keeps on that file system."),
		up:   d("up", "1 when the store's disk usage could be read at this scrape."),
	}
}

// Describe implements prometheus.Collector.
func (c *DiskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.size
	ch <- c.used
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *DiskCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := c.read()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(u.Free))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(u.Size))
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.JetStreamBytes))
}
