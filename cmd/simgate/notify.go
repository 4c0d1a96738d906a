package main

import (
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd about the daemon's state (sd_notify(3)) through
// go-systemd. Without $NOTIFY_SOCKET it does nothing.
type notifier struct {
	watchdog time.Duration // WatchdogSec; 0 when systemd does not watch us
}

// newNotifier reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID.
func newNotifier() *notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return &notifier{}
	}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		d = 0
	}
	return &notifier{watchdog: d}
}

// Notify sends state ("READY=1", "STATUS=...", several separated by
// newlines). It is a no-op without $NOTIFY_SOCKET.
func (n *notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WatchdogSec, or
// 0 when systemd does not watch this process.
func (n *notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}
