package daemon_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

// chaosModem is one modem slot: a simulated modem behind a stable symlink
// that the test unplugs and replugs (a new pty behind the same link).
type chaosModem struct {
	name, link string
	mu         sync.Mutex
	sim        *modemsim.Modem
}

func (c *chaosModem) plug(t *testing.T, onMsg func(modemsim.Message)) {
	sim, err := modemsim.Start(modemsim.Config{Name: c.name, Link: c.link, OnMessage: onMsg})
	if err != nil {
		t.Fatalf("plug %s: %v", c.name, err)
	}
	c.mu.Lock()
	c.sim = sim
	c.mu.Unlock()
}

func (c *chaosModem) current() *modemsim.Modem {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sim
}

// TestChaos runs a few hundred jobs through four modems while faults are
// injected at random: +CMS errors (retryable and permanent), hangs (which
// leave a send's outcome unknown), unplug and replug. Every job must end in
// exactly one final state, none is lost, none goes to another number, and
// no code is sent more often than its unknown-outcome retries allow.
func TestChaos(t *testing.T) {
	const jobs = 200
	dir := t.TempDir()
	var (
		mu   sync.Mutex
		sent = map[string][]string{} // code -> destinations of every SMS carrying it
	)
	onMsg := func(m modemsim.Message) {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range strings.Fields(m.Text) {
			if w = strings.TrimSuffix(w, "."); len(w) == 7 && strings.HasPrefix(w, "9") { // the codes below
				sent[w] = append(sent[w], m.To)
			}
		}
	}
	slots := make([]*chaosModem, 4)
	cfg := testConfig(dir)
	cfg.OTP.MaxAttempts = 8
	for i := range slots {
		slots[i] = &chaosModem{name: fmt.Sprint("c", i), link: filepath.Join(dir, fmt.Sprint("modem", i))}
		slots[i].plug(t, onMsg)
		cfg.Modems = append(cfg.Modems, config.Modem{Name: slots[i].name, Device: slots[i].link,
			CommandTimeout: 300 * time.Millisecond, SendTimeout: 300 * time.Millisecond, HealthInterval: 100 * time.Millisecond})
	}
	t.Cleanup(func() {
		for _, s := range slots {
			s.current().Close()
		}
	})
	h := start(t, cfg)

	// The injector shapes the load with a ticker; it synchronises nothing.
	// It stops after maxFaults faults or once half the jobs have ended, so
	// that the rest show that every modem comes back by itself.
	stop := make(chan struct{})
	injected := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		const maxFaults = 60
		tick := time.NewTicker(60 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n := 0
			for _, c := range injected {
				n += c
			}
			if n >= maxFaults {
				return
			}
			s := slots[rng.IntN(len(slots))]
			switch f := rng.IntN(10); {
			case f < 4:
				code := []int{42, 41, 38, 500, 512, 1, 21}[rng.IntN(7)]
				s.current().FailNextSends(code)
				injected[fmt.Sprint("cms_", code)]++
			case f < 6:
				s.current().SetHung(true)
				injected["hang"]++
				wg.Add(1)
				time.AfterFunc(time.Duration(200+rng.IntN(400))*time.Millisecond, func() {
					defer wg.Done()
					s.current().SetHung(false)
				})
			case f < 7:
				injected["unplug"]++
				s.current().Close()
				wg.Add(1)
				time.AfterFunc(time.Duration(100+rng.IntN(400))*time.Millisecond, func() {
					defer wg.Done()
					s.plug(t, onMsg)
				})
			}
		}
	}()

	number := map[string]string{} // code -> destination
	var ids []string
	for i := range jobs {
		id := fmt.Sprint("chaos", i)
		code := fmt.Sprint(9000000 + i)
		to := fmt.Sprintf("+452622%04d", i*37%10000)
		number[code] = to
		ids = append(ids, id)
		h.publish(map[string]any{"id": id, "to": to, "code": code})
	}
	finals := map[otp.State]int{}
	finalOf := map[string]otp.Event{}  // code -> final event
	unknownRetries := map[string]int{} // code -> attempts with an unknown outcome
	for i, id := range ids {
		if i == jobs/2 {
			close(stop)
		}
		code := fmt.Sprint(9000000 + i)
		var final otp.Event
		for {
			// Reopening a modem backs off up to a minute.
			ev := h.waitEventFor(id, 90*time.Second)
			if ev.Reason == "unknown_outcome" {
				unknownRetries[code]++
			}
			if ev.Type.Final() {
				final = ev
				break
			}
		}
		finals[final.Type]++
		finalOf[code] = final
		if final.Type == otp.StateRejected {
			t.Errorf("job %s rejected: %s %s", id, final.Reason, final.Detail)
		}
		if final.Type == otp.StateFailed && final.Reason == "" {
			t.Errorf("job %s failed without a reason", id)
		}
	}
	wg.Wait()
	// Nothing more may arrive for a finished job but what the network
	// says of a sent message's delivery.
	for _, id := range ids {
		for more := true; more; {
			select {
			case ev := <-h.eventsOf(id):
				if !strings.HasPrefix(string(ev.Type), "deliver") {
					t.Errorf("job %s: event %s after its final one", id, ev.Type)
				}
			default:
				more = false
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	extra := 0
	for code, tos := range sent {
		for _, to := range tos {
			if to != number[code] {
				t.Errorf("code %s went to %s, its job's number is %s", code, to, number[code])
			}
		}
		// A code reaches the network once when its job is sent, plus once
		// for every attempt whose outcome was unknown (the answer was lost).
		allowed := unknownRetries[code]
		if finalOf[code].Type == otp.StateSent {
			allowed++
		}
		if len(tos) > allowed {
			t.Errorf("code %s sent %d times; job ended %s %s after %d unknown outcomes", code, len(tos), finalOf[code].Type, finalOf[code].Reason, unknownRetries[code])
		}
		extra += len(tos) - 1
	}
	for code, ev := range finalOf {
		if ev.Type == otp.StateSent && len(sent[code]) == 0 {
			t.Errorf("job with code %s reported sent, but nothing reached the network", code)
		}
	}
	total := 0
	for _, n := range finals {
		total += n
	}
	if total != jobs {
		t.Errorf("%d jobs ended, want %d", total, jobs)
	}
	t.Logf("faults injected: %v", injected)
	t.Logf("final states: %v; codes sent twice after an unknown outcome: %d", finals, extra)
}
