package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

var floodFor = flag.Duration("flood.for", 10*time.Second, "how long BenchmarkFlood floods")

// BenchmarkFlood measures, in one run, what an SMS-pumping flood costs
// (issue #12): 64 callers in a process of their own ask otp.request for
// codes to random British
// numbers that the country limit refuses, while one real user at a time
// asks for a code to a fresh Danish number. It prints each figure with its
// target:
//
//	refusals/s        otp.request answers per second under the flood (>= 20,000)
//	p99-idle-ms       a real user's request -> sent, before the flood
//	p99-flood-ms      the same during the flood (<= 2 x p99-idle-ms)
//	p50-idle-ms, p50-flood-ms  the medians, for scale
//	kv-writes/refusal messages written to the policy bucket per refusal (0)
//	events/refusal    events stored per refusal (0)
//	cpu-us/refusal    CPU time of the daemon's process (with the real users)
//	                  per refusal, and of the generator's (gen-cpu-us/refusal)
//
//	go test ./daemon -run '^$' -bench Flood -benchtime 1x [-flood.for 10s]
//
// Do not run it with -race (it measures speed).
func BenchmarkFlood(b *testing.B) {
	s1, s2 := startSim(b, "m1", 0), startSim(b, "m2", 0)
	cfg := testConfig(b.TempDir(), s1, s2)
	cfg.Policy.Countries = map[string]int{"GB": 10}
	cfg.Policy.CountryPerHour, cfg.Policy.GlobalPerMinute = 0, 0
	h := start(b, cfg)
	js := h.daemonJS()
	ctx := context.Background()
	stored := func(stream string) uint64 {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			b.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	var (
		mu   sync.Mutex
		sent = map[string]chan time.Time{}
	)
	if _, err := h.nc.Subscribe(otp.SubjectEvents+".>", func(m *nats.Msg) {
		var ev otp.Event
		if json.Unmarshal(m.Data, &ev) != nil || ev.Type != otp.StateSent {
			return
		}
		mu.Lock()
		ch := sent[ev.ID]
		mu.Unlock()
		if ch != nil {
			ch <- time.Now()
		}
	}); err != nil {
		b.Fatal(err)
	}
	numbers := benchNumbers(cfg)
	user := 0
	// realUsers asks for codes for fresh Danish numbers, one at a time,
	// for d, and returns each request -> sent latency.
	realUsers := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			user++
			id := fmt.Sprint("real-", user)
			ch := make(chan time.Time, 1)
			mu.Lock()
			sent[id] = ch
			mu.Unlock()
			body, _ := json.Marshal(otp.Job{ID: id, To: numbers(), Code: "123456"})
			t0 := time.Now()
			msg, err := h.nc.Request(otp.SubjectRequest, body, 10*time.Second)
			var r otp.Reply
			if err != nil || json.Unmarshal(msg.Data, &r) != nil || r.Status != otp.ReplyAccepted {
				b.Fatalf("a real user: %v %+v", err, r)
			}
			select {
			case at := <-ch:
				lat = append(lat, at.Sub(t0))
			case <-time.After(10 * time.Second):
				b.Fatalf("%s never sent", id)
			}
			time.Sleep(20 * time.Millisecond) // a user every ~25 ms
		}
		return lat
	}
	// at returns the q-quantile of lat, in ms.
	at := func(lat []time.Duration, q float64) float64 {
		slices.Sort(lat)
		return float64(lat[int(float64(len(lat))*q)].Microseconds()) / 1000
	}

	for b.Loop() {
		kvA, evA := stored("KV_"+queue.BucketPolicy), stored(otp.StreamEvents)
		// As long as the flood: the two p99s are of as many users.
		idle := realUsers(*floodFor)
		kv0, ev0 := stored("KV_"+queue.BucketPolicy), stored(otp.StreamEvents)
		// What a real user writes, to tell the flood's writes apart.
		userKV, userEv := float64(kv0-kvA)/float64(len(idle)), float64(ev0-evA)/float64(len(idle))
		// The flood comes from a process of its own, as an attacker's
		// would: it competes with the daemon for the machine, not inside
		// its Go runtime.
		spec, _ := json.Marshal(floodSpec{URL: h.d.ClientURL(), SeedFile: seedFile(cfg, natsauth.RolePublisher), Callers: 64, For: *floodFor})
		gen := exec.Command(os.Args[0], "-test.run=^$")
		gen.Env = append(os.Environ(), floodEnv+"="+string(spec))
		var out bytes.Buffer
		gen.Stdout, gen.Stderr = &out, os.Stderr
		if err := gen.Start(); err != nil {
			b.Fatal(err)
		}
		cpu0 := processCPU(b)
		flood := realUsers(*floodFor)
		cpu1 := processCPU(b)
		if err := gen.Wait(); err != nil {
			b.Fatalf("flood generator: %v", err)
		}
		var res floodResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			b.Fatalf("flood generator said %q: %v", out.Bytes(), err)
		}
		refusals, others, elapsed := res.Refusals, res.Others, res.Elapsed
		kv1, ev1 := stored("KV_"+queue.BucketPolicy), stored(otp.StreamEvents)
		n := float64(max(refusals, 1))
		// The real users' own writes and events are not the refusals',
		// nor are those of the flood's jobs that the limit let through:
		// each writes what a real user's job does.
		admitted := float64(len(flood)) + float64(res.Accepted)
		realKV, realEv := admitted*userKV, admitted*userEv
		b.ReportMetric(float64(refusals+others)/elapsed.Seconds(), "refusals/s")
		b.ReportMetric(at(idle, 0.99), "p99-idle-ms")
		b.ReportMetric(at(flood, 0.99), "p99-flood-ms")
		b.ReportMetric(at(idle, 0.5), "p50-idle-ms")
		b.ReportMetric(at(flood, 0.5), "p50-flood-ms")
		b.ReportMetric(max(float64(kv1-kv0)-realKV, 0)/n, "kv-writes/refusal")
		b.ReportMetric(max(float64(ev1-ev0)-realEv, 0)/n, "events/refusal")
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/n, "cpu-us/refusal")
		b.ReportMetric(float64((gen.ProcessState.UserTime()+gen.ProcessState.SystemTime()).Microseconds())/n, "gen-cpu-us/refusal")
		b.Logf("targets: refusals/s >= 20000, p99-flood-ms <= 2 x p99-idle-ms, 0 kv-writes/refusal, 0 events/refusal; "+
			"%d refusals, %d other answers (%d accepted), %d real users during the flood", refusals, others, res.Accepted, len(flood))
	}
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// floodEnv, set to a floodSpec in JSON, makes the test binary the flood's
// load generator: it prints a floodResult in JSON and exits.
const floodEnv = "SIMGATE_FLOOD_GENERATOR"

// floodSpec is the flood BenchmarkFlood asks of its generator.
type floodSpec struct {
	URL, SeedFile string
	Callers       int
	For           time.Duration
}

// floodResult is what the generator counted.
type floodResult struct {
	// Others are the answers that were not refusals, of which Accepted
	// were jobs the limit let through.
	Refusals, Others, Accepted int64
	Elapsed                    time.Duration
}

// floodGenerator runs spec's callers, each asking otp.request for a code to
// random British numbers, one request after another, for spec.For.
func floodGenerator(specJSON string) int {
	var spec floodSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: spec.SeedFile})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	nc, err := nats.Connect(spec.URL, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer nc.Close()
	var refusals, others, accepted atomic.Int64
	start := time.Now()
	end := start.Add(spec.For)
	var wg sync.WaitGroup
	for c := range spec.Callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := 0; time.Now().Before(end); i++ {
				body := fmt.Appendf(nil, `{"id":"f%d-%d","to":"+447400%06d","code":"123456"}`, c, i, rng.IntN(1_000_000))
				msg, err := nc.Request(otp.SubjectRequest, body, 10*time.Second)
				// An attacker reads no more of the answer than it needs.
				switch {
				case err == nil && bytes.HasPrefix(msg.Data, []byte(`{"status":"rejected"`)):
					refusals.Add(1)
				case err == nil && bytes.HasPrefix(msg.Data, []byte(`{"status":"accepted"`)):
					accepted.Add(1)
					others.Add(1)
				default:
					others.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b, _ := json.Marshal(floodResult{Refusals: refusals.Load(), Others: others.Load(), Accepted: accepted.Load(), Elapsed: time.Since(start)})
	fmt.Println(string(b))
	return 0
}
