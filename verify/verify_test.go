package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	for k, e := range s.m {
		fmt.Fprintf(&b, "%s=%s\n", k, e.Value)
	}
	return b.String()
}

func newVerifier(t *testing.T) (*Verifier, *mapStore, *clock) {
	t.Helper()
	s := newMapStore()
	v, err := New(s, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	v.SetClock(c.now)
	return v, s, c
}

// wrong returns a code of the same length that is not code.
func wrong(code string, i int) string {
	w := fmt.Sprintf("%0*d", len(code), i)
	if w == code {
		w = fmt.Sprintf("%0*d", len(code), i+1)
	}
	return w
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newVerifier(t)
	st, err := v.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
	if err != nil || st.ID != "v1" || st.Resend || len(st.Code) != DefaultDigits {
		t.Fatalf("start: %+v %v", st, err)
	}
	if strings.Contains(store.dump(), st.Code) {
		t.Errorf("the store holds the code in clear:\n%s", store.dump())
	}
	for left := 4; left >= 1; left-- {
		r, err := v.Check(ctx, "v1", wrong(st.Code, left))
		if err != nil || r.Status != otp.CheckDenied || r.AttemptsLeft != left {
			t.Fatalf("wrong code: %+v %v, want denied with %d left", r, err, left)
		}
	}
	if r, err := v.Check(ctx, "v1", st.Code); err != nil || r.Status != otp.CheckApproved || !r.Ended {
		t.Fatalf("right code: %+v %v", r, err)
	}
	if r, _ := v.Check(ctx, "v1", st.Code); r.Status == otp.CheckApproved {
		t.Errorf("the right code again: %+v, want it not approved a second time", r)
	}
	if strings.Contains(store.dump(), `"s":`) || strings.Contains(store.dump(), `"h":`) {
		t.Errorf("secrets kept after approval:\n%s", store.dump())
	}
	if r, _ := v.Check(ctx, "nope", st.Code); r.Status != otp.CheckNotFound {
		t.Errorf("an unknown verification: %+v", r)
	}
}

// TestLockAndGuess: wrong codes lock the verification at the maximum;
// the right code no longer helps then.
func TestLockAndGuess(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newVerifier(t)
	st, _ := v.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
	for i := range DefaultMaxChecks {
		r, err := v.Check(ctx, "v1", wrong(st.Code, i))
		want := otp.CheckDenied
		if i == DefaultMaxChecks-1 {
			want = otp.CheckLocked
		}
		if err != nil || r.Status != want {
			t.Fatalf("wrong code %d: %+v %v, want %s", i, r, err, want)
		}
	}
	if r, _ := v.Check(ctx, "v1", st.Code); r.Status != otp.CheckLocked {
		t.Errorf("the right code after the lock: %+v, want locked", r)
	}
	if strings.Contains(store.dump(), `"s":`) {
		t.Errorf("secrets kept after the lock:\n%s", store.dump())
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	v, store, c := newVerifier(t)
	st, _ := v.Start(ctx, "v1", "num.a", time.Minute, 0, false)
	c.add(time.Minute)
	if r, _ := v.Check(ctx, "v1", st.Code); r.Status != otp.CheckExpired || !r.Ended {
		t.Errorf("after the ttl: %+v, want expired", r)
	}
	if strings.Contains(store.dump(), `"s":`) {
		t.Errorf("secrets kept after expiry:\n%s", store.dump())
	}
	// An expired verification's code is not sent again: a new one is made.
	st2, _ := v.Start(ctx, "v2", "num.a", time.Minute, 0, false)
	if st2.Resend || st2.ID != "v2" {
		t.Errorf("start after expiry: %+v, want a new code", st2)
	}
}

// TestResend: a second start for the number while its code is valid sends
// the same code again, unless a new one is asked for, which ends the old.
func TestResend(t *testing.T) {
	ctx := context.Background()
	v, _, _ := newVerifier(t)
	st, _ := v.Start(ctx, "v1", "num.a", 10*time.Minute, 8, false)
	again, err := v.Start(ctx, "v2", "num.a", 10*time.Minute, 8, false)
	if err != nil || !again.Resend || again.ID != "v1" || again.Code != st.Code {
		t.Fatalf("resend: %+v %v, want v1's code again", again, err)
	}
	fresh, err := v.Start(ctx, "v3", "num.a", 10*time.Minute, 8, true)
	if err != nil || fresh.Resend || fresh.Replaced != "v1" || len(fresh.Code) != 8 {
		t.Fatalf("new code: %+v %v", fresh, err)
	}
	if r, _ := v.Check(ctx, "v1", st.Code); r.Status != otp.CheckNotFound {
		t.Errorf("the replaced verification: %+v, want not_found", r)
	}
	if id, _ := v.PendingOf(ctx, "num.a"); id != "v3" {
		t.Errorf("pending of the number: %q, want v3", id)
	}
	if r, _ := v.Check(ctx, "v3", fresh.Code); r.Status != otp.CheckApproved {
		t.Errorf("the new code: %+v", r)
	}
}

// TestRacingChecks: many checkers at once (two daemons' worth, on one
// store) never get more wrong codes counted than the maximum, and never
// approve a guess.
func TestRacingChecks(t *testing.T) {
	ctx := context.Background()
	store := policy.NewMemoryStore(time.Hour)
	a, _ := New(store, testKey, 0)
	b, _ := New(store, testKey, 0)
	st, _ := a.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
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
	store := newMapStore()
	a, _ := New(store, testKey, 0)
	st, _ := a.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
	b, _ := New(store, []byte("another key, another cluster...."), 0)
	if _, err := b.Start(ctx, "v2", "num.a", 10*time.Minute, 0, false); err == nil {
		t.Error("a resend under another key opened the sealed code")
	}
	if r, _ := b.Check(ctx, "v1", st.Code); r.Status == otp.CheckApproved {
		t.Error("the right code approved under another key")
	}
}

// TestLockHoldsAcrossCodes: a number whose verification locked gets no new
// code until that one would have expired, and a new code does not bring
// new guesses with it.
func TestLockHoldsAcrossCodes(t *testing.T) {
	ctx := context.Background()
	v, _, c := newVerifier(t)
	st, _ := v.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
	for i := range 3 {
		v.Check(ctx, "v1", wrong(st.Code, i))
	}
	st2, err := v.Start(ctx, "v2", "num.a", 10*time.Minute, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := v.Check(ctx, "v2", wrong(st2.Code, 7)); r.Status != otp.CheckDenied || r.AttemptsLeft != 1 {
		t.Errorf("a wrong code for the new one: %+v, want 1 attempt left (3 spent on the old)", r)
	}
	v.Check(ctx, "v2", wrong(st2.Code, 8)) // locked
	c.add(time.Minute)
	for _, fresh := range []bool{false, true} {
		_, err := v.Start(ctx, "v3", "num.a", 10*time.Minute, 0, fresh)
		if le := (*LockedError)(nil); !errors.As(err, &le) || le.RetryAfter != 9*time.Minute {
			t.Errorf("start (new code %v) after the lock: %v, want LockedError for 9m", fresh, err)
		}
	}
	c.add(9 * time.Minute)
	if st3, err := v.Start(ctx, "v3", "num.a", 10*time.Minute, 0, false); err != nil || st3.Resend {
		t.Errorf("start after the locked code expired: %+v %v", st3, err)
	}
}

// TestReplacedIsNotCheckable: a verification a new code replaced answers
// not_found, even when its end was never recorded.
func TestReplacedIsNotCheckable(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newVerifier(t)
	st, _ := v.Start(ctx, "v1", "num.a", 10*time.Minute, 0, false)
	before := store.m[recordKey("v1")]
	if _, err := v.Start(ctx, "v2", "num.a", 10*time.Minute, 0, true); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	e := store.m[recordKey("v1")]
	e.Value = before.Value // as if its end had been lost
	store.m[recordKey("v1")] = e
	store.mu.Unlock()
	if r, _ := v.Check(ctx, "v1", st.Code); r.Status != otp.CheckNotFound {
		t.Errorf("the replaced code: %+v, want not_found", r)
	}
}

// TestSwappedSecrets: a record's sealed code and hash are bound to its id:
// moved into another verification's record, they neither open nor check.
func TestSwappedSecrets(t *testing.T) {
	ctx := context.Background()
	v, store, _ := newVerifier(t)
	a, _ := v.Start(ctx, "va", "num.a", 10*time.Minute, 0, false)
	b, _ := v.Start(ctx, "vb", "num.b", 10*time.Minute, 0, false)
	var ra, rb record
	json.Unmarshal(store.m[recordKey("va")].Value, &ra)
	json.Unmarshal(store.m[recordKey("vb")].Value, &rb)
	rb.Sealed, rb.Hash = ra.Sealed, ra.Hash
	nb, _ := json.Marshal(rb)
	e := store.m[recordKey("vb")]
	e.Value = nb
	store.m[recordKey("vb")] = e
	if _, err := v.Start(ctx, "vb2", "num.b", 10*time.Minute, 0, false); err == nil {
		t.Error("a sealed code moved to another verification opened")
	}
	if a.Code != b.Code {
		if r, _ := v.Check(ctx, "vb", a.Code); r.Status == otp.CheckApproved {
			t.Error("a hash moved to another verification approved its code")
		}
	}
}
