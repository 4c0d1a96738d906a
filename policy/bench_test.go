package policy

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

// benchJob returns a job for the i-th distinct Danish mobile number, spread
// pseudo-randomly over the 10 million numbers 2xxxxxxx as real traffic is
// (2654435761 is odd, so i -> i*k mod 10^7 is one-to-one for i < 10^7).
func benchJob(i int) otp.Prepared {
	e164 := fmt.Sprintf("+45%08d", 20000000+i*2654435761%10000000)
	return otp.Prepared{
		Job:    otp.Job{ID: fmt.Sprintf("b%d", i), To: e164, Code: "123456"},
		Number: otp.Number{E164: e164, CountryCode: 45, Region: "DK"},
		TTL:    10 * time.Minute,
	}
}

// benchStep spreads a million numbers over a day: 11.6 new numbers a
// second, 42,000 an hour.
const benchStep = 86 * time.Millisecond

// benchPolicy has the default limits except the country and global caps,
// which a million numbers a day exceed.
func benchPolicy(b *testing.B, store Store, c *clock) *Policy {
	cfg := DefaultConfig()
	cfg.Key = testKey
	cfg.CountryPerHour, cfg.GlobalPerMinute = 0, 0
	p, err := New(cfg, store)
	if err != nil {
		b.Fatal(err)
	}
	p.SetClock(c.now)
	return p
}

// BenchmarkAdmitMemory measures policy decisions per second on the
// in-process store, every decision for a new number.
func BenchmarkAdmitMemory(b *testing.B) {
	c := newClock()
	store := NewMemoryStore(Retention)
	store.now = c.now
	p := benchPolicy(b, store, c)
	ctx := context.Background()
	b.ReportAllocs()
	rejected := 0
	for i := 0; b.Loop(); i++ {
		c.add(benchStep)
		if _, err := p.Admit(ctx, benchJob(i)); err != nil {
			if _, ok := otp.AsReject(err); !ok {
				b.Fatal(err)
			}
			rejected++ // a crowded prefix, as in real traffic
		}
	}
	b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
}

// BenchmarkMemoryPerNumber admits 1,000,000 distinct numbers into the
// in-process store and reports the live heap per tracked number (job,
// number and prefix records included). Run with -benchtime=1x.
func BenchmarkMemoryPerNumber(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		c := newClock()
		store := NewMemoryStore(Retention)
		store.now = c.now
		p := benchPolicy(b, store, c)
		ctx := context.Background()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			c.add(benchStep)
			if _, err := p.Admit(ctx, benchJob(i)); err != nil {
				if _, ok := otp.AsReject(err); !ok {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/number")
		b.ReportMetric(float64(store.Len())/n, "entries/number")
		runtime.KeepAlive(p)
	}
}
