// Package policy decides whether an OTP job may be sent: it keeps one
// identity per job (its id and a keyed hash of its body) to recognise
// double submits and refuse conflicting ones, tells resends apart, finds
// jobs superseded by a newer code, and enforces rate limits per number, per
// number prefix (against SMS pumping), per country and globally.
//
// State lives in a Store shared by every daemon of a cluster, updated with
// compare-and-swap, so limits hold cluster-wide. Numbers are kept only as
// keyed hashes; codes not at all (only inside the keyed body hash).
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

// stateQueuing marks a job admitted through otp.request whose publish to
// the queue is not yet confirmed: the policy's own record state, shown as
// accepted. One older than staleQueuing was left by a daemon that died
// before it could queue the job: its id may be used again.
const stateQueuing otp.State = "queuing"

// staleQueuing is how long a queuing record may wait for its publish (a
// request has 10 s in all).
const staleQueuing = 30 * time.Second

// maxConflicts is how many submissions of an id with another body are
// told id_conflict before every later submission of that id is, whatever
// its body: past it the answers no longer tell a guesser whether its body
// (and so its code) matches the job's.
const maxConflicts = 3

// Window is a sliding-window limit: at most Limit sends per Period.
type Window struct {
	Limit  int
	Period time.Duration
}

// Config holds the limits. A zero limit disables its check.
type Config struct {
	// Key keys the hashes of numbers and job bodies (at least 16 bytes).
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
		PrefixDistinct:  15,
		PrefixWindow:    5 * time.Minute,
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

// Verdict is the outcome of Admit or AdmitQueued for a job that was not
// rejected.
type Verdict struct {
	// Duplicate is true when the job's id is taken by another submission
	// of the same job: nothing new may be sent, and State is that job's
	// state. Jobs are told apart by id only, never by their code: an
	// answer that depended on a code would tell a guesser whether it is
	// the live one.
	Duplicate bool
	State     otp.State
	// Earlier is true when AdmitQueued found this very job admitted
	// before (through otp.request, or by an earlier delivery of the same
	// message): it was counted then, and may have been superseded since.
	Earlier bool
	// Ended is true when AdmitQueued found this very job ended (State):
	// the daemon that ended it died before it acknowledged the message.
	// Final is the job's final event as Finish recorded it, to be told
	// again.
	Ended bool
	Final json.RawMessage
	// Attempts is how many times a modem tried to send the job and failed
	// (Attempted), for a job admitted Earlier.
	Attempts int
	// Resend is true when the number was sent a code that is still valid.
	Resend bool
	// At is when the job was admitted.
	At time.Time
}

// records stored as JSON, with short names: there are millions of them.
type jobRecord struct {
	State  otp.State `json:"s"`
	Reason string    `json:"r,omitempty"`
	At     int64     `json:"t,omitempty"` // unix ms of admission
	// Body is a keyed hash of the job's body: the same id with another
	// body is another job (id_conflict).
	Body string `json:"b,omitempty"`
	// Seq is the stream sequence of the queued message that carries the
	// job (0 until known): another message with the same id and body is
	// a second copy, not the job.
	Seq uint64 `json:"q,omitempty"`
	// Conflicts counts submissions of the id with another body.
	Conflicts int `json:"x,omitempty"`
	// Number is the number's key, to take back its send when the job
	// ends unsent.
	Number string `json:"n,omitempty"`
	// Resend: the number had a valid code when the job was admitted.
	Resend bool `json:"v,omitempty"`
	// Attempts counts the modem's failed attempts to send the job.
	Attempts int `json:"a,omitempty"`
	// Event is the job's final event (the outbox: a daemon that dies
	// before its message is acknowledged has it told again).
	Event json.RawMessage `json:"e,omitempty"`
}

type numberRecord struct {
	Sends  []int64     `json:"s,omitempty"` // unix ms of accepted sends, ascending, at most a day old
	Codes  []codeEntry `json:"c,omitempty"` // codes still valid
	Latest string      `json:"l,omitempty"` // id of the latest accepted code job
	// Last is the id of the job admitted last, and LastAt when: a
	// submission of the same id in the moment before its job record is
	// written is that job's duplicate, not a new send (errSameJob).
	Last   string `json:"j,omitempty"`
	LastAt int64  `json:"k,omitempty"`
}

// errSameJob is admitNumber's answer to a job whose id was admitted for
// the number a moment ago by another submission still recording it.
var errSameJob = errors.New("the job is being admitted by another submission")

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

// counterRecord counts sends in a sliding window cut into counterSlots
// slots: B[i] is the count of slot First+i (slot k spans unix ms
// [k*len, (k+1)*len)). A send is admitted when the slots it could share a
// window with (the current one and the counterSlots before it) hold no
// more than the limit with it: no window of the limit's length, wherever
// it starts, holds more (at most one slot's worth fewer at its edge).
type counterRecord struct {
	First int64 `json:"f"`
	B     []int `json:"b"`
}

// counterSlots is how many slots a counter's window is cut into.
const counterSlots = 60

// advance makes r cover the slots cur-counterSlots..cur, dropping older
// ones and adding empty ones up to cur.
func (r *counterRecord) advance(cur int64) {
	lo := cur - counterSlots
	if len(r.B) == 0 || r.First+int64(len(r.B)) <= lo || r.First > cur {
		r.First, r.B = lo, nil
	}
	if r.First < lo {
		r.B = r.B[lo-r.First:]
		r.First = lo
	}
	for r.First+int64(len(r.B)) <= cur {
		r.B = append(r.B, 0)
	}
}

func (r *counterRecord) sum() int {
	n := 0
	for _, c := range r.B {
		n += c
	}
	return n
}

// hash returns a keyed hash of s, n bytes as hex.
func (p *Policy) hash(s string, n int) string {
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:n])
}

// bodyHash returns a keyed hash of what makes j the job it is: its number,
// code or text, ttl as given, template, locale, origin and app hash.
func (p *Policy) bodyHash(j otp.Prepared) string {
	b, _ := json.Marshal([]any{j.Number.E164, j.Code, j.Text, int64(j.Job.TTL), j.Template, j.Locale, j.Origin, j.AppHash})
	return p.hash("body:"+string(b), 16)
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

// Admit decides whether job j, about to be queued through otp.request,
// may be sent, and records it: the caller queues it, then calls Queued, or
// Withdraw when it could not. It returns a *otp.RejectError (rate_limited,
// prefix_blocked, id_conflict) when it may not be sent, and a Verdict with
// Duplicate set when its id was submitted before with the same body.
//
// Rate limits are checked before the job is recorded: a rejected job
// leaves no record, and its id may be used again.
func (p *Policy) Admit(ctx context.Context, j otp.Prepared) (Verdict, error) {
	return p.admitJob(ctx, j, 0)
}

// AdmitQueued is Admit for job j taken from the queue, carried by the
// message at stream sequence seq. The job is sent when the Verdict is not
// Duplicate: admitted now, or Earlier (by otp.request, or by an earlier
// delivery of this message).
func (p *Policy) AdmitQueued(ctx context.Context, j otp.Prepared, seq uint64) (Verdict, error) {
	return p.admitJob(ctx, j, seq)
}

// admitJob is Admit (seq 0) and AdmitQueued.
func (p *Policy) admitJob(ctx context.Context, j otp.Prepared, seq uint64) (Verdict, error) {
	key, body := jobKey(j.ID), p.bodyHash(j)
	for attempt := range 10 {
		now := p.now()
		e, err := p.store.Get(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Verdict{}, fmt.Errorf("read job: %w", err)
		}
		if e.Rev != 0 {
			var rec jobRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return Verdict{}, fmt.Errorf("decode job: %w", err)
			}
			v, decided, err := p.known(ctx, key, e.Rev, rec, body, seq, now)
			if errors.Is(err, ErrConflict) {
				continue // the record changed meanwhile: read again
			}
			if decided {
				return v, err
			}
		}
		v, err := p.admit(ctx, j, now)
		if errors.Is(err, errSameJob) {
			// Its job record follows in a moment: judge against it.
			time.Sleep(time.Duration(attempt+1) * 2 * time.Millisecond)
			continue
		}
		if err != nil {
			return v, err
		}
		state := otp.StateAccepted
		if seq == 0 {
			state = stateQueuing
		}
		b, _ := json.Marshal(jobRecord{State: state, At: now.UnixMilli(), Body: body, Seq: seq,
			Number: p.numberKey(j.Number.E164), Resend: v.Resend})
		if e.Rev == 0 {
			_, err = p.store.Create(ctx, key, b)
		} else {
			_, err = p.store.Update(ctx, key, b, e.Rev)
		}
		if err == nil {
			v.At = now
			return v, nil
		}
		// Take the admission back: the job is not recorded.
		p.undoNumber(ctx, p.numberKey(j.Number.E164), j.ID, now, sends(j))
		if !errors.Is(err, ErrExists) && !errors.Is(err, ErrConflict) {
			return Verdict{}, fmt.Errorf("record job: %w", err)
		}
		// Another submission of the id was recorded first: judge against
		// it.
	}
	return Verdict{}, fmt.Errorf("record job %s: too much contention", j.ID)
}

// known judges a job whose id has a record (rec at revision rev). decided
// is false when the id is free again (a stale queuing record), and the
// caller admits the job as new over that revision. ErrConflict means the
// record changed while known wrote it.
func (p *Policy) known(ctx context.Context, key string, rev uint64, rec jobRecord, body string, seq uint64, now time.Time) (v Verdict, decided bool, err error) {
	// The message that holds the job is the job, whatever was submitted
	// under its id since: the lock below answers new submissions only.
	holder := seq != 0 && rec.Body == body && (rec.Seq == seq || rec.Seq == 0) &&
		(rec.State == otp.StateAccepted || rec.State == stateQueuing)
	if rec.Conflicts >= maxConflicts && !holder {
		return Verdict{}, true, idConflict("the id is locked after repeated submissions with another body")
	}
	if rec.Body != body {
		rec.Conflicts++
		b, _ := json.Marshal(rec)
		if _, err := p.store.Update(ctx, key, b, rev); err != nil {
			return Verdict{}, true, err
		}
		return Verdict{}, true, idConflict("the id was used for another job")
	}
	open := rec.State == otp.StateAccepted || rec.State == stateQueuing
	switch {
	case seq == 0 && rec.State == stateQueuing && now.UnixMilli()-rec.At > staleQueuing.Milliseconds():
		// Left by a daemon that died between admission and queueing.
		return Verdict{}, false, nil
	case seq != 0 && rec.Seq == seq && !open:
		// The message that held the job, which ended: its daemon died
		// before acknowledging it.
		return Verdict{Ended: true, State: rec.State, Final: rec.Event}, true, nil
	case seq == 0 || !open:
		return Verdict{Duplicate: true, State: shown(rec.State)}, true, nil
	case rec.Seq == seq:
		// A redelivery of the message that holds the job.
		return Verdict{Earlier: true, At: time.UnixMilli(rec.At), Attempts: rec.Attempts, Resend: rec.Resend}, true, nil
	case rec.Seq != 0:
		// Another copy of a job that is queued already.
		return Verdict{Duplicate: true, State: otp.StateAccepted}, true, nil
	}
	// The message otp.request queued (or a copy that came first): it
	// holds the job from now on.
	rec.State, rec.Seq = otp.StateAccepted, seq
	b, _ := json.Marshal(rec)
	if _, err := p.store.Update(ctx, key, b, rev); err != nil {
		return Verdict{}, true, err
	}
	return Verdict{Earlier: true, At: time.UnixMilli(rec.At), Attempts: rec.Attempts, Resend: rec.Resend}, true, nil
}

// shown is the state a job's record shows in replies and events.
func shown(s otp.State) otp.State {
	if s == stateQueuing {
		return otp.StateAccepted
	}
	return s
}

func idConflict(detail string) *otp.RejectError {
	return &otp.RejectError{Reason: otp.ReasonIDConflict, Field: "id", Detail: detail}
}

// Queued records that job j, admitted by Admit, is in the queue at stream
// sequence seq.
func (p *Policy) Queued(ctx context.Context, j otp.Prepared, seq uint64) error {
	body := p.bodyHash(j)
	return p.update(ctx, jobKey(j.ID), func(cur []byte) ([]byte, error) {
		var rec jobRecord
		if cur == nil || json.Unmarshal(cur, &rec) != nil || rec.Body != body || rec.State != stateQueuing {
			return nil, nil // a worker took it over already
		}
		rec.State, rec.Seq = otp.StateAccepted, seq
		return json.Marshal(rec)
	})
}

// Withdraw takes back the admission of j when it could not be queued: its
// record is deleted, so its id may be used again, and its send no longer
// counts against its number. (Prefix, country and global counts keep it:
// they are coarse.)
func (p *Policy) Withdraw(ctx context.Context, j otp.Prepared) error {
	e, err := p.store.Get(ctx, jobKey(j.ID))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	var rec jobRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return fmt.Errorf("decode job: %w", err)
	}
	if rec.State != stateQueuing || rec.Body != p.bodyHash(j) {
		return nil
	}
	if err := p.store.Delete(ctx, jobKey(j.ID), e.Rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // a worker holds it: it is queued after all
		}
		return fmt.Errorf("delete job: %w", err)
	}
	p.undoNumber(ctx, p.numberKey(j.Number.E164), j.ID, time.UnixMilli(rec.At), sends(j))
	return nil
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
		if rec.Last == j.ID && nowMs-rec.LastAt < staleQueuing.Milliseconds() {
			return nil, errSameJob
		}
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
		rec.Last, rec.LastAt = j.ID, nowMs
		if j.Code != "" {
			rec.Codes = append(rec.Codes, codeEntry{ID: j.ID, At: nowMs, Exp: nowMs + j.TTL.Milliseconds()})
			rec.Latest = j.ID
		}
		return json.Marshal(rec)
	})
	return v, err
}

// prune drops sends older than a day and codes that expired more than a
// day after they were accepted. Codes tell whether a job is a resend (the
// number has a valid code) and which job is the number's newest
// (supersede); only a valid one matters to either.
func (r *numberRecord) prune(nowMs int64) {
	day := (24 * time.Hour).Milliseconds()
	i, _ := slices.BinarySearch(r.Sends, nowMs-day+1)
	r.Sends = r.Sends[i:]
	r.Codes = slices.DeleteFunc(r.Codes, func(c codeEntry) bool {
		return c.Exp <= nowMs && nowMs-c.At > day
	})
	// Keep the record small: 32 codes outlive any burst the number's own
	// limits let through within a code's longest life.
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
		if rec.Last == id {
			rec.Last, rec.LastAt = "", 0
		}
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
	slot := window.Milliseconds() / counterSlots
	cur := now.UnixMilli() / slot
	return p.update(ctx, key, func(b []byte) ([]byte, error) {
		var rec counterRecord
		if b != nil {
			if err := json.Unmarshal(b, &rec); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		rec.advance(cur)
		total := rec.sum()
		if total+n > limit {
			// Room comes when enough of the oldest slots leave.
			need, wait := total+n-limit, window
			for i, c := range rec.B {
				if need -= c; need <= 0 {
					wait = time.Duration((rec.First+int64(i)+counterSlots+1)*slot-now.UnixMilli()) * time.Millisecond
					break
				}
			}
			re := rejectErr(otp.ReasonRateLimited, scope, wait, fmt.Sprintf("%d sends per %s", limit, window))
			if total >= limit {
				re = p.block(key, re, now)
			}
			return nil, re
		}
		rec.B[len(rec.B)-1] += n
		return json.Marshal(rec)
	})
}

// uncount takes n back from a counter that count added them to.
func (p *Policy) uncount(ctx context.Context, key string, window time.Duration, now time.Time, n int) {
	slot := window.Milliseconds() / counterSlots
	at := now.UnixMilli() / slot
	_ = p.update(ctx, key, func(b []byte) ([]byte, error) {
		var rec counterRecord
		if b == nil || json.Unmarshal(b, &rec) != nil {
			return nil, nil
		}
		i := at - rec.First
		if i < 0 || i >= int64(len(rec.B)) || rec.B[i] == 0 {
			return nil, nil
		}
		rec.B[i] = max(rec.B[i]-n, 0)
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

// State returns the recorded state of job id ("" when unknown).
func (p *Policy) State(ctx context.Context, id string) (otp.State, error) {
	e, err := p.store.Get(ctx, jobKey(id))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read job: %w", err)
	}
	var rec jobRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return "", fmt.Errorf("decode job: %w", err)
	}
	return shown(rec.State), nil
}

// ErrOtherJob is Finish's answer to a message that does not hold the job
// its id names: a copy, or another job under the same id. Its end is not
// that job's: nothing is recorded, and no event should tell of it.
var ErrOtherJob = errors.New("the id is held by another message")

// EndedError is Finish's answer to the message that holds a job which
// ended already (its daemon died before acknowledging the message): the
// job keeps its end, and Final, its final event, is to be told again.
type EndedError struct {
	State otp.State
	Final json.RawMessage
}

func (e *EndedError) Error() string { return "the job ended already (" + string(e.State) + ")" }

// Finish records the final state of job j (ev.Type, ev.Reason) and its
// final event ev, so that a later submission of its id learns its fate,
// and a redelivery of its message after a crash tells ev again. Only the queued message that holds the job (at
// stream sequence seq) can end it: the one recorded, or, before any was,
// one with the job's body. seq 0 means the caller knows it holds the job
// (a delivery report for its SMS; j needs only its ID then). For any other
// message Finish returns ErrOtherJob; for the message of a job that ended
// already, an *EndedError. A job that was never admitted has no
// record and gets none. A job that ended without its SMS going out
// (expired, superseded, failed other than unknown_outcome) no longer
// counts against its number, nor as its number's live code.
func (p *Policy) Finish(ctx context.Context, j otp.Prepared, seq uint64, ev otp.Event) error {
	id, state, reason := j.ID, ev.Type, string(ev.Reason)
	final, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	var body string
	if seq != 0 {
		body = p.bodyHash(j)
	}
	var admitted jobRecord
	err = p.update(ctx, jobKey(id), func(cur []byte) ([]byte, error) {
		admitted = jobRecord{}
		var rec jobRecord
		if cur == nil {
			return nil, nil
		}
		if err := json.Unmarshal(cur, &rec); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		if seq != 0 && rec.Seq != seq && (rec.Seq != 0 || rec.Body != body) {
			return nil, ErrOtherJob
		}
		if seq != 0 && rec.State != otp.StateAccepted && rec.State != stateQueuing {
			return nil, &EndedError{State: rec.State, Final: rec.Event}
		}
		admitted = rec
		rec.State, rec.Reason, rec.Event = state, reason, final
		return json.Marshal(rec)
	})
	if err != nil || admitted.At == 0 {
		return err
	}
	if unsent(state, reason) && admitted.Number != "" {
		p.undoNumber(ctx, admitted.Number, id, time.UnixMilli(admitted.At), sends(j))
	}
	return nil
}

// Attempted records a failed attempt of a modem to send job j, carried by
// the message at stream sequence seq, and returns how many there were.
// Only attempts count toward a job's limit: a redelivery (a daemon that
// died, a job handed back, a store away) is not one. For a job that
// ended meanwhile (another daemon held the same message) it returns an
// *EndedError.
func (p *Policy) Attempted(ctx context.Context, j otp.Prepared, seq uint64) (int, error) {
	n := 0
	err := p.update(ctx, jobKey(j.ID), func(cur []byte) ([]byte, error) {
		var rec jobRecord
		if cur == nil {
			return nil, ErrOtherJob
		}
		if err := json.Unmarshal(cur, &rec); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		if rec.Seq != seq {
			return nil, ErrOtherJob
		}
		if rec.State != otp.StateAccepted && rec.State != stateQueuing {
			// Another holder of the message ended the job meanwhile.
			return nil, &EndedError{State: rec.State, Final: rec.Event}
		}
		rec.Attempts++
		n = rec.Attempts
		return json.Marshal(rec)
	})
	return n, err
}

// FinalEvent returns the final event recorded for job id (nil while the
// job has none: unknown, or not ended).
func (p *Policy) FinalEvent(ctx context.Context, id string) (json.RawMessage, error) {
	e, err := p.store.Get(ctx, jobKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read job: %w", err)
	}
	var rec jobRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	return rec.Event, nil
}

// unsent reports whether a job that ended in state for reason surely sent
// nothing.
func unsent(state otp.State, reason string) bool {
	switch state {
	case otp.StateExpired, otp.StateSuperseded:
		return true
	case otp.StateFailed:
		return reason != string(otp.ReasonUnknownOutcome)
	}
	return false
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
