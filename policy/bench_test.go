package policy

import (
	"context"
	"fmt"
	"runtime"
	"slices"
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

// BenchmarkAdmitMemory measures one policy decision on the in-process
// store, every decision for a new number (targets: 2 us and 10
// allocations). Building the jobs is not timed.
//
// "day" is the store a daemon runs on: it holds a day of traffic, a
// million numbers and their jobs, and each new number's records take the
// place of one whose day is over. "growing" starts from an empty store,
// so that its decisions also pay for the memory the store takes as it
// grows to its size (the first day of a daemon). Run "day" for a million
// decisions or more: its store drops what expired about every 570,000.
func BenchmarkAdmitMemory(b *testing.B) {
	b.Run("day", func(b *testing.B) { benchAdmit(b, 1_000_000) })
	b.Run("growing", func(b *testing.B) { benchAdmit(b, 0) })
}

// benchAdmit admits new numbers one after another into a store that
// already holds held numbers.
func benchAdmit(b *testing.B, held int) {
	c := newClock()
	store := NewMemoryStore(Retention)
	store.now = c.now
	p := benchPolicy(b, store, c)
	ctx := context.Background()
	rejected := 0
	admit := func(j otp.Prepared) {
		c.add(benchStep)
		if _, err := p.Admit(ctx, j); err != nil {
			if _, ok := otp.AsReject(err); !ok {
				b.Fatal(err)
			}
			rejected++ // a crowded prefix, as in real traffic
		}
	}
	for i := range held {
		admit(benchJob(i))
	}
	// Past the retention of the first numbers: from now on, the store
	// drops a day-old number for each new one.
	c.add(Retention - time.Duration(held)*benchStep)
	rejected = 0
	b.ReportAllocs()
	jobs := make([]otp.Prepared, 4096)
	for i := 0; b.Loop(); i++ {
		if i%len(jobs) == 0 {
			b.StopTimer()
			for k := range jobs {
				jobs[k] = benchJob(held + i + k)
			}
			b.StartTimer()
		}
		admit(jobs[i%len(jobs)])
	}
	b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
	b.Logf("targets: at most 2000 ns/op and 10 allocs/op")
}

// BenchmarkMemoryPerNumber admits 1,000,000 distinct numbers, one job
// each, into the in-process store and reports the live heap: per number
// for what the policy keeps of numbers (their records and their blocks'),
// per job for the job records (kept a day, whatever the number), and both
// together. Run with -benchtime=1x.
func BenchmarkMemoryPerNumber(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		c := newClock()
		store := NewMemoryStore(Retention)
		store.now = c.now
		p := benchPolicy(b, store, c)
		ctx := context.Background()
		heap := func() uint64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		for i := range n {
			c.add(benchStep)
			if _, err := p.Admit(ctx, benchJob(i)); err != nil {
				if _, ok := otp.AsReject(err); !ok {
					b.Fatal(err)
				}
			}
		}
		all := heap()
		entries := store.Len()
		// The same store without its job records, sized to what it holds.
		numberState := store.withoutJobs()
		store = nil
		p = nil
		numbers := heap()
		runtime.KeepAlive(numberState)
		b.ReportMetric(float64(numbers-before)/n, "B/number")
		b.ReportMetric(float64(all-numbers)/n, "B/job")
		b.ReportMetric(float64(all-before)/n, "B/number+job")
		b.ReportMetric(float64(entries)/n, "entries/number")
		b.Logf("target: at most 150 B/number")
	}
}

// withoutJobs returns a copy of s without its job records, sized to what
// it holds (benchmarks: what the records of numbers cost).
func (s *MemoryStore) withoutJobs() *MemoryStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &MemoryStore{ttl: s.ttl, now: s.now, seed: s.seed, seed2: s.seed2, rev: s.rev}
	n := 0
	for _, e := range s.table {
		if e.key != (memKey{}) && e.meta&jobFlag == 0 {
			n++
		}
	}
	size := 64
	for size/4*3 < n {
		size *= 2
	}
	c.table = make([]memEntry, size)
	for _, e := range s.table {
		if e.key == (memKey{}) || e.meta&jobFlag != 0 {
			continue
		}
		e.off = c.store(s.value(&e))
		c.insert(e)
		c.n++
	}
	// The last chunk holds only what it was given.
	if len(c.arena) > 0 {
		c.arena[c.tail] = slices.Clone(c.arena[c.tail])
	}
	return c
}
