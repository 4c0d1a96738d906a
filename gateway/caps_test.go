package gateway

import (
	"regexp"
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

func TestBalanceIn(t *testing.T) {
	first := regexp.MustCompile(`(-?[0-9]+(?:[.,][0-9]+)?)`)
	for _, tc := range []struct {
		answer  string
		pattern *regexp.Regexp
		want    float64
		ok      bool
	}{
		{"Your balance is 12.34 EUR. Valid until 01.02.2027", first, 12.34, true},
		{"Saldo: 5,00 kr", first, 5, true},
		{"Balance -3.50 USD", first, -3.5, true},
		{"Bonus 100 MB, balance 7.25", regexp.MustCompile(`balance ([0-9.]+)`), 7.25, true},
		{"Bonus 100 MB", regexp.MustCompile(`balance ([0-9.]+)`), 0, false},
		{"no number here", first, 0, false},
		{"12.34", regexp.MustCompile(`[0-9.]+`), 12.34, true},
	} {
		got, ok := balanceIn(tc.answer, tc.pattern)
		if ok != tc.ok || got != tc.want {
			t.Errorf("balanceIn(%q, %s) = %v, %v; want %v, %v", tc.answer, tc.pattern, got, ok, tc.want, tc.ok)
		}
	}
}
