package gateway

import (
	"slices"
	"time"
)

// sendCaps tracks one modem's sends against its per-minute and per-day caps.
// Only its worker uses it. The counts live in the daemon: a restart starts
// them afresh.
type sendCaps struct {
	perMinute, perDay int
	sent              []time.Time // one per SMS part, ascending, at most a day old
}

// record notes n parts sent at t.
func (c *sendCaps) record(t time.Time, n int) {
	if c.perMinute == 0 && c.perDay == 0 {
		return
	}
	for range n {
		c.sent = append(c.sent, t)
	}
}

// wait returns how long the modem must rest before its next send at now.
func (c *sendCaps) wait(now time.Time) time.Duration {
	i, _ := slices.BinarySearchFunc(c.sent, now.Add(-24*time.Hour), func(t, since time.Time) int {
		if t.After(since) {
			return 1
		}
		return -1
	})
	c.sent = c.sent[i:]
	var d time.Duration
	if c.perDay > 0 && len(c.sent) >= c.perDay {
		d = max(d, c.sent[len(c.sent)-c.perDay].Add(24*time.Hour).Sub(now))
	}
	if c.perMinute > 0 && len(c.sent) >= c.perMinute {
		d = max(d, c.sent[len(c.sent)-c.perMinute].Add(time.Minute).Sub(now))
	}
	return d
}
