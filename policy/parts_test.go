package policy

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

// parts returns a job to e164 whose message takes n SMS.
func parts(id, e164 string, n int) otp.Prepared {
	j := job(id, e164, "123456")
	j.Parts = n
	return j
}

// TestPartsCountAsSends: a message of N SMS is N sends in the per-number
// windows and in the country and global counters; the cooldown stays one
// per job.
func TestPartsCountAsSends(t *testing.T) {
	const (
		dk1 = "+4526227921"
		dk2 = "+4540404040"
		dk3 = "+4550505050"
	)
	// step admits one job after a wait; reason "" wants it admitted.
	type step struct {
		wait   time.Duration
		job    otp.Prepared
		reason otp.Reason
		scope  otp.Scope
		retry  time.Duration // 0: no retry_after (waiting does not help)
	}
	window := func(cfg Config) Config {
		cfg.Cooldown = 0
		cfg.Number = []Window{{5, 10 * time.Minute}}
		return cfg
	}
	counters := func(cfg Config) Config {
		cfg.Cooldown = 0
		cfg.Number = nil
		cfg.CountryPerHour = 5
		cfg.GlobalPerMinute = 7
		return cfg
	}
	unlimitedSE := func(cfg Config) Config {
		cfg.Countries = map[string]int{"SE": 0}
		return cfg
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{name: "4 parts use 4 of a window of 5", cfg: window(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 4)},
			{wait: time.Minute, job: parts("b", dk1, 1)},
			// t=2m: 5 sends in the window; the 4 of t=0 leave at t=10m.
			{wait: time.Minute, job: parts("c", dk1, 1), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 8 * time.Minute},
			{job: parts("other", dk2, 1)},
		}},
		{name: "a message waits for room for all its parts", cfg: window(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 1)},
			{wait: time.Minute, job: parts("b", dk1, 3)},
			// t=2m: 4 sends; 2 parts need the send of t=0 gone (t=10m).
			{wait: time.Minute, job: parts("c", dk1, 2), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 8 * time.Minute},
			// 3 parts need the 3 of t=1m gone too (t=11m).
			{job: parts("d", dk1, 3), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 9 * time.Minute},
			// One part still fits, and the refused ones took nothing.
			{job: parts("e", dk1, 1)},
			{wait: 8 * time.Minute, job: parts("c", dk1, 1)},
		}},
		{name: "zero parts count as one", cfg: window(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 0)},
			{job: parts("b", dk1, 4)},
			{job: parts("c", dk1, 0), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 10 * time.Minute},
		}},
		{name: "31 parts do not pass as one", cfg: window(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 31), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber},
			{job: parts("b", dk1, 5)},
		}},
		{name: "cooldown is per job", cfg: DefaultConfig(), steps: []step{
			{job: parts("a", dk1, 3)},
			{wait: 20 * time.Second, job: parts("b", dk1, 1), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 40 * time.Second},
			{wait: 40 * time.Second, job: parts("b", dk1, 2)},
			// 5 parts in 10 minutes (default window 5/10m).
			{wait: time.Minute, job: parts("c", dk1, 1), reason: otp.ReasonRateLimited, scope: otp.ScopeNumber, retry: 8 * time.Minute},
		}},
		{name: "country counts parts", cfg: counters(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 3)},
			{job: parts("b", dk2, 3), reason: otp.ReasonRateLimited, scope: otp.ScopeCountry, retry: time.Hour + time.Minute},
			// Not full: a smaller message still fits (no cached block).
			{job: parts("c", dk2, 2)},
			{job: parts("d", dk3, 1), reason: otp.ReasonRateLimited, scope: otp.ScopeCountry, retry: time.Hour + time.Minute},
			{job: parts("e", "+46701234567", 2)},
		}},
		{name: "global counts parts", cfg: counters(DefaultConfig()), steps: []step{
			{job: parts("a", dk1, 4)},
			{job: parts("b", "+46701234567", 4), reason: otp.ReasonRateLimited, scope: otp.ScopeGlobal, retry: time.Minute + time.Second},
			// Refused by the global counter: its 4 parts were taken back
			// from the Swedish count, which holds 5.
			{job: parts("c", "+46701234568", 3)},
			{job: parts("d", "+46701234569", 1), reason: otp.ReasonRateLimited, scope: otp.ScopeGlobal, retry: time.Minute + time.Second},
			{wait: time.Minute + time.Second, job: parts("d", "+46701234569", 2)},
		}},
		{name: "a message larger than a counter", cfg: unlimitedSE(counters(DefaultConfig())), steps: []step{
			{job: parts("a", dk1, 6), reason: otp.ReasonRateLimited, scope: otp.ScopeCountry},
			{job: parts("b", "+46701234567", 8), reason: otp.ReasonRateLimited, scope: otp.ScopeGlobal},
			{job: parts("c", dk1, 5)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c, _ := newPolicy(t, tc.cfg)
			for i, s := range tc.steps {
				c.add(s.wait)
				_, err := p.Admit(context.Background(), s.job)
				if s.reason == "" {
					if err != nil {
						t.Fatalf("step %d (%s, %d parts): %v", i, s.job.ID, s.job.Parts, err)
					}
					continue
				}
				wantReject(t, err, s.reason, s.scope, s.retry)
			}
		})
	}
}

// TestWithdrawGivesBackEveryPart: a job that could not be queued takes
// back all its parts from its number's windows.
func TestWithdrawGivesBackEveryPart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cooldown = 0
	cfg.Number = []Window{{5, 10 * time.Minute}}
	p, _, _ := newPolicy(t, cfg)
	ctx := context.Background()
	a := parts("a", "+4526227921", 4)
	if _, err := p.Admit(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err := p.Admit(ctx, parts("b", "+4526227921", 2))
	wantReject(t, err, otp.ReasonRateLimited, otp.ScopeNumber, 10*time.Minute)
	if err := p.Withdraw(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Admit(ctx, parts("b", "+4526227921", 5)); err != nil {
		t.Errorf("after withdrawing 4 parts, 5 should fit: %v", err)
	}
}
