package daemon

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/queue"
)

// diskLow is the free space under which the embedded store's disk counts
// as full: JetStream's writes fail there, and a stream that failed a write
// refuses every later one until it is loaded again.
const diskLow = 16 << 20

// diskInterval is how often the store's disk is looked at.
const diskInterval = 2 * time.Second

// diskSpace returns the free (for unprivileged use) and total bytes of the
// file system holding path.
func diskSpace(path string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// diskUsage reads the store's disk and what the embedded server keeps on
// it.
func (d *Daemon) diskUsage(store string) (metrics.DiskUsage, error) {
	free, size, err := d.space(store)
	if err != nil {
		return metrics.DiskUsage{}, err
	}
	u := metrics.DiskUsage{Free: free, Size: size}
	if v, err := d.ns.Varz(nil); err == nil && v.JetStream.Stats != nil {
		u.JetStreamBytes = v.JetStream.Stats.Store
	}
	return u, nil
}

// watchDisk keeps storeFull up to date for the embedded server's store,
// until ctx ends. When space returns after the disk was full, it loads the
// daemon account's streams again (JetStream off and on for the account),
// so that those that failed a write take writes again: simgate recovers
// by itself.
func (d *Daemon) watchDisk(ctx context.Context, store string) {
	t := time.NewTicker(diskInterval)
	defer t.Stop()
	var lastErr string
	for {
		free, _, err := d.space(store)
		if err == nil {
			lastErr = ""
		}
		switch full := err == nil && free < diskLow; {
		case err != nil:
			if err.Error() != lastErr { // once, not every 2 s
				d.log.Warn("store disk", "err", err)
			}
			lastErr = err.Error()
		case full && !d.storeFull.Load():
			d.storeFull.Store(true)
			d.log.Error("the store's disk is full: otp.request answers error until space returns", "free_bytes", free, "dir", store)
		case !full && d.storeFull.Load():
			if err := reloadJetStream(d.ns); err != nil {
				d.log.Error("store disk has space again; reloading the streams failed", "err", err)
				break
			}
			d.storeFull.Store(false)
			d.log.Info("the store's disk has space again; streams reloaded", "free_bytes", free)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reloadJetStream turns JetStream off and on for the daemon's account:
// its streams are loaded again from disk, and forget a failed write.
func reloadJetStream(ns *server.Server) error {
	acc, err := ns.LookupAccount(queue.AccountDaemon)
	if err != nil {
		return err
	}
	if err := acc.DisableJetStream(); err != nil {
		return fmt.Errorf("disable jetstream: %w", err)
	}
	if err := acc.EnableJetStream(nil, nil); err != nil {
		return fmt.Errorf("enable jetstream: %w", err)
	}
	return nil
}
