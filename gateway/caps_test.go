package gateway

import (
	"testing"
	"time"
)

func TestSendCaps(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := &sendCaps{perMinute: 2, perDay: 5}
	steps := []struct {
		at    time.Duration
		parts int
		wait  time.Duration // before sending at `at`
	}{
		{0, 1, 0},
		{10 * time.Second, 1, 0},
		{20 * time.Second, 0, 40 * time.Second}, // 2 in the last minute
		{60 * time.Second, 1, 0},
		{70 * time.Second, 2, 0}, // 4 parts so far? 3 sent; +2 parts = 5
		{80 * time.Second, 0, 24*time.Hour - 80*time.Second},
		{24*time.Hour + time.Second, 0, 0},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if got := c.wait(now); got != s.wait {
			t.Errorf("at %s: wait %s, want %s", s.at, got, s.wait)
		}
		c.record(now, s.parts)
	}
	free := &sendCaps{}
	free.record(t0, 100)
	if free.wait(t0) != 0 || len(free.sent) != 0 {
		t.Error("uncapped modem waits or keeps history")
	}
}
