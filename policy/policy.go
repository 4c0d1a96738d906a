// Package policy decides whether an OTP job may be sent: it remembers job
// ids and codes to suppress duplicates, tells resends apart, finds jobs
// superseded by a newer code, and enforces rate limits per number, per
// number prefix (against SMS pumping), per country and globally.
//
// State lives in a Store shared by every daemon of a cluster, updated with
// compare-and-swap, so limits hold cluster-wide. Numbers and codes are kept
// only as keyed hashes.
package policy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/simgate/simgate/otp"
)

// stateUnqueued marks a job admitted but not queued (the queue failed):
// the policy's own record state, never shown. An unqueued or rejected job
// id may be tried again as new.
const stateUnqueued otp.State = "unqueued"

// Window is a sliding-window limit: at most Limit sends per Period.
type Window struct {
	Limit  int
	Period time.Duration
}

// Config holds the limits. A zero limit disables its check.
type Config struct {
	// Key keys the hashes of numbers and codes (at least 16 bytes).
	Key []byte
	// Cooldown is the least time between two sends to one number.
	Cooldown time.Duration
	// Number are the per-number sliding windows (5/10m, 10/h, 20/day).
	Number []Window
	// DuplicateWindow is ignored: double submits are recognised by job id
	// only. (Recognising the same code under another id answered whether
	// a guessed code was the live one.) Kept so that configurations load.
	DuplicateWindow time.Duration
	// PrefixDigits is how many trailing digits are dropped from an E.164
	// number to form its prefix (3: blocks of 1000 numbers).
	PrefixDigits int
	// PrefixDistinct caps the distinct numbers of one prefix within
	// PrefixWindow; reaching it blocks the prefix for PrefixBlock.
	PrefixDistinct int
	PrefixWindow   time.Duration
	PrefixBlock    time.Duration
	// CountryPerHour caps sends per region and hour; Countries overrides it
	// per ISO region.
	CountryPerHour int
	Countries      map[string]int
	// GlobalPerMinute caps all sends per minute.
	GlobalPerMinute int
}

// DefaultConfig returns the default limits, without a key.
func DefaultConfig() Config {
	return Config{
		Cooldown:        time.Minute,
		Number:          []Window{{5, 10 * time.Minute}, {10, time.Hour}, {20, 24 * time.Hour}},
		DuplicateWindow: 10 * time.Minute,
		PrefixDigits:    3,
		PrefixDistinct:  10,
		PrefixWindow:    time.Hour,
		PrefixBlock:     time.Hour,
		CountryPerHour:  1000,
		GlobalPerMinute: 600,
	}
}

// Retention is how long the store must keep an entry after its last write.
const Retention = 25 * time.Hour

// Validate lists the problems of c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Key) < 16 {
		errs = append(errs, errors.New("hash key shorter than 16 bytes"))
	}
	for _, w := range c.Number {
		if w.Limit < 1 || w.Period <= 0 || w.Period > 24*time.Hour {
			errs = append(errs, fmt.Errorf("number window %d/%s: want a positive limit and a period up to 24h", w.Limit, w.Period))
		}
	}
	if c.Cooldown < 0 || c.Cooldown > 24*time.Hour || c.DuplicateWindow < 0 || c.DuplicateWindow > 24*time.Hour {
		errs = append(errs, errors.New("cooldown and duplicate window must be between 0 and 24h"))
	}
	if c.PrefixDistinct > 0 && (c.PrefixDigits < 1 || c.PrefixDigits > 6 || c.PrefixWindow <= 0 || c.PrefixWindow > 24*time.Hour || c.PrefixBlock <= 0 || c.PrefixBlock > 24*time.Hour) {
		errs = append(errs, errors.New("prefix limit: want 1-6 prefix digits, a window and a block time up to 24h"))
	}
	if c.CountryPerHour < 0 || c.GlobalPerMinute < 0 || c.PrefixDistinct < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	for r, n := range c.Countries {
		if len(r) != 2 || n < 0 {
			errs = append(errs, fmt.Errorf("country limit %q: %d", r, n))
		}
	}
	return errors.Join(errs...)
}

// Policy applies a Config over a Store. It is safe for concurrent use.
type Policy struct {
	cfg   Config
	store Store
	now   func() time.Time

	// blocked caches rejections that cannot become wrong before their
	// time (the counts behind them only grow): the fast path that spares
	// the store a round trip under a flood.
	mu      sync.Mutex
	blocked map[string]blockEntry
}

type blockEntry struct {
	until  time.Time
	reason otp.Reason
	scope  otp.Scope
	detail string
}

// New returns a Policy.
func New(cfg Config, store Store) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: cfg, store: store, now: time.Now, blocked: map[string]blockEntry{}}, nil
}

// SetClock replaces time.Now (tests).
func (p *Policy) SetClock(now func() time.Time) { p.now = now }

// Verdict is the outcome of Admit for a job that was not rejected.
type Verdict struct {
	// Duplicate is true when the job id was seen before: nothing new may
	// be sent, and State is the job's current state. Jobs are told apart
	// by id only, never by their code: an answer that depended on a code
	// would tell a guesser whether it is the live one.
	Duplicate bool
	State     otp.State
	// Resend is true when the number was sent a code that is still valid.
	Resend bool
}

// records stored as JSON, with short names: there are millions of them.
type jobRecord struct {
	State  otp.State `json:"s"`
	Reason string    `json:"r,omitempty"`
	At     int64     `json:"t,omitempty"` // unix ms of admission
}

type numberRecord struct {
	Sends  []int64     `json:"s,omitempty"` // unix ms of accepted sends, ascending, at most a day old
	Codes  []codeEntry `json:"c,omitempty"` // codes still valid
	Latest string      `json:"l,omitempty"` // id of the latest accepted code job
}

// codeEntry is a code job accepted for a number. The code itself is not
// kept, not even hashed.
type codeEntry struct {
	ID  string `json:"i"`
	At  int64  `json:"t"` // unix ms
	Exp int64  `json:"e"` // unix ms
}

type prefixRecord struct {
	Blocked int64            `json:"b,omitempty"` // unix ms
	Nums    map[string]int64 `json:"n,omitempty"` // short number hash -> last send, unix ms
}

type counterRecord struct {
	Start int64 `json:"w"` // unix ms of the window start
	N     int   `json:"n"`
}

// hash returns a keyed hash of s, n bytes as hex.
func (p *Policy) hash(s string, n int) string {
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:n])
}

func jobKey(id string) string                    { return "job." + id }
func (p *Policy) numberKey(e164 string) string   { return "num." + p.hash(e164, 16) }
func (p *Policy) prefixKey(prefix string) string { return "pfx." + p.hash("prefix:"+prefix, 16) }
func countryKey(region string) string            { return "cty." + region }

const globalKey = "global"

// prefix returns the E.164 number without its last PrefixDigits digits.
func (p *Policy) prefix(e164 string) string {
	return e164[:max(len(e164)-p.cfg.PrefixDigits, 2)]
}

func rejectErr(reason otp.Reason, scope otp.Scope, retry time.Duration, detail string) *otp.RejectError {
	return &otp.RejectError{Reason: reason, Field: "to", Scope: scope, Detail: detail, RetryAfter: ceilSecond(retry)}
}

// ceilSecond rounds d up to whole seconds, at least 1 s: retry_after is an
// instruction to wait.
func ceilSecond(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// Admit decides whether job j may be sent now and records it. It returns
// a *otp.RejectError (rate_limited, prefix_blocked) when it may not, and a
// Verdict with Duplicate set when nothing new may be sent.
func (p *Policy) Admit(ctx context.Context, j otp.Prepared) (Verdict, error) {
	now := p.now()
	b, _ := json.Marshal(jobRecord{State: otp.StateAccepted, At: now.UnixMilli()})
	if _, err := p.store.Create(ctx, jobKey(j.ID), b); err != nil {
		if !errors.Is(err, ErrExists) {
			return Verdict{}, fmt.Errorf("record job: %w", err)
		}
		e, err := p.store.Get(ctx, jobKey(j.ID))
		if err != nil {
			return Verdict{}, fmt.Errorf("read job: %w", err)
		}
		var rec jobRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return Verdict{}, fmt.Errorf("decode job: %w", err)
		}
		if rec.State != stateUnqueued && rec.State != otp.StateRejected {
			return Verdict{Duplicate: true, State: rec.State}, nil
		}
		// A try that was refused or never reached the queue: the same id
		// may try again (after retry_after).
		if _, err := p.store.Update(ctx, jobKey(j.ID), b, e.Rev); err != nil {
			return Verdict{}, fmt.Errorf("record job: %w", err)
		}
	}
	v, err := p.admit(ctx, j, now)
	switch re, ok := otp.AsReject(err); {
	case ok:
		p.Finish(ctx, j.ID, otp.StateRejected, string(re.Reason))
	case err != nil:
		// The store failed: forget the job so a retry is not taken for a
		// duplicate.
		p.Finish(ctx, j.ID, otp.StateRejected, "store_error")
	}
	return v, err
}

// Withdraw takes back the admission of j when it could not be queued: its
// send no longer counts against its number, and its id may be used again.
// (Prefix, country and global counts keep it: they are coarse.)
func (p *Policy) Withdraw(ctx context.Context, j otp.Prepared) error {
	rec, err := p.job(ctx, j.ID)
	if err != nil {
		return err
	}
	if rec.State != otp.StateAccepted {
		return nil
	}
	p.undoNumber(ctx, p.numberKey(j.Number.E164), j.ID, time.UnixMilli(rec.At), sends(j))
	return p.Finish(ctx, j.ID, stateUnqueued, "")
}

func (p *Policy) admit(ctx context.Context, j otp.Prepared, now time.Time) (Verdict, error) {
	numKey := p.numberKey(j.Number.E164)
	pfx := p.prefix(j.Number.E164)
	pfxKey := p.prefixKey(pfx)
	ctyKey := countryKey(j.Number.Region)
	for _, k := range []string{pfxKey, ctyKey, globalKey} {
		if err := p.cachedBlock(k, now); err != nil {
			return Verdict{}, err
		}
	}
	v, err := p.admitNumber(ctx, numKey, j, now)
	if err != nil {
		return v, err
	}
	undo := []func(){func() { p.undoNumber(ctx, numKey, j.ID, now, sends(j)) }}
	rollback := func() {
		for _, f := range slices.Backward(undo) {
			f()
		}
	}
	if p.cfg.PrefixDistinct > 0 {
		added, err := p.admitPrefix(ctx, pfxKey, j.Number.E164, now)
		if err != nil {
			rollback()
			return Verdict{}, err
		}
		if added {
			undo = append(undo, func() { p.undoPrefix(ctx, pfxKey, j.Number.E164) })
		}
	}
	limit := p.cfg.CountryPerHour
	if n, ok := p.cfg.Countries[j.Number.Region]; ok {
		limit = n
	}
	if limit > 0 {
		if err := p.count(ctx, ctyKey, otp.ScopeCountry, limit, time.Hour, now, sends(j)); err != nil {
			rollback()
			return Verdict{}, err
		}
		undo = append(undo, func() { p.uncount(ctx, ctyKey, time.Hour, now, sends(j)) })
	}
	if p.cfg.GlobalPerMinute > 0 {
		if err := p.count(ctx, globalKey, otp.ScopeGlobal, p.cfg.GlobalPerMinute, time.Minute, now, sends(j)); err != nil {
			rollback()
			return Verdict{}, err
		}
	}
	return v, nil
}

// update runs a compare-and-swap loop on key: f gets the current value (nil
// when absent) and returns the new one (nil leaves the key alone) and an
// error. A new value is written even with an error: a rejection may need to
// record a block. update returns f's error once the write is done.
func (p *Policy) update(ctx context.Context, key string, f func(cur []byte) ([]byte, error)) error {
	for range 100 {
		e, err := p.store.Get(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read %s: %w", key, err)
		}
		next, ferr := f(e.Value)
		if next == nil {
			return ferr
		}
		if e.Rev == 0 {
			_, err = p.store.Create(ctx, key, next)
		} else {
			_, err = p.store.Update(ctx, key, next, e.Rev)
		}
		if errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) {
			continue // another daemon was faster: read again
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		return ferr
	}
	return fmt.Errorf("write %s: too much contention", key)
}

// sends is how many sends job j counts for: one per SMS part (at least
// one), so that a long message costs what it costs.
func sends(j otp.Prepared) int { return max(j.Parts, 1) }

// admitNumber checks the cooldown (per job) and the windows (per SMS part)
// of j's number, and records j's parts as sends.
func (p *Policy) admitNumber(ctx context.Context, key string, j otp.Prepared, now time.Time) (Verdict, error) {
	var v Verdict
	nowMs := now.UnixMilli()
	n := sends(j)
	err := p.update(ctx, key, func(cur []byte) ([]byte, error) {
		v = Verdict{}
		var rec numberRecord
		if cur != nil {
			if err := json.Unmarshal(cur, &rec); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		rec.prune(nowMs)
		for _, c := range rec.Codes {
			if c.Exp > nowMs {
				v.Resend = true
			}
		}
		if n := len(rec.Sends); n > 0 && p.cfg.Cooldown > 0 {
			if wait := rec.Sends[n-1] + p.cfg.Cooldown.Milliseconds() - nowMs; wait > 0 {
				return nil, rejectErr(otp.ReasonRateLimited, otp.ScopeNumber, time.Duration(wait)*time.Millisecond, "one send per "+p.cfg.Cooldown.String())
			}
		}
		for _, w := range p.cfg.Number {
			if n > w.Limit {
				return nil, tooManyParts(otp.ScopeNumber, n, w.Limit, w.Period)
			}
			since := nowMs - w.Period.Milliseconds()
			i, _ := slices.BinarySearch(rec.Sends, since+1)
			if in := rec.Sends[i:]; len(in)+n > w.Limit {
				// Wait until enough of the oldest sends that count left
				// the window to make room for n.
				oldest := in[len(in)+n-1-w.Limit]
				wait := time.Duration(oldest-since) * time.Millisecond
				return nil, rejectErr(otp.ReasonRateLimited, otp.ScopeNumber, wait, fmt.Sprintf("%d sends per %s", w.Limit, w.Period))
			}
		}
		for range n {
			rec.Sends = append(rec.Sends, nowMs)
		}
		if j.Code != "" {
			rec.Codes = append(rec.Codes, codeEntry{ID: j.ID, At: nowMs, Exp: nowMs + j.TTL.Milliseconds()})
			rec.Latest = j.ID
		}
		return json.Marshal(rec)
	})
	return v, err
}

// prune drops sends older than a day and codes that expired and left the
// duplicate window.
func (r *numberRecord) prune(nowMs int64) {
	day := (24 * time.Hour).Milliseconds()
	i, _ := slices.BinarySearch(r.Sends, nowMs-day+1)
	r.Sends = r.Sends[i:]
	r.Codes = slices.DeleteFunc(r.Codes, func(c codeEntry) bool {
		return c.Exp <= nowMs && nowMs-c.At > day
	})
	// Keep the record small: codes older than the longest life matter only
	// for duplicate suppression, which is bounded by a day.
	if len(r.Codes) > 32 {
		r.Codes = r.Codes[len(r.Codes)-32:]
	}
}

// undoNumber takes back the n sends admitNumber recorded at now for job id,
// and its code.
func (p *Policy) undoNumber(ctx context.Context, key, id string, now time.Time, n int) {
	nowMs := now.UnixMilli()
	_ = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec numberRecord
		if cur == nil || json.Unmarshal(cur, &rec) != nil {
			return nil, nil
		}
		for range n {
			if i := slices.Index(rec.Sends, nowMs); i >= 0 {
				rec.Sends = slices.Delete(rec.Sends, i, i+1)
			}
		}
		rec.Codes = slices.DeleteFunc(rec.Codes, func(c codeEntry) bool { return c.ID == id })
		if rec.Latest == id {
			rec.Latest = ""
			if n := len(rec.Codes); n > 0 {
				rec.Latest = rec.Codes[n-1].ID
			}
		}
		return json.Marshal(rec)
	})
}

func (p *Policy) admitPrefix(ctx context.Context, key, e164 string, now time.Time) (added bool, err error) {
	nowMs := now.UnixMilli()
	short := p.hash(e164, 6)
	err = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		added = false
		var rec prefixRecord
		if cur != nil {
			if err := json.Unmarshal(cur, &rec); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if rec.Blocked > nowMs {
			return nil, p.block(key, rejectErr(otp.ReasonPrefixBlocked, otp.ScopePrefix, time.Duration(rec.Blocked-nowMs)*time.Millisecond, "too many distinct numbers in this number block"), now)
		}
		since := nowMs - p.cfg.PrefixWindow.Milliseconds()
		maps := rec.Nums
		if maps == nil {
			maps = map[string]int64{}
		}
		for k, t := range maps {
			if t <= since {
				delete(maps, k)
			}
		}
		if _, known := maps[short]; !known {
			if len(maps) >= p.cfg.PrefixDistinct {
				// Record the block, and refuse.
				rec.Blocked = nowMs + p.cfg.PrefixBlock.Milliseconds()
				rec.Nums = maps
				b, err := json.Marshal(rec)
				if err != nil {
					return nil, err
				}
				return b, p.block(key, rejectErr(otp.ReasonPrefixBlocked, otp.ScopePrefix, p.cfg.PrefixBlock, fmt.Sprintf("more than %d distinct numbers in %s", p.cfg.PrefixDistinct, p.cfg.PrefixWindow)), now)
			}
			added = true
		}
		maps[short] = nowMs
		rec.Nums = maps
		return json.Marshal(rec)
	})
	return added, err
}

func (p *Policy) undoPrefix(ctx context.Context, key, e164 string) {
	short := p.hash(e164, 6)
	_ = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec prefixRecord
		if cur == nil || json.Unmarshal(cur, &rec) != nil {
			return nil, nil
		}
		delete(rec.Nums, short)
		return json.Marshal(rec)
	})
}

// count adds n (a job's SMS parts) to a fixed-window counter unless that
// would take it past limit. Only a full counter is cached as blocked: a job
// of fewer parts may still fit in one that is not.
func (p *Policy) count(ctx context.Context, key string, scope otp.Scope, limit int, window time.Duration, now time.Time, n int) error {
	if n > limit {
		return tooManyParts(scope, n, limit, window)
	}
	start := now.Truncate(window).UnixMilli()
	return p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec counterRecord
		if cur != nil {
			if err := json.Unmarshal(cur, &rec); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if rec.Start != start {
			rec = counterRecord{Start: start}
		}
		if rec.N+n > limit {
			wait := time.Duration(start+window.Milliseconds()-now.UnixMilli()) * time.Millisecond
			re := rejectErr(otp.ReasonRateLimited, scope, wait, fmt.Sprintf("%d sends per %s", limit, window))
			if rec.N >= limit {
				re = p.block(key, re, now)
			}
			return nil, re
		}
		rec.N += n
		return json.Marshal(rec)
	})
}

// uncount takes n back from a counter that count added them to.
func (p *Policy) uncount(ctx context.Context, key string, window time.Duration, now time.Time, n int) {
	start := now.Truncate(window).UnixMilli()
	_ = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec counterRecord
		if cur == nil || json.Unmarshal(cur, &rec) != nil || rec.Start != start || rec.N == 0 {
			return nil, nil
		}
		rec.N = max(rec.N-n, 0)
		return json.Marshal(rec)
	})
}

// tooManyParts rejects a message of n SMS that a limit (scope) of limit
// sends per period can never admit: no retry_after, as waiting does not
// help.
func tooManyParts(scope otp.Scope, n, limit int, period time.Duration) *otp.RejectError {
	return &otp.RejectError{Reason: otp.ReasonRateLimited, Field: "to", Scope: scope,
		Detail: fmt.Sprintf("a message of %d SMS is more than %d sends per %s", n, limit, period)}
}

// block remembers a rejection of key until its retry time and returns it.
func (p *Policy) block(key string, re *otp.RejectError, now time.Time) *otp.RejectError {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blocked) > 100_000 {
		for k, b := range p.blocked {
			if !b.until.After(now) {
				delete(p.blocked, k)
			}
		}
	}
	p.blocked[key] = blockEntry{until: now.Add(re.RetryAfter), reason: re.Reason, scope: re.Scope, detail: re.Detail}
	return re
}

func (p *Policy) cachedBlock(key string, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.blocked[key]
	if !ok {
		return nil
	}
	if !b.until.After(now) {
		delete(p.blocked, key)
		return nil
	}
	return rejectErr(b.reason, b.scope, b.until.Sub(now), b.detail)
}

func (p *Policy) job(ctx context.Context, id string) (jobRecord, error) {
	e, err := p.store.Get(ctx, jobKey(id))
	if err != nil {
		return jobRecord{}, fmt.Errorf("read job: %w", err)
	}
	var rec jobRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return jobRecord{}, fmt.Errorf("decode job: %w", err)
	}
	return rec, nil
}

// State returns the recorded state of job id ("" when unknown).
func (p *Policy) State(ctx context.Context, id string) (otp.State, error) {
	rec, err := p.job(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return rec.State, err
}

// Finish records the final state of job id, so that a re-published job
// learns the first one's fate.
func (p *Policy) Finish(ctx context.Context, id string, state otp.State, reason string) error {
	return p.finish(ctx, id, jobRecord{State: state, Reason: reason})
}

func (p *Policy) finish(ctx context.Context, id string, rec jobRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// The record is replaced whole: one write, no read.
	if _, err := p.store.Put(ctx, jobKey(id), b); err != nil {
		return fmt.Errorf("write job: %w", err)
	}
	return nil
}

// Superseded returns the id of a newer code job accepted for j's number
// after j, or "": only the newest code is worth sending.
func (p *Policy) Superseded(ctx context.Context, j otp.Prepared) (string, error) {
	if j.Code == "" {
		return "", nil
	}
	e, err := p.store.Get(ctx, p.numberKey(j.Number.E164))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read number: %w", err)
	}
	var rec numberRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return "", fmt.Errorf("decode number: %w", err)
	}
	if rec.Latest == "" || rec.Latest == j.ID {
		return "", nil
	}
	for _, c := range rec.Codes {
		if c.ID == rec.Latest {
			return rec.Latest, nil
		}
	}
	return "", nil
}
