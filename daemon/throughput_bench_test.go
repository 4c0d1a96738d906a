package daemon_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/otp"
)

// Parameters of BenchmarkThroughput.
const (
	// throughputRounds is how many jobs each modem gets per iteration.
	throughputRounds = 20
	// The steady window leaves out the first rampRounds rounds (modems
	// starting, pull requests and JetStream paths warming up) and the
	// last tailRounds (the queue running dry, modems idling).
	rampRounds = 2
	tailRounds = 2
)

// throughputDelay is the simulated network latency of every AT+CMGS
// (Ctrl-Z to "+CMGS: <mr>"). A real modem takes 1 to 5 s; the default 50 ms
// keeps a run short (20 rounds are about 1 s) while it still dominates the
// daemon's own work between two sends of a modem (ack, policy store round
// trips, pull, AT+CMGS prompt), so the ratio measures that per-send gap:
// ratio = D / (D + gap), and 0.97 allows a gap of 1.5 ms. Set it with
// -throughput.delay to see a realistic network.
var throughputDelay = flag.Duration("throughput.delay", 50*time.Millisecond,
	"simulated AT+CMGS latency of BenchmarkThroughput (a real network: 1-5 s)")

// BenchmarkThroughput measures how close K modems come to their ideal
// throughput K/D when the queue is full: every modem should go from one
// "+CMGS" answer to its next AT+CMGS at once.
//
// Each b.Loop iteration pauses the modems, queues throughputRounds jobs per
// modem (distinct ids and numbers; the policy's rate limits are off), lets
// the modems go and waits until every job reached a modem. The simulators'
// submission times (taken when the network accepts an SMS, D after its
// Ctrl-Z) give the steady rate: the SMS accepted between the first one of
// round rampRounds and the first one of round throughputRounds-tailRounds,
// over the time between the two. Reported:
//
//	sms/s   the steady rate
//	ratio   sms/s divided by the ideal K/D (target >= 0.97)
//	gap-ms  mean time from a modem's accepted SMS to its next Ctrl-Z
//	        (consecutive sends of one modem in the steady window, minus D)
//
// One iteration is enough (about 1.3 s each, plus start-up):
//
//	go test ./daemon -run '^$' -bench Throughput -benchtime 1x [-throughput.delay=1s]
//
// Do not run it with -race or -v (both change the timing).
func BenchmarkThroughput(b *testing.B) {
	for _, k := range []int{1, 4, 16, 64, 256} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) { benchThroughput(b, k) })
	}
}

func benchThroughput(b *testing.B, k int) {
	d := *throughputDelay
	sims := make([]*sim, k)
	for i := range sims {
		sims[i] = startSim(b, fmt.Sprintf("m%d", i+1), d)
	}
	cfg := testConfig(b.TempDir(), sims...)
	// testConfig turns off the cooldown, the number windows and the
	// prefix limit; also lift the country (1000/h) and global (600/min)
	// caps, which K=64 at 50 ms reaches in a second.
	cfg.Policy.CountryPerHour = 0
	cfg.Policy.Countries = nil
	cfg.Policy.GlobalPerMinute = 0
	for i := range cfg.Modems {
		// testConfig checks modem health every 100 ms (a test setting:
		// several AT commands, and a pull cut short, every 2 sends at
		// 50 ms); measure with the default, 30 s. No send caps.
		cfg.Modems[i].HealthInterval = 0
		cfg.Modems[i].PerMinute, cfg.Modems[i].PerDay = 0, 0
	}
	h := start(b, cfg)

	deadline := time.Now().Add(60 * time.Second)
	for h.d.ModemsReady() < k {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d modems ready after 60 s", h.d.ModemsReady(), k)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Count every complete message the modems receive.
	var received atomic.Int64
	arrived := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	for _, s := range sims {
		go func() {
			for {
				select {
				case <-s.msgs:
					received.Add(1)
					select {
					case arrived <- struct{}{}:
					default:
					}
				case <-stop:
					return
				}
			}
		}()
	}

	jobs := throughputRounds * k
	numbers := benchNumbers(cfg)
	var (
		iter            int
		steadyN         int
		steadyT         time.Duration
		gapSum          time.Duration
		gapN            int
		firstSubmission = make([]int, k) // per sim: submissions before this iteration
	)
	b.ResetTimer()
	for b.Loop() {
		for i, s := range sims {
			firstSubmission[i] = len(s.Submissions())
			// Hold every modem in its next AT+CMGS while the queue fills.
			s.SetSendDelay(time.Hour)
		}
		want := received.Load() + int64(jobs)
		for i := range jobs {
			id := fmt.Sprintf("tp%d-%d", iter, i)
			body, _ := json.Marshal(map[string]any{"id": id, "to": numbers(), "code": "123456"})
			if _, err := h.js.PublishAsync(otp.SubjectSend, body, jetstream.WithMsgID(id)); err != nil {
				b.Fatalf("publish: %v", err)
			}
			if i%1000 == 999 || i == jobs-1 {
				// In batches: every write is fsynced (sync always), and
				// too many unacknowledged publishes stall the client.
				select {
				case <-h.js.PublishAsyncComplete():
				case <-time.After(60 * time.Second):
					b.Fatal("publish acks missing after 60 s")
				}
			}
		}
		// Let go: a held send completes at once, every modem then takes
		// jobs as fast as the daemon hands them over.
		for _, s := range sims {
			s.SetSendDelay(d)
		}
		timeout := time.After(time.Duration(throughputRounds)*d*10 + 30*time.Second)
		for received.Load() < want {
			select {
			case <-arrived:
			case <-timeout:
				b.Fatalf("%d of %d messages received", received.Load()-want+int64(jobs), jobs)
			}
		}

		var at []time.Time
		for i, s := range sims {
			for _, sub := range s.Submissions()[firstSubmission[i]:] {
				at = append(at, sub.At)
			}
		}
		if len(at) != jobs {
			b.Fatalf("%d submissions, want %d", len(at), jobs)
		}
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		lo, hi := rampRounds*k, (throughputRounds-tailRounds)*k
		t0, t1 := at[lo], at[hi]
		steadyN += hi - lo
		steadyT += t1.Sub(t0)
		// The gaps of each modem between consecutive sends inside the
		// steady window.
		for i, s := range sims {
			subs := s.Submissions()[firstSubmission[i]:]
			for j := 1; j < len(subs); j++ {
				if subs[j-1].At.Before(t0) || subs[j].At.After(t1) {
					continue
				}
				gapSum += subs[j].At.Sub(subs[j-1].At) - d
				gapN++
			}
		}
		iter++
	}
	b.StopTimer()
	rate := float64(steadyN) / steadyT.Seconds()
	ideal := float64(k) / d.Seconds()
	b.ReportMetric(rate, "sms/s")
	b.ReportMetric(rate/ideal, "ratio")
	b.Logf("target: ratio at least 0.97 (of the ideal %.0f sms/s)", ideal)
	if gapN > 0 {
		b.ReportMetric(float64(gapSum.Microseconds())/float64(gapN)/1000, "gap-ms")
	}
	b.ReportMetric(0, "ns/op") // an iteration's time says nothing here
}

// benchNumbers returns a function giving a new number that cfg accepts at
// each call: Danish mobile numbers spread over 2xxxxxxx (2654435761 is odd,
// so i -> i*k mod 10^7 is one-to-one for i < 10^7), leaving out those not in
// service. Distinct numbers keep duplicate suppression and the per-number
// state out of the way.
func benchNumbers(cfg config.Config) func() string {
	limits := cfg.OTP.Limits(cfg.OTP.Numbers.Policy())
	i := 0
	return func() string {
		for ; ; i++ {
			if i >= 10_000_000 {
				panic("benchNumbers: out of numbers")
			}
			to := fmt.Sprintf("+45%08d", 20000000+i*2654435761%10000000)
			if _, err := limits.Prepare(otp.Job{ID: "x", To: to, Code: "123456"}); err == nil {
				i++
				return to
			}
		}
	}
}
