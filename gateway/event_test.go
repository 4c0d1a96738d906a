package gateway

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

// TestRefusalLog: refusals are logged as counts per reason, at most once
// every refusalLogEvery, and what is left at a stop is flushed.
func TestRefusalLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l refusalLog
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		l.add(log, otp.ReasonRateLimited, t0.Add(time.Duration(i)*time.Second))
	}
	l.add(log, otp.ReasonPrefixBlocked, t0.Add(5*time.Second))
	if buf.Len() != 0 {
		t.Fatalf("logged before %s: %s", refusalLogEvery, buf.String())
	}
	l.add(log, otp.ReasonRateLimited, t0.Add(refusalLogEvery))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "prefix_blocked=1") || !strings.Contains(lines[0], "rate_limited=6") {
		t.Fatalf("after %s: %q, want one line with the counts", refusalLogEvery, buf.String())
	}
	buf.Reset()
	l.add(log, otp.ReasonInvalidNumber, t0.Add(refusalLogEvery+time.Second))
	l.Flush(log, t0.Add(refusalLogEvery+2*time.Second))
	if !strings.Contains(buf.String(), "invalid_number=1") || strings.Contains(buf.String(), "rate_limited") {
		t.Errorf("flush: %q", buf.String())
	}
}
