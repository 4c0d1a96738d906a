package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mapStore is a Store whose every value a test can read.
type mapStore struct {
	mu  sync.Mutex
	rev uint64
	m   map[string]policy.Entry
}

func newMapStore() *mapStore { return &mapStore{m: map[string]policy.Entry{}} }

func (s *mapStore) Get(_ context.Context, key string) (policy.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return policy.Entry{}, policy.ErrNotFound
	}
	return e, nil
}

func (s *mapStore) Create(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return 0, policy.ErrExists
	}
	s.rev++
	s.m[key] = policy.Entry{Value: bytes.Clone(value), Rev: s.rev}
	return s.rev, nil
}

func (s *mapStore) Update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; !ok || e.Rev != rev {
		return 0, policy.ErrConflict
	}
	s.rev++
	s.m[key] = policy.Entry{Value: bytes.Clone(value), Rev: s.rev}
	return s.rev, nil
}

func (s *mapStore) Delete(_ context.Context, key string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; !ok || e.Rev != rev {
		return policy.ErrConflict
	}
	delete(s.m, key)
	return nil
}

// dump returns every key and value of the store.
func (s *mapStore) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s.m)) {
		fmt.Fprintf(&b, "%s=%s\n", k, s.m[k].Value)
	}
	return b.String()
}

// mapSecrets is a Secrets whose keys expire by a test clock.
type mapSecrets struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]secretEntry
}

type secretEntry struct {
	value   []byte
	expires time.Time
}

func (s *mapSecrets) Create(_ context.Context, id string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok && s.now().Before(e.expires) {
		return policy.ErrExists
	}
	s.m[id] = secretEntry{bytes.Clone(value), s.now().Add(ttl)}
	return nil
}

func (s *mapSecrets) Get(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok || !s.now().Before(e.expires) {
		return nil, policy.ErrNotFound
	}
	return e.value, nil
}

func (s *mapSecrets) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// live returns how many secrets are kept and not expired.
func (s *mapSecrets) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.m {
		if s.now().Before(e.expires) {
			n++
		}
	}
	return n
}

// fixture is a Verifier over stores a test reads, with a settable clock.
type fixture struct {
	*Verifier
	store   *mapStore
	secrets *mapSecrets
	clock   *clock
}

func newFixture(t *testing.T, cfg Config) fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	f := fixture{store: newMapStore(), secrets: &mapSecrets{now: c.now, m: map[string]secretEntry{}}, clock: c}
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	v, err := New(f.store, f.secrets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.SetClock(c.now)
	f.Verifier = v
	return f
}

// start starts verification id for number, valid 10 min, or fails the
// test.
func (f fixture) start(t *testing.T, id, number string, fresh bool) Started {
	t.Helper()
	st, err := f.startNow(context.Background(), Request{ID: id, Number: number, Region: "DK", TTL: 10 * time.Minute, New: fresh})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return st
}

// wrong returns a code of the same length that is not code.
func wrong(code string, i int) string {
	w := fmt.Sprintf("%0*d", len(code), i)
	if w == code {
		w = fmt.Sprintf("%0*d", len(code), i+1)
	}
	return w
}

// check checks code for id and fails the test unless the answer is want
// with left attempts left.
func (f fixture) check(t *testing.T, id, code string, want otp.CheckStatus, left int) Result {
	t.Helper()
	r, err := f.Check(context.Background(), id, code)
	if err != nil || r.Status != want || r.AttemptsLeft != left {
		t.Fatalf("check %s: %+v %v, want %s with %d attempts left", id, r, err, want, left)
	}
	return r
}

func TestCheck(t *testing.T) {
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	if st.ID != "v1" || st.Resend || len(st.Code) != DefaultDigits {
		t.Fatalf("start: %+v", st)
	}
	if strings.Contains(f.store.dump(), st.Code) {
		t.Errorf("the store holds the code in clear:\n%s", f.store.dump())
	}
	for left := 4; left >= 1; left-- {
		f.check(t, "v1", wrong(st.Code, left), otp.CheckDenied, left)
	}
	if r := f.check(t, "v1", st.Code, otp.CheckApproved, 0); !r.Ended || r.ID != "v1" || r.Region != "DK" {
		t.Errorf("right code: %+v, want the end of v1 (DK)", r)
	}
	f.check(t, "v1", st.Code, otp.CheckNotFound, 0) // single use
	if n := f.secrets.live(); n != 0 {
		t.Errorf("%d secrets kept after approval", n)
	}
	f.check(t, "nope", st.Code, otp.CheckNotFound, 0)
}

// TestLockAndGuess: wrong codes lock the verification at the maximum;
// the right code no longer helps then.
func TestLockAndGuess(t *testing.T) {
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	for i := range DefaultMaxChecks - 1 {
		f.check(t, "v1", wrong(st.Code, i), otp.CheckDenied, DefaultMaxChecks-1-i)
	}
	if r := f.check(t, "v1", wrong(st.Code, 9), otp.CheckLocked, 0); !r.Ended {
		t.Errorf("the locking check: %+v, want the end", r)
	}
	f.check(t, "v1", st.Code, otp.CheckLocked, 0)
	if n := f.secrets.live(); n != 0 {
		t.Errorf("%d secrets kept after the lock", n)
	}
}

// TestExpiry: at its ttl a verification's secrets are gone from the
// secrets store whether or not anyone checks; a check then answers
// expired, once as its end.
func TestExpiry(t *testing.T) {
	f := newFixture(t, Config{})
	st, _ := f.startNow(context.Background(), Request{ID: "v1", Number: "num.a", TTL: time.Minute})
	f.clock.add(time.Minute)
	if n := f.secrets.live(); n != 0 {
		t.Errorf("%d secrets kept after the ttl", n)
	}
	if r := f.check(t, "v1", st.Code, otp.CheckExpired, 0); !r.Ended {
		t.Errorf("after the ttl: %+v, want the end", r)
	}
	if r := f.check(t, "v1", st.Code, otp.CheckExpired, 0); r.Ended {
		t.Errorf("again: %+v, the end is told once", r)
	}
	// An expired verification's code is not sent again: a new one is made.
	if st2 := f.start(t, "v2", "num.a", false); st2.Resend || st2.ID != "v2" {
		t.Errorf("start after expiry: %+v, want a new code", st2)
	}
}

// TestResend: a second start for the number while its code is valid sends
// the same code again, checkable by either request's id, unless a new one
// is asked for, which ends the old.
func TestResend(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st, _ := f.startNow(ctx, Request{ID: "v1", Number: "num.a", TTL: 10 * time.Minute, Digits: 8})
	again, err := f.startNow(ctx, Request{ID: "v2", Number: "num.a", TTL: 10 * time.Minute, Digits: 8})
	if err != nil || !again.Resend || again.ID != "v1" || again.Code != st.Code {
		t.Fatalf("resend: %+v %v, want v1's code again", again, err)
	}
	if r := f.check(t, "v2", wrong(st.Code, 1), otp.CheckDenied, 4); r.ID != "v1" {
		t.Errorf("a check by the resend's id checked %q, want v1", r.ID)
	}
	fresh, err := f.startNow(ctx, Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute, Digits: 8, New: true})
	if err != nil || fresh.Resend || fresh.ID != "v3" || len(fresh.Code) != 8 {
		t.Fatalf("new code: %+v %v", fresh, err)
	}
	f.check(t, "v1", st.Code, otp.CheckNotFound, 0)
	f.check(t, "v2", st.Code, otp.CheckNotFound, 0)
	if f.secrets.m["v1"].value != nil {
		t.Error("the replaced verification's secrets are kept")
	}
	if cur, _, _ := f.state(ctx, "num.a"); cur == nil || cur.ID != "v3" {
		t.Errorf("the number's verification: %+v, want v3", cur)
	}
	f.check(t, "v3", wrong(fresh.Code, 2), otp.CheckDenied, 3) // v1's wrong code carried over
	f.check(t, "v3", fresh.Code, otp.CheckApproved, 0)
	// The id of an approved verification (whose job the policy forgot):
	// afresh.
	if st, err := f.startNow(ctx, Request{ID: "v3", Number: "num.a", TTL: time.Minute}); err != nil || st.Resend || st.Code == fresh.Code {
		t.Errorf("an approved id used again: %+v %v, want a new code", st, err)
	}
}

// TestResendNearExpiry: a code with less than half of the new request's
// ttl left is not sent again: a new one replaces it, with its wrong codes.
func TestResendNearExpiry(t *testing.T) {
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	f.check(t, "v1", wrong(st.Code, 1), otp.CheckDenied, 4)
	f.clock.add(6 * time.Minute)
	st2 := f.start(t, "v2", "num.a", false)
	if st2.Resend || st2.ID != "v2" {
		t.Fatalf("start with 4 of 10 minutes left: %+v, want a new code", st2)
	}
	f.check(t, "v1", st.Code, otp.CheckNotFound, 0)
	f.check(t, "v2", wrong(st2.Code, 2), otp.CheckDenied, 3)
}

// TestCommitSeesChecksSincePlan: a check between a new code's Plan and
// its Commit makes it plan again: the wrong codes carry over, and a lock
// refuses it.
func TestCommitSeesChecksSincePlan(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	r2 := Request{ID: "v2", Number: "num.a", TTL: 10 * time.Minute, New: true}
	s2, _ := f.Plan(ctx, r2)
	f.check(t, "v1", wrong(st.Code, 1), otp.CheckDenied, 4)
	f.check(t, "v1", wrong(st.Code, 2), otp.CheckDenied, 3)
	if err := f.Commit(ctx, &s2); !errors.Is(err, ErrReplan) {
		t.Fatalf("commit after checks: %v, want ErrReplan", err)
	}
	s2, _ = f.Plan(ctx, r2)
	if err := f.Commit(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	f.Finish(ctx, &s2)
	f.check(t, "v2", wrong(s2.Code, 3), otp.CheckDenied, 2) // 2 on v1, carried

	r3 := Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute, New: true}
	s3, _ := f.Plan(ctx, r3)
	f.check(t, "v2", wrong(s2.Code, 4), otp.CheckDenied, 1)
	f.check(t, "v2", wrong(s2.Code, 5), otp.CheckLocked, 0)
	if err := f.Commit(ctx, &s3); !errors.Is(err, ErrReplan) {
		t.Errorf("commit after a lock: %v, want ErrReplan", err)
	}
	if _, err := f.Plan(ctx, r3); !errors.As(err, new(*LockedError)) {
		t.Errorf("plan after a lock: %v, want LockedError", err)
	}
}

// TestConcurrentStarts: starts for one number at once make one code; the
// others send it again.
func TestConcurrentStarts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	store := policy.NewMemoryStore(time.Hour)
	v, _ := New(store, f.secrets, Config{Key: testKey})
	v.SetClock(f.clock.now)
	const n = 16
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st, err := v.startNow(ctx, Request{ID: fmt.Sprint("v", i), Number: "num.a", TTL: 10 * time.Minute})
			if err != nil {
				t.Error(err)
			}
			codes[i] = st.Code
		})
	}
	wg.Wait()
	slices.Sort(codes)
	if codes = slices.Compact(codes); len(codes) != 1 {
		t.Errorf("%d codes made for one number, want 1", len(codes))
	}
}

// TestAbort: a new code whose SMS could not be queued is taken back: the
// code it replaced is good again, and a retry starts afresh.
func TestAbort(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	f.check(t, "v1", wrong(st.Code, 1), otp.CheckDenied, 4)
	before := f.store.dump()
	s2, _ := f.Plan(ctx, Request{ID: "v2", Number: "num.a", TTL: 10 * time.Minute, New: true})
	if err := f.Commit(ctx, &s2); err != nil {
		t.Fatal(err)
	}
	f.Abort(ctx, &s2)
	if after := f.store.dump(); after != before {
		t.Errorf("after abort:\n%s\nwant as before:\n%s", after, before)
	}
	if _, ok := f.secrets.m["v2"]; ok {
		t.Error("the aborted code's secrets are kept")
	}
	// A resend aborted leaves nothing either.
	s3, _ := f.Plan(ctx, Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute})
	if err := f.Commit(ctx, &s3); err != nil || !s3.Resend {
		t.Fatalf("resend: %+v %v", s3, err)
	}
	f.Abort(ctx, &s3)
	if after := f.store.dump(); after != before {
		t.Errorf("after the resend's abort:\n%s", after)
	}
	f.check(t, "v1", st.Code, otp.CheckApproved, 0)
}

// TestAbortKeepsGuesses: wrong codes checked against a new code before
// its start is taken back count for the code it restores, and a lock
// meanwhile stays.
func TestAbortKeepsGuesses(t *testing.T) {
	ctx := context.Background()
	for _, lock := range []bool{false, true} {
		f := newFixture(t, Config{})
		st := f.start(t, "v1", "num.a", false)
		f.check(t, "v1", wrong(st.Code, 1), otp.CheckDenied, 4)
		f.check(t, "v1", wrong(st.Code, 2), otp.CheckDenied, 3)
		a, _ := f.Plan(ctx, Request{ID: "a", Number: "num.a", TTL: 10 * time.Minute, New: true})
		if err := f.Commit(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.CheckNumber(ctx, "num.a", wrong(a.Code, 3)); !r.Busy {
			t.Errorf("a check by number while its code is replaced: %+v, want busy", r)
		}
		f.check(t, "a", wrong(a.Code, 3), otp.CheckDenied, 2) // by the new id
		if lock {
			f.Check(ctx, "a", wrong(a.Code, 4))
			f.Check(ctx, "a", wrong(a.Code, 5))
		}
		f.Abort(ctx, &a)
		if lock {
			f.check(t, "v1", st.Code, otp.CheckNotFound, 0)
			if _, err := f.Plan(ctx, Request{ID: "b", Number: "num.a", TTL: time.Minute}); !errors.As(err, new(*LockedError)) {
				t.Errorf("start after a lock taken back: %v, want LockedError", err)
			}
			continue
		}
		f.check(t, "v1", wrong(st.Code, 6), otp.CheckDenied, 1) // 2 + 1 + this one
		f.check(t, "v1", st.Code, otp.CheckApproved, 0)
	}
}

// TestStaleStart: a start that did not finish within 30 s (its daemon
// stopped, or it stalled) is taken as done by the next one, on either side
// of the clock; a late Abort of it then takes nothing back.
func TestStaleStart(t *testing.T) {
	ctx := context.Background()
	for _, skew := range []time.Duration{31 * time.Second, -5 * time.Minute} {
		f := newFixture(t, Config{})
		f.start(t, "v1", "num.a", false)
		v2, _ := f.Plan(ctx, Request{ID: "v2", Number: "num.a", TTL: 10 * time.Minute, New: true})
		if err := f.Commit(ctx, &v2); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Plan(ctx, Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute}); !errors.Is(err, ErrReplan) {
			t.Fatalf("while v2 is under way: %v, want ErrReplan", err)
		}
		f.clock.add(skew)
		v3 := f.start(t, "v3", "num.a", false)
		if !v3.Resend || v3.ID != "v2" || v3.Code != v2.Code {
			t.Fatalf("skew %v: start after a stale one: %+v, want v2's code again", skew, v3)
		}
		f.Abort(ctx, &v2) // late: v3 sent its code already
		f.check(t, "v3", v2.Code, otp.CheckApproved, 0)
		if _, ok := f.secrets.m["v1"]; ok {
			t.Errorf("skew %v: the replaced code's secrets are kept", skew)
		}
	}
}

// TestOrphanRecord: an id recorded by a start that never made its code
// current (its daemon stopped within Commit) starts afresh.
func TestOrphanRecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	f.store.Create(ctx, recordKey("v1"), []byte(`{"n":"num.a"}`))
	if st, err := f.startNow(ctx, Request{ID: "v1", Number: "num.a", TTL: 10 * time.Minute}); err != nil || st.Resend {
		t.Fatalf("start of an orphan id: %+v %v, want a new code", st, err)
	}
	if _, err := f.startNow(ctx, Request{ID: "v1", Number: "num.b", TTL: 10 * time.Minute}); !errors.Is(err, ErrExists) {
		t.Errorf("the id for another number: %v, want ErrExists", err)
	}
}

// TestRetriedRequest: a request retried under its id gets the code it
// sent and records nothing twice; an id of another number's verification
// is refused.
func TestRetriedRequest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	f.start(t, "v2", "num.a", false) // a resend
	for _, id := range []string{"v1", "v2"} {
		again, err := f.startNow(ctx, Request{ID: id, Number: "num.a", TTL: 10 * time.Minute, New: true})
		if err != nil || again.Code != st.Code || again.ID != "v1" {
			t.Errorf("%s again: %+v %v, want v1's code", id, again, err)
		}
	}
	if _, err := f.Plan(ctx, Request{ID: "v1", Number: "num.b", TTL: time.Minute}); !errors.Is(err, ErrExists) {
		t.Errorf("v1 for another number: %v, want ErrExists", err)
	}
	if id, _ := f.Verification(ctx, "v2"); id != "v1" {
		t.Errorf("Verification(v2) = %q, want v1", id)
	}
}

// TestPlanWritesNothing: a planned verification its caller then refuses
// leaves no trace.
func TestPlanWritesNothing(t *testing.T) {
	f := newFixture(t, Config{})
	f.start(t, "v1", "num.a", false)
	before := f.store.dump()
	for _, fresh := range []bool{false, true} {
		if _, err := f.Plan(context.Background(), Request{ID: "v2", Number: "num.a", TTL: time.Minute, New: fresh}); err != nil {
			t.Fatal(err)
		}
	}
	if after := f.store.dump(); after != before || len(f.secrets.m) != 1 {
		t.Errorf("plan wrote: %s -> %s (%d secrets)", before, after, len(f.secrets.m))
	}
}

// TestRacingChecks: many checkers at once (two daemons' worth, on one
// store) never get more wrong codes counted than the maximum, and never
// approve a guess.
func TestRacingChecks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{ChecksPerMinute: 1000})
	store := policy.NewMemoryStore(time.Hour)
	cfg := Config{Key: testKey, ChecksPerMinute: 1000}
	a, _ := New(store, f.secrets, cfg)
	b, _ := New(store, f.secrets, cfg)
	a.SetClock(f.clock.now)
	b.SetClock(f.clock.now)
	st, _ := a.startNow(ctx, Request{ID: "v1", Number: "num.a", TTL: 10 * time.Minute})
	var denied, locked, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		v := a
		if i%2 == 1 {
			v = b
		}
		wg.Go(func() {
			r, err := v.Check(ctx, "v1", wrong(st.Code, i))
			switch {
			case err != nil:
				t.Error(err)
			case r.Status == otp.CheckDenied:
				denied.Add(1)
			case r.Status == otp.CheckLocked:
				locked.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	if denied.Load() != DefaultMaxChecks-1 || other.Load() != 0 || locked.Load() != 64-DefaultMaxChecks+1 {
		t.Errorf("denied %d, locked %d, other %d; want %d denied and the rest locked", denied.Load(), locked.Load(), other.Load(), DefaultMaxChecks-1)
	}
	if r, _ := b.Check(ctx, "v1", st.Code); r.Status != otp.CheckLocked {
		t.Errorf("the right code after the race: %+v", r)
	}
}

// TestChecksPerNumber: checks of one number's verifications are limited,
// new codes or not; the allowance comes back with time.
func TestChecksPerNumber(t *testing.T) {
	f := newFixture(t, Config{MaxChecks: 100, ChecksPerMinute: 3})
	st := f.start(t, "v1", "num.a", false)
	for i := range 3 {
		f.check(t, "v1", wrong(st.Code, i), otp.CheckDenied, 100-1-i)
	}
	r := f.check(t, "v1", st.Code, otp.CheckRejected, 0)
	if r.RetryAfter != 20*time.Second {
		t.Errorf("retry after %v, want 20s", r.RetryAfter)
	}
	st2 := f.start(t, "v2", "num.a", true)
	f.check(t, "v2", st2.Code, otp.CheckRejected, 0) // a new code brings no new checks
	other := f.start(t, "w1", "num.b", false)
	f.check(t, "w1", other.Code, otp.CheckApproved, 0) // another number's are its own
	f.clock.add(20 * time.Second)
	f.check(t, "v2", st2.Code, otp.CheckApproved, 0)
}

func TestGenerateCode(t *testing.T) {
	for _, d := range []int{MinDigits - 1, MaxDigits + 1} {
		if _, err := GenerateCode(d); err == nil {
			t.Errorf("%d digits accepted", d)
		}
	}
	leadingZero := false
	seen := map[string]bool{}
	for range 2000 {
		c, err := GenerateCode(6)
		if err != nil || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q %v", c, err)
		}
		leadingZero = leadingZero || c[0] == '0'
		seen[c] = true
	}
	if !leadingZero || len(seen) < 1990 {
		t.Errorf("2000 codes: %d distinct, a leading zero: %v", len(seen), leadingZero)
	}
}

// TestOtherKeyCannotOpen: a code sealed under one cluster's key is not
// opened, nor checked, under another's.
func TestOtherKeyCannotOpen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	b, _ := New(f.store, f.secrets, Config{Key: []byte("another key, another cluster....")})
	b.SetClock(f.clock.now)
	if s, err := b.Plan(ctx, Request{ID: "v2", Number: "num.a", TTL: 10 * time.Minute}); err != nil || s.Resend {
		t.Errorf("a start under another key: %+v %v, want a new code (the sealed one does not open)", s, err)
	}
	if r, _ := b.Check(ctx, "v1", st.Code); r.Status == otp.CheckApproved {
		t.Error("the right code approved under another key")
	}
	sealed, _ := f.SealJob("j1", "+4520000000", st.Code)
	if _, err := b.OpenJob("j1", "+4520000000", sealed); err == nil {
		t.Error("a job's code opened under another key")
	}
}

// TestSealJob: a job's sealed code opens for that job and destination
// only.
func TestSealJob(t *testing.T) {
	f := newFixture(t, Config{})
	sealed, err := f.SealJob("j1", "+4520000000", "123456")
	if err != nil || strings.Contains(sealed, "123456") {
		t.Fatalf("seal: %q %v", sealed, err)
	}
	if code, err := f.OpenJob("j1", "+4520000000", sealed); err != nil || code != "123456" {
		t.Errorf("open: %q %v", code, err)
	}
	for _, c := range []struct{ id, to, sealed string }{
		{"j2", "+4520000000", sealed},
		{"j1", "+4520000001", sealed},
		{"j1", "+4520000000", sealed[:len(sealed)-2] + "AA"},
		{"j1", "+4520000000", "not base64!"},
		{"j1", "+4520000000", ""},
	} {
		if code, err := f.OpenJob(c.id, c.to, c.sealed); err == nil {
			t.Errorf("OpenJob(%q, %q, %q) = %q, want an error", c.id, c.to, c.sealed, code)
		}
	}
}

// TestLockHoldsAcrossCodes: a number whose verification locked gets no new
// code until that one would have expired, and a new code does not bring
// new guesses with it.
func TestLockHoldsAcrossCodes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	for i := range 3 {
		f.check(t, "v1", wrong(st.Code, i), otp.CheckDenied, 4-i)
	}
	st2 := f.start(t, "v2", "num.a", true)
	f.check(t, "v2", wrong(st2.Code, 7), otp.CheckDenied, 1) // 3 spent on the old
	f.check(t, "v2", wrong(st2.Code, 8), otp.CheckLocked, 0)
	f.clock.add(time.Minute)
	for _, fresh := range []bool{false, true} {
		_, err := f.startNow(ctx, Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute, New: fresh})
		if le := (*LockedError)(nil); !errors.As(err, &le) || le.RetryAfter != 9*time.Minute {
			t.Errorf("start (new code %v) after the lock: %v, want LockedError for 9m", fresh, err)
		}
	}
	f.clock.add(9 * time.Minute)
	if st3 := f.start(t, "v3", "num.a", false); st3.Resend {
		t.Errorf("start after the locked code expired: %+v", st3)
	}
}

// TestBusyWhileReplaced: a check of the code a start not done yet is
// replacing is told to try again; once the start is taken back, the code
// is good, and once it is done, not_found.
func TestBusyWhileReplaced(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	st := f.start(t, "v1", "num.a", false)
	for _, done := range []bool{false, true} {
		s2, _ := f.Plan(ctx, Request{ID: fmt.Sprint("v2-", done), Number: "num.a", TTL: 10 * time.Minute, New: true})
		if err := f.Commit(ctx, &s2); err != nil {
			t.Fatal(err)
		}
		if r, _ := f.Check(ctx, "v1", st.Code); r.Status != otp.CheckError || !r.Busy {
			t.Errorf("check of the code being replaced: %+v, want busy", r)
		}
		if _, err := f.Plan(ctx, Request{ID: "v3", Number: "num.a", TTL: 10 * time.Minute}); !errors.Is(err, ErrReplan) {
			t.Errorf("a start while another is under way: %v, want ErrReplan", err)
		}
		if done {
			f.Finish(ctx, &s2)
			f.check(t, "v1", st.Code, otp.CheckNotFound, 0)
		} else {
			f.Abort(ctx, &s2)
		}
	}
}

// TestSwappedSecrets: a verification's sealed code and hash are bound to
// its id: moved to another verification, they neither open nor check.
func TestSwappedSecrets(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	a := f.start(t, "va", "num.a", false)
	b := f.start(t, "vb", "num.b", false)
	f.secrets.m["vb"] = f.secrets.m["va"]
	if s, err := f.Plan(ctx, Request{ID: "vb2", Number: "num.b", TTL: 10 * time.Minute}); err != nil || s.Resend {
		t.Errorf("a sealed code moved to another verification: %+v %v, want a new code (it does not open)", s, err)
	}
	if a.Code != b.Code {
		if r, _ := f.Check(ctx, "vb", a.Code); r.Status == otp.CheckApproved {
			t.Error("a hash moved to another verification approved its code")
		}
	}
}

// startNow begins, and at once finishes, verification r: for tests with
// nothing to do between.
func (v *Verifier) startNow(ctx context.Context, r Request) (Started, error) {
	s, err := v.Begin(ctx, r)
	if err == nil {
		v.Finish(ctx, &s)
	}
	return s, err
}
