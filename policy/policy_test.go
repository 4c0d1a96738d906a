package policy

import (
	"context"
	"fmt"
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

func newPolicy(t *testing.T, cfg Config) (*Policy, *clock, *MemoryStore) {
	t.Helper()
	cfg.Key = testKey
	store := NewMemoryStore(Retention)
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
	if v, err := p.Admit(ctx, j); err != nil || v.Duplicate {
		t.Fatalf("first: %+v %v", v, err)
	}
	v, err := p.Admit(ctx, j)
	if err != nil || !v.Duplicate || v.State != otp.StateAccepted {
		t.Fatalf("again: %+v %v", v, err)
	}
	p.Finish(ctx, "a", otp.StateSent, "")
	if v, _ := p.Admit(ctx, j); v.State != otp.StateSent {
		t.Errorf("after sent: %+v", v)
	}
	// A job whose queueing failed may be tried again under its id.
	u := job("u", "+4526227999", "123456")
	p.Admit(ctx, u)
	if err := p.Withdraw(ctx, u); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Admit(ctx, u); err != nil || v.Duplicate {
		t.Errorf("retry of an unqueued job: %+v %v", v, err)
	}
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
	for k, e := range store.m {
		if strings.Contains(string(e.value), "123456") || strings.Contains(string(e.value), `"h"`) {
			t.Errorf("store entry %s keeps the code or a hash of it: %s", k, e.value)
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
	if s, _ := p.State(ctx, "j1"); s != otp.StateRejected {
		t.Errorf("state of a rejected job = %q", s)
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
	_, err := p.Admit(ctx, job("dk3", "+4550505050", "1234"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeCountry, 30*time.Minute)
	// SE has no limit; the global one bites on the fourth send.
	if _, err := p.Admit(ctx, job("se1", "+46701234567", "1234")); err != nil {
		t.Fatal(err)
	}
	_, err = p.Admit(ctx, job("se2", "+46701234568", "1234"))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeGlobal, time.Minute)
	// The rejected send did not use up se2's number: a minute later it
	// goes, with no cooldown in the way.
	c.add(time.Minute)
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
	if len(store.m) < 3 { // job, number, prefix at least
		t.Fatalf("%d store entries", len(store.m))
	}
	for k, e := range store.m {
		for _, secret := range []string{"26227921", "034812", "2622790"} {
			if contains(k, secret) || contains(string(e.value), secret) {
				t.Errorf("store entry %s=%s reveals %s", k, e.value, secret)
			}
		}
	}
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
