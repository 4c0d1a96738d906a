package policy

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }
func job(id, e164, code string) otp.Prepared {
	n, err := otp.ParseNumber(e164, "")
	if err != nil {
		panic(err)
	}
	return otp.Prepared{Job: otp.Job{ID: id, To: e164, Code: code}, Number: n, TTL: 10 * time.Minute}
}

func newPolicy(t *testing.T, cfg Config) (*Policy, *clock, *recordingStore) {
	t.Helper()
	cfg.Key = testKey
	store := &recordingStore{MemoryStore: NewMemoryStore(Retention), written: map[string][]byte{}}
	c := newClock()
	store.now = c.now
	p, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	p.SetClock(c.now)
	return p, c, store
}

func wantReject(t *testing.T, err error, reason otp.Reason, scope otp.Scope, retry time.Duration) {
	t.Helper()
	re, ok := otp.AsReject(err)
	if !ok {
		t.Fatalf("err = %v, want %s rejection", err, reason)
	}
	if re.Reason != reason || re.RetryAfter != retry || re.Scope != scope || re.Field != "to" {
		t.Fatalf("rejection %s %s %q retry %s, want %s %s retry %s", re.Reason, re.Scope, re.Detail, re.RetryAfter, reason, scope, retry)
	}
}

func TestDuplicateJobID(t *testing.T) {
	p, _, _ := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	j := job("a", "+4526227921", "123456")
	v, err := p.Admit(ctx, j)
	if err != nil || v.Duplicate || v.At.IsZero() {
		t.Fatalf("first: %+v %v", v, err)
	}
	// Submitted again while the first is being queued: the answer waits
	// for the first's outcome.
	var queued atomic.Bool
	again := make(chan Verdict)
	go func() {
		v, err := p.Admit(ctx, j)
		if err != nil || !queued.Load() {
			t.Errorf("again, while being queued: %v; answered before the first was queued: %v", err, !queued.Load())
		}
		again <- v
	}()
	time.Sleep(20 * time.Millisecond) // a publish's time: the second waits through it
	queued.Store(true)
	if err := p.Queued(ctx, j, v, 7); err != nil {
		t.Fatal(err)
	}
	if v := <-again; !v.Duplicate || v.State != otp.StateAccepted {
		t.Fatalf("again, once queued: %+v", v)
	}
	// The worker takes the queued message: it holds the job.
	if v, err := p.AdmitQueued(ctx, j, 7); err != nil || !v.Earlier {
		t.Fatalf("the queued message: %+v %v", v, err)
	}
	if err := p.Finish(ctx, j, 7, otp.Event{Type: otp.StateSent}); err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Admit(ctx, j); v.State != otp.StateSent {
		t.Errorf("after sent: %+v", v)
	}
	// A job whose queueing failed leaves nothing: its id is free again,
	// also for a submission that waited for it.
	u := job("u", "+4526227999", "123456")
	p.Admit(ctx, u)
	waited := make(chan error)
	go func() {
		v, err := p.Admit(ctx, u)
		if err == nil && v.Duplicate {
			err = fmt.Errorf("a duplicate of a job that was withdrawn: %+v", v)
		}
		waited <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Withdraw(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Errorf("a submission waiting on a job withdrawn: %v", err)
	}
	if err := p.Withdraw(ctx, u); err != nil { // the waiter's own admission
		t.Fatal(err)
	}
	if s, _ := p.State(ctx, "u"); s != "" {
		t.Errorf("withdrawn job state = %q, want no record", s)
	}
	if v, err := p.Admit(ctx, u); err != nil || v.Duplicate {
		t.Errorf("retry of an unqueued job: %+v %v", v, err)
	}
}

// TestJobIdentity: an id is one job with one body, on both paths.
func TestJobIdentity(t *testing.T) {
	ctx := context.Background()
	const n = "+4526227921"
	t.Run("another body is id_conflict, and locks the id", func(t *testing.T) {
		p, _, _ := newPolicy(t, DefaultConfig())
		if _, err := p.Admit(ctx, job("a", n, "123456")); err != nil {
			t.Fatal(err)
		}
		for i, other := range []otp.Prepared{
			job("a", n, "654321"),                       // another code
			job("a", "+4526227922", "123456"),           // another number
			withTTL(job("a", n, "123456"), time.Second), // another ttl
		} {
			_, err := p.Admit(ctx, other)
			if re, ok := otp.AsReject(err); !ok || re.Reason != otp.ReasonIDConflict || re.Field != "id" {
				t.Fatalf("conflict %d: %v", i, err)
			}
			_, err = p.AdmitQueued(ctx, other, uint64(100+i))
			if re, ok := otp.AsReject(err); !ok || re.Reason != otp.ReasonIDConflict {
				t.Fatalf("conflict %d from the queue: %v", i, err)
			}
		}
		// The job's own message still holds it: a locked id does not
		// drop a job that is queued.
		if v, err := p.AdmitQueued(ctx, job("a", n, "123456"), 42); err != nil || v.Duplicate {
			t.Fatalf("the job's own message on a locked id: %+v %v", v, err)
		}
		// Past maxConflicts, the answer no longer depends on the body.
		_, err := p.Admit(ctx, job("a", n, "123456"))
		if re, ok := otp.AsReject(err); !ok || re.Reason != otp.ReasonIDConflict {
			t.Fatalf("the job's own body on a locked id: %v", err)
		}
	})
	t.Run("a copy in the queue is not sent twice", func(t *testing.T) {
		p, _, _ := newPolicy(t, DefaultConfig())
		j := job("b", n, "123456")
		if _, err := p.Admit(ctx, j); err != nil {
			t.Fatal(err)
		}
		// The worker that takes the message adopts the job.
		if v, err := p.AdmitQueued(ctx, j, 5); err != nil || v.Duplicate || !v.Earlier {
			t.Fatalf("the queued message: %+v %v", v, err)
		}
		if v, err := p.AdmitQueued(ctx, j, 5); err != nil || !v.Earlier {
			t.Fatalf("its redelivery: %+v %v", v, err)
		}
		if v, err := p.AdmitQueued(ctx, j, 6); err != nil || !v.Duplicate {
			t.Fatalf("a second copy: %+v %v", v, err)
		}
		if err := p.Finish(ctx, job("b", n, "123456"), 6, otp.Event{Type: otp.StateExpired}); !errors.Is(err, ErrOtherJob) {
			t.Fatalf("the copy ending: %v, want ErrOtherJob", err)
		}
		if s, _ := p.State(ctx, "b"); s != otp.StateAccepted {
			t.Errorf("state after the copy ended = %q", s)
		}
	})
	t.Run("a job can end before its queueing is recorded", func(t *testing.T) {
		p, _, _ := newPolicy(t, DefaultConfig())
		j := job("h", n, "123456")
		if _, err := p.Admit(ctx, j); err != nil {
			t.Fatal(err)
		}
		// A worker found the message expired before Queued was written:
		// a message with another body is not the job, one with its body is.
		if err := p.Finish(ctx, job("h", n, "654321"), 6, otp.Event{Type: otp.StateExpired}); !errors.Is(err, ErrOtherJob) {
			t.Fatalf("another body: %v, want ErrOtherJob", err)
		}
		if err := p.Finish(ctx, j, 5, otp.Event{Type: otp.StateExpired}); err != nil {
			t.Fatal(err)
		}
		if s, _ := p.State(ctx, "h"); s != otp.StateExpired {
			t.Errorf("state %q, want expired", s)
		}
	})
	t.Run("concurrent submissions of one id admit one", func(t *testing.T) {
		p, _, _ := newPolicy(t, DefaultConfig())
		// Every submission reads the id before any records it.
		var arrived sync.WaitGroup
		arrived.Add(16)
		p.store = &barrierStore{Store: p.store, key: jobKey("g"), arrived: &arrived}
		var admitted, dup atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				v, err := p.Admit(ctx, job("g", n, "123456"))
				switch {
				case err != nil:
					t.Error(err)
				case v.Duplicate:
					dup.Add(1)
				default:
					admitted.Add(1)
					// Queued, as otp.request does: the others, waiting
					// for this outcome, are its duplicates.
					if err := p.Queued(ctx, job("g", n, "123456"), v, 1); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if admitted.Load() != 1 || dup.Load() != 15 {
			t.Errorf("admitted %d, duplicates %d; want 1 and 15", admitted.Load(), dup.Load())
		}
		// The losers took their sends back: the one admitted counts once.
		e, _ := p.store.Get(ctx, p.NumberKey(n))
		var rec numberRecord
		if err := rec.unmarshal(e.Value); err != nil {
			t.Fatal(err)
		}
		if len(rec.Sends) != 1 {
			t.Errorf("number record has %d sends, want 1", len(rec.Sends))
		}
	})
	t.Run("a job never admitted leaves no record", func(t *testing.T) {
		p, c, _ := newPolicy(t, DefaultConfig())
		if _, err := p.Admit(ctx, job("c0", n, "123456")); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
		_, err := p.Admit(ctx, job("c1", n, "123457"))
		wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 59*time.Second)
		if s, _ := p.State(ctx, "c1"); s != "" {
			t.Errorf("rejected job state = %q, want no record", s)
		}
		if err := p.Finish(ctx, job("c2", n, "123456"), 9, otp.Event{Type: otp.StateExpired}); err != nil {
			t.Fatal(err)
		}
		if s, _ := p.State(ctx, "c2"); s != "" {
			t.Errorf("a job that expired unadmitted has state %q, want no record", s)
		}
	})
	t.Run("a stale queuing record frees its id", func(t *testing.T) {
		p, c, _ := newPolicy(t, DefaultConfig())
		j := job("d", n, "123456")
		if _, err := p.Admit(ctx, j); err != nil {
			t.Fatal(err)
		}
		// The daemon died before the job was queued.
		c.add(staleQueuing + time.Second)
		c.add(time.Minute) // past the cooldown its admission started
		if v, err := p.Admit(ctx, j); err != nil || v.Duplicate {
			t.Fatalf("after a crash between admission and queueing: %+v %v", v, err)
		}
	})
	t.Run("a job that ended unsent gives its send back", func(t *testing.T) {
		for _, tc := range []struct {
			state  otp.State
			reason otp.Reason
			freed  bool
		}{
			{otp.StateExpired, "", true},
			{otp.StateSuperseded, "", true},
			{otp.StateFailed, otp.ReasonModemRejected, true},
			{otp.StateFailed, otp.ReasonUnknownOutcome, false},
			{otp.StateSent, "", false},
		} {
			p, c, _ := newPolicy(t, DefaultConfig())
			j := job("e", n, "123456")
			if _, err := p.AdmitQueued(ctx, j, 1); err != nil {
				t.Fatal(err)
			}
			if err := p.Finish(ctx, j, 1, otp.Event{Type: tc.state, Reason: tc.reason}); err != nil {
				t.Fatal(err)
			}
			c.add(time.Second)
			v, err := p.Admit(ctx, job("f", n, "123456"))
			if freed := err == nil; freed != tc.freed {
				t.Errorf("%s %s: a new job a second later: %v, want freed %v", tc.state, tc.reason, err, tc.freed)
			}
			if err == nil && v.Resend {
				t.Errorf("%s: the unsent code still counts as live", tc.state)
			}
		}
	})
}

func withTTL(j otp.Prepared, ttl time.Duration) otp.Prepared {
	j.Job.TTL = otp.Duration(ttl)
	j.TTL = ttl
	return j
}

// TestSameCodeIsNoOracle: a job under a new id is judged by the limits
// alone, whether its code is the number's live one or not, and nothing of
// the code is kept.
func TestSameCodeIsNoOracle(t *testing.T) {
	p, c, store := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	if _, err := p.Admit(ctx, job("a", "+4526227921", "123456")); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second)
	// Within the cooldown, the live code and another are both rate limited
	// with the same retry_after.
	for _, code := range []string{"123456", "654321"} {
		_, err := p.Admit(ctx, job("guess-"+code, "+4526227921", code))
		wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 58*time.Second)
	}
	// After it, the same code under a new id is a new send (a resend),
	// which supersedes the first.
	c.add(time.Minute)
	v, err := p.Admit(ctx, job("b", "+4526227921", "123456"))
	if err != nil || v.Duplicate || !v.Resend {
		t.Fatalf("same code, new id: %+v %v", v, err)
	}
	if by, _ := p.Superseded(ctx, job("a", "+4526227921", "123456")); by != "b" {
		t.Errorf("a superseded by %q, want b", by)
	}
	for k, v := range store.written {
		if strings.Contains(string(v), "123456") || strings.Contains(string(v), `"h"`) {
			t.Errorf("store entry %s keeps the code or a hash of it: %q", k, v)
		}
	}
}

func TestNumberLimits(t *testing.T) {
	p, c, _ := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	n := "+4526227921"
	if v, err := p.Admit(ctx, job("j0", n, "100000")); err != nil || v.Resend {
		t.Fatalf("first: %+v %v", v, err)
	}
	c.add(20 * time.Second)
	_, err := p.Admit(ctx, job("j1", n, "100001"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 40*time.Second)
	if s, _ := p.State(ctx, "j1"); s != "" {
		t.Errorf("state of a rejected job = %q, want no record", s)
	}
	c.add(40 * time.Second)
	// The rejected id may try again once its retry_after has passed.
	if v, err := p.Admit(ctx, job("j1", n, "100001")); err != nil || v.Duplicate {
		t.Fatalf("rejected id again: %+v %v", v, err)
	}
	c.add(60 * time.Second)
	v, err := p.Admit(ctx, job("j2", n, "100002"))
	if err != nil || !v.Resend {
		t.Fatalf("after the cooldown: %+v %v (want a resend: the first code is still valid)", v, err)
	}
	// Two more, a minute apart: 5 in 10 minutes.
	for i := 3; i <= 4; i++ {
		c.add(time.Minute)
		if _, err := p.Admit(ctx, job(fmt.Sprint("j", i), n, fmt.Sprint(100000+i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	c.add(time.Minute) // t = 5m; sends at 0, 1m, 2m, 3m, 4m
	_, err = p.Admit(ctx, job("j6", n, "100006"))
	// The first send (t=0) leaves the 10-minute window at t=10m.
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 5*time.Minute)
	// Another number is not affected.
	if _, err := p.Admit(ctx, job("other", "+4526227922", "100006")); err != nil {
		t.Errorf("other number: %v", err)
	}
}

func TestDayLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cooldown = 0
	cfg.Number = []Window{{2, 24 * time.Hour}}
	p, c, _ := newPolicy(t, cfg)
	ctx := context.Background()
	p.Admit(ctx, job("a", "+4526227921", "1111"))
	c.add(time.Hour)
	p.Admit(ctx, job("b", "+4526227921", "2222"))
	c.add(time.Hour)
	_, err := p.Admit(ctx, job("c", "+4526227921", "3333"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 22*time.Hour)
	c.add(22 * time.Hour)
	if _, err := p.Admit(ctx, job("d", "+4526227921", "4444")); err != nil {
		t.Errorf("a day later: %v", err)
	}
}

func TestPrefixBlock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PrefixDistinct = 3
	p, c, _ := newPolicy(t, cfg)
	ctx := context.Background()
	// Adjacent numbers of one block, as SMS pumping does.
	for i := range 3 {
		if _, err := p.Admit(ctx, job(fmt.Sprint("p", i), fmt.Sprintf("+452622790%d", i), "1234")); err != nil {
			t.Fatalf("number %d: %v", i, err)
		}
	}
	_, err := p.Admit(ctx, job("p3", "+4526227903", "1234"))
	wantReject(t, err, otp.ReasonPrefixBlocked, otp.ScopePrefix, time.Hour)
	c.add(10 * time.Minute)
	// Blocked for everyone in the block now, even known numbers.
	_, err = p.Admit(ctx, job("p4", "+4526227950", "1234"))
	wantReject(t, err, otp.ReasonPrefixBlocked, otp.ScopePrefix, 50*time.Minute)
	// Another block is not.
	if _, err := p.Admit(ctx, job("q", "+4526228000", "1234")); err != nil {
		t.Errorf("other block: %v", err)
	}
	c.add(50 * time.Minute)
	if _, err := p.Admit(ctx, job("p5", "+4526227999", "1234")); err != nil {
		t.Errorf("after the block: %v", err)
	}
}

func TestCountryAndGlobalLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CountryPerHour = 2
	cfg.Countries = map[string]int{"SE": 0}
	cfg.GlobalPerMinute = 3
	p, c, _ := newPolicy(t, cfg)
	c.add(30 * time.Minute) // 10:30
	ctx := context.Background()
	p.Admit(ctx, job("dk1", "+4526227921", "1234"))
	p.Admit(ctx, job("dk2", "+4540404040", "1234"))
	// Sliding: room comes when the sends of 10:30 leave the hour (and
	// the minute-long slot they are in).
	_, err := p.Admit(ctx, job("dk3", "+4550505050", "1234"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeCountry, time.Hour+time.Minute)
	// SE has no limit; the global one bites on the fourth send.
	if _, err := p.Admit(ctx, job("se1", "+46701234567", "1234")); err != nil {
		t.Fatal(err)
	}
	_, err = p.Admit(ctx, job("se2", "+46701234568", "1234"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeGlobal, time.Minute+time.Second)
	// The rejected send did not use up se2's number: once the window
	// moved on it goes, with no cooldown in the way.
	c.add(time.Minute + time.Second)
	if _, err := p.Admit(ctx, job("se3", "+46701234568", "1234")); err != nil {
		t.Errorf("after the global window: %v", err)
	}
}

func TestSuperseded(t *testing.T) {
	p, c, _ := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	a, b := job("a", "+4526227921", "1111"), job("b", "+4526227921", "2222")
	p.Admit(ctx, a)
	if s, _ := p.Superseded(ctx, a); s != "" {
		t.Error("a superseded before b")
	}
	c.add(time.Minute)
	p.Admit(ctx, b)
	if s, err := p.Superseded(ctx, a); s != "b" || err != nil {
		t.Errorf("a superseded by %q, want b: %v", s, err)
	}
	if s, _ := p.Superseded(ctx, b); s != "" {
		t.Error("b superseded")
	}
	text := job("t", "+4526227921", "")
	text.Text = "hello"
	if s, _ := p.Superseded(ctx, text); s != "" {
		t.Error("a text job superseded")
	}
}

func TestConcurrentAdmitsHoldTheLimit(t *testing.T) {
	p, _, _ := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := p.Admit(ctx, job(fmt.Sprint("c", i), "+4526227921", fmt.Sprint(100000+i))); err == nil && !v.Duplicate {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d sends accepted at once, want 1 (cooldown)", n)
	}
}

func TestStoreKeepsNoNumber(t *testing.T) {
	p, _, store := newPolicy(t, DefaultConfig())
	if _, err := p.Admit(context.Background(), job("a", "+4526227921", "034812")); err != nil {
		t.Fatal(err)
	}
	if len(store.written) < 5 { // job, number, block, country, global
		t.Fatalf("%d store entries", len(store.written))
	}
	for k, v := range store.written {
		for _, secret := range []string{"26227921", "034812", "2622790"} {
			if contains(k, secret) || contains(string(v), secret) {
				t.Errorf("store entry %s=%q reveals %s", k, v, secret)
			}
		}
	}
}

// recordingStore keeps the last value written to each key, and counts
// the writes.
type recordingStore struct {
	*MemoryStore
	mu      sync.Mutex
	written map[string][]byte
	writes  int
}

func (s *recordingStore) record(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written[key] = slices.Clone(value)
	s.writes++
}

func (s *recordingStore) Delete(ctx context.Context, key string, rev uint64) error {
	s.record(key, nil)
	return s.MemoryStore.Delete(ctx, key, rev)
}

func (s *recordingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *recordingStore) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	s.record(key, value)
	return s.MemoryStore.Create(ctx, key, value)
}

func (s *recordingStore) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.record(key, value)
	return s.MemoryStore.Update(ctx, key, value, rev)
}

func (s *recordingStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	s.record(key, value)
	return s.MemoryStore.Put(ctx, key, value)
}

func (s *recordingStore) Apply(ctx context.Context, writes []Write) {
	for _, w := range writes {
		s.record(w.Key, w.Value)
	}
	s.MemoryStore.Apply(ctx, writes)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil {
		t.Error("no key accepted")
	}
	cfg.Key = testKey
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	cfg.Number = append(cfg.Number, Window{0, time.Hour})
	cfg.Countries = map[string]int{"DNK": 1}
	if err := cfg.Validate(); err == nil {
		t.Error("bad window and country accepted")
	}
}

// barrierStore holds the first reads of key until as many have arrived
// as arrived counts.
type barrierStore struct {
	Store
	key     string
	arrived *sync.WaitGroup
	n       atomic.Int32
}

func (s *barrierStore) Get(ctx context.Context, key string) (Entry, error) {
	if key == s.key && s.n.Add(1) <= 16 {
		s.arrived.Done()
		s.arrived.Wait()
	}
	return s.Store.Get(ctx, key)
}

// TestOutbox: the message that holds a job, redelivered after the job
// ended, finds the job's final event to tell again; other messages do
// not. Failed attempts are counted per job, for its message only.
func TestOutbox(t *testing.T) {
	p, _, _ := newPolicy(t, DefaultConfig())
	ctx := context.Background()
	j := job("o", "+4526227921", "123456")
	if v, err := p.AdmitQueued(ctx, j, 3); err != nil || v.Earlier || v.Duplicate {
		t.Fatalf("first delivery: %+v %v", v, err)
	}
	for want := 1; want <= 2; want++ {
		if n, err := p.Attempted(ctx, j, 3); err != nil || n != want {
			t.Fatalf("attempt %d: %d %v", want, n, err)
		}
	}
	if _, err := p.Attempted(ctx, j, 4); !errors.Is(err, ErrOtherJob) {
		t.Errorf("attempt by another message: %v, want ErrOtherJob", err)
	}
	v, err := p.AdmitQueued(ctx, j, 3)
	if err != nil || !v.Earlier || v.Attempts != 2 {
		t.Fatalf("redelivery: %+v %v, want earlier with 2 attempts", v, err)
	}
	ev := otp.Event{Type: otp.StateSent, ID: "o", Modem: "m1", Refs: []int{9}}
	if err := p.Finish(ctx, j, 3, ev); err != nil {
		t.Fatal(err)
	}
	v, err = p.AdmitQueued(ctx, j, 3)
	if err != nil || !v.Ended || v.State != otp.StateSent {
		t.Fatalf("redelivery after the end: %+v %v", v, err)
	}
	var got otp.Event
	if err := json.Unmarshal(v.Final, &got); err != nil || got.Type != otp.StateSent || got.Modem != "m1" || len(got.Refs) != 1 {
		t.Errorf("final event %s: %v", v.Final, err)
	}
	// Another copy of the job is a duplicate, not the job's message.
	if v, err := p.AdmitQueued(ctx, j, 8); err != nil || v.Ended || !v.Duplicate {
		t.Errorf("a copy: %+v %v", v, err)
	}
}

// TestRefusalWritesNothing: a refusal by any limit writes nothing to the
// store, the number's own record included, but the one refusal that
// blocks a number block, which records the block once; the refusals the
// cached block answers after it write nothing either.
func TestRefusalWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		scope otp.Scope
		// number is the number of the i-th job; the first admitted
		// ones fill the limit.
		number   func(i int) string
		admitted int
		// blocking is the refusal that records its block.
		blocking int
	}{
		{name: "cooldown", cfg: func(c *Config) {}, scope: otp.ScopeNumber,
			number: func(int) string { return "+4526227921" }, admitted: 1, blocking: -1},
		{name: "number window", cfg: func(c *Config) { c.Cooldown, c.Number = 0, []Window{{3, time.Hour}} }, scope: otp.ScopeNumber,
			number: func(int) string { return "+4526227921" }, admitted: 3, blocking: -1},
		{name: "country", cfg: func(c *Config) { c.CountryPerHour, c.GlobalPerMinute, c.PrefixDistinct = 3, 0, 0 }, scope: otp.ScopeCountry,
			number: func(i int) string { return fmt.Sprintf("+4526%06d", 220000+i*1000) }, admitted: 3, blocking: -1},
		{name: "global", cfg: func(c *Config) { c.CountryPerHour, c.GlobalPerMinute, c.PrefixDistinct = 0, 3, 0 }, scope: otp.ScopeGlobal,
			number: func(i int) string { return fmt.Sprintf("+4626%06d", 220000+i*1000) }, admitted: 3, blocking: -1},
		{name: "number block", cfg: func(c *Config) { c.CountryPerHour, c.GlobalPerMinute, c.PrefixDistinct = 0, 0, 3 }, scope: otp.ScopePrefix,
			number: func(i int) string { return fmt.Sprintf("+45262279%02d", i) }, admitted: 3, blocking: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.cfg(&cfg)
			p, c, store := newPolicy(t, cfg)
			ctx := context.Background()
			for i := range tc.admitted + 5 {
				c.add(time.Second)
				before := store.count()
				_, err := p.Admit(ctx, job(fmt.Sprint("j", i), tc.number(i), "1234"))
				wrote := store.count() - before
				switch {
				case i < tc.admitted:
					if err != nil {
						t.Fatalf("job %d: %v", i, err)
					}
					if wrote == 0 {
						t.Fatalf("job %d admitted without a write", i)
					}
				case err == nil:
					t.Fatalf("job %d admitted past the limit", i)
				default:
					if re, _ := otp.AsReject(err); re == nil || re.Scope != tc.scope {
						t.Fatalf("job %d: %v, want a refusal of scope %s", i, err, tc.scope)
					}
					want := 0
					if i == tc.blocking {
						want = 1 // the block record
					}
					if wrote != want {
						t.Errorf("refusal %d wrote %d times, want %d", i, wrote, want)
					}
				}
			}
		})
	}
}

// TestLimitsSlide: a country or global limit holds in every window of its
// length, also across the edge of an hour or a minute, where a fixed
// window would let a second burst through; the sends leave the window
// one slot at a time.
func TestLimitsSlide(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		window time.Duration
		scope  otp.Scope
		number func(i int) string
	}{
		{name: "country", cfg: func(c *Config) { c.CountryPerHour, c.GlobalPerMinute = 10, 0 }, window: time.Hour,
			scope: otp.ScopeCountry, number: func(i int) string { return fmt.Sprintf("+4526%06d", 220000+i) }},
		{name: "global", cfg: func(c *Config) { c.CountryPerHour, c.GlobalPerMinute = 0, 10 }, window: time.Minute,
			scope: otp.ScopeGlobal, number: func(i int) string { return fmt.Sprintf("+4626%06d", 220000+i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Cooldown, cfg.Number, cfg.PrefixDistinct = 0, nil, 0
			tc.cfg(&cfg)
			p, c, _ := newPolicy(t, cfg)
			ctx := context.Background()
			// Just before the edge of the window: the whole limit.
			c.add(tc.window - time.Millisecond)
			n := 0
			admit := func() error {
				n++
				_, err := p.Admit(ctx, job(fmt.Sprint("j", n), tc.number(n), "1234"))
				return err
			}
			for range 10 {
				if err := admit(); err != nil {
					t.Fatal(err)
				}
			}
			// Just after the edge: a fixed window would start afresh.
			c.add(2 * time.Millisecond)
			if err := admit(); err == nil {
				t.Fatal("a second burst across the edge of the window")
			} else if re, _ := otp.AsReject(err); re == nil || re.Scope != tc.scope {
				t.Fatalf("refused: %v, want %s", err, tc.scope)
			}
			// A window later (and a slot), the first burst has left.
			c.add(tc.window)
			for range 10 {
				if err := admit(); err != nil {
					t.Fatalf("a window later: %v", err)
				}
			}
		})
	}
}

var prefixModelFull = flag.Bool("prefix.full", false,
	"run TestPrefixGuardModel at full size: a million users, 100,000 logins")

// TestPrefixGuardModel holds the default prefix guard to both sides of
// SMS pumping. A real service: a million users in Denmark spread over
// 10,000 blocks of 1,000 mobile numbers (100 users each), logging in
// 100,000 times an hour at random: no block is ever refused. By default it
// runs a tenth of that (the same load per block: 1,000 blocks, 10,000
// logins); -prefix.full runs it whole. A pump: 30 new sequential numbers in
// 5 minutes into one quiet block: refused long before the 30th.
func TestPrefixGuardModel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CountryPerHour, cfg.GlobalPerMinute = 0, 0 // the guard alone
	ctx := context.Background()

	t.Run("a million users", func(t *testing.T) {
		p, c, _ := newPolicy(t, cfg)
		rng := rand.New(rand.NewPCG(1, 2))
		nblocks, logins := 1_000, 10_000
		if *prefixModelFull {
			nblocks, logins = 10_000, 100_000
		}
		// Blocks of valid Danish numbers, +45 2xxxx xxx up.
		var blocks []string
		for b := 20000; len(blocks) < nblocks; b++ {
			if _, err := otp.ParseNumber(fmt.Sprintf("+45%05d010", b), ""); err == nil {
				blocks = append(blocks, fmt.Sprintf("+45%05d", b))
			}
		}
		blocked := 0
		for i := range logins {
			c.add(time.Hour / time.Duration(logins))
			user := rng.IntN(nblocks * 100)
			// 100 users in each block.
			number := fmt.Sprintf("%s%03d", blocks[user/100], user%100*10)
			_, err := p.Admit(ctx, job(fmt.Sprint("u", i), number, "123456"))
			if re, ok := otp.AsReject(err); ok && re.Reason == otp.ReasonPrefixBlocked {
				blocked++
			}
		}
		if blocked > 0 {
			t.Errorf("%d of %d real logins refused as pumping", blocked, logins)
		}
	})

	t.Run("a pump", func(t *testing.T) {
		p, c, _ := newPolicy(t, cfg)
		passed := 0
		for i := range 30 {
			c.add(10 * time.Second)
			_, err := p.Admit(ctx, job(fmt.Sprint("p", i), fmt.Sprintf("+4550123%03d", 100+i), "123456"))
			if err == nil {
				passed++
			} else if re, _ := otp.AsReject(err); re == nil || re.Reason != otp.ReasonPrefixBlocked {
				t.Fatalf("pump %d: %v", i, err)
			}
		}
		if passed > 15 {
			t.Errorf("%d of 30 pumped numbers passed, want at most 15", passed)
		}
		t.Logf("%d of 30 pumped numbers passed", passed)
	})
}

// raceStore runs before and after (once each) around the next Apply: what
// another daemon does while a decision writes.
type raceStore struct {
	*MemoryStore
	before, after func()
}

func (s *raceStore) Apply(ctx context.Context, writes []Write) {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
	s.MemoryStore.Apply(ctx, writes)
	if f := s.after; f != nil {
		s.after = nil
		f()
	}
}

// TestAdoptedWhileTakenBack: a decision's write of a record meets
// another's, so it takes back what it wrote; meanwhile a worker took the
// job's message (the same id published on otp.send) and adopted the job's
// record. The job stands, and so do its counts, those written and those
// whose write failed: a second job to the number is refused by the
// cooldown.
func TestAdoptedWhileTakenBack(t *testing.T) {
	ctx := context.Background()
	for _, met := range []string{"block", "number"} {
		t.Run("the "+met+" record met another", func(t *testing.T) {
			p, _, mem := newPolicy(t, DefaultConfig())
			rs := &raceStore{MemoryStore: mem.MemoryStore}
			p.store = rs
			j := job("adopt", "+4526227921", "123456")
			k := p.keysOf(j, p.macs.new())
			rs.before = func() {
				// Another decision writes the record first.
				key, value := k.block, (&prefixRecord{}).marshal(nil)
				if met == "number" {
					key, value = k.number, (&numberRecord{}).marshal(nil)
				}
				if _, err := mem.Create(ctx, key, value); err != nil {
					t.Fatal(err)
				}
			}
			rs.after = func() {
				if v, err := p.AdmitQueued(ctx, j, 5); err != nil || !v.Earlier {
					t.Errorf("the worker: %+v %v, want it to adopt the job", v, err)
				}
			}
			if v, err := p.Admit(ctx, j); err != nil || !v.Duplicate {
				t.Fatalf("otp.request: %+v %v, want the adopted job's duplicate", v, err)
			}
			_, err := p.Admit(ctx, job("second", "+4526227921", "654321"))
			wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, time.Minute)
		})
	}
}

// readCountingStore counts a Store's reads.
type readCountingStore struct {
	Store
	reads atomic.Int32
}

func (s *readCountingStore) GetMany(ctx context.Context, keys []string, entries []Entry) error {
	s.reads.Add(1)
	return s.Store.GetMany(ctx, keys, entries)
}

// TestRefuse: Refuse answers a job that a cached block refuses as Admit
// would, from the job's record alone and writing nothing: the refusal, or
// a duplicate for the retry of a job admitted before the block; a job no
// block refuses is left to Admit (ErrNotBlocked) with nothing read, also
// once the block has ended.
func TestRefuse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cooldown, cfg.Number, cfg.PrefixDistinct = 0, nil, 0
	cfg.CountryPerHour, cfg.GlobalPerMinute = 2, 0
	p, c, store := newPolicy(t, cfg)
	reads := &readCountingStore{Store: store}
	p.store = reads
	ctx := context.Background()
	number := func(i int) string { return fmt.Sprintf("+4526%06d", 220000+i*1000) }

	if _, err := p.Refuse(ctx, job("j0", number(0), "1234")); !errors.Is(err, ErrNotBlocked) || reads.reads.Load() != 0 {
		t.Fatalf("no block: %v after %d reads, want ErrNotBlocked and none", err, reads.reads.Load())
	}
	for i := range 2 {
		j := job(fmt.Sprint("j", i), number(i), "1234")
		v, err := p.Admit(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Queued(ctx, j, v, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Admit(ctx, job("j2", number(2), "1234")); err == nil {
		t.Fatal("the country's third job admitted")
	}
	if !p.Blocked(job("j3", number(3), "1234")) {
		t.Fatal("the country's limit is not cached")
	}

	writes, before := store.count(), reads.reads.Load()
	_, err := p.Refuse(ctx, job("j3", number(3), "1234"))
	if re, _ := otp.AsReject(err); re == nil || re.Scope != otp.ScopeCountry {
		t.Errorf("a new job under the block: %v, want the country's refusal", err)
	}
	v, err := p.Refuse(ctx, job("j1", number(1), "1234"))
	if err != nil || !v.Duplicate {
		t.Errorf("the retry of a job admitted before the block: %+v %v, want a duplicate", v, err)
	}
	if n := reads.reads.Load() - before; n != 2 || store.count() != writes {
		t.Errorf("two refusals read %d times and wrote %d, want 2 reads and no write", n, store.count()-writes)
	}

	c.add(2 * time.Hour) // the block, and the sends it counted, gone
	before = reads.reads.Load()
	if _, err := p.Refuse(ctx, job("j4", number(4), "1234")); !errors.Is(err, ErrNotBlocked) || reads.reads.Load() != before {
		t.Errorf("after the block: %v, want ErrNotBlocked and no read", err)
	}
	if _, err := p.Admit(ctx, job("j4", number(4), "1234")); err != nil {
		t.Errorf("after the block, Admit: %v", err)
	}
}
