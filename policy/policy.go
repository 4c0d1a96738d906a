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
	"encoding/json"
	"errors"
	"fmt"
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

	macs      *macs
	decisions sync.Pool // of *decision
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
	p := &Policy{cfg: cfg, store: store, now: time.Now, blocked: map[string]blockEntry{}, macs: newMACs(cfg.Key)}
	p.decisions.New = func() any { return &decision{mac: p.macs.new()} }
	return p, nil
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
	// rev is the revision of the job's record as Admit wrote it (Queued).
	rev uint64
}

// jobRecord is what the policy knows of a job id (record.go stores it).
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

// numberRecord is what the policy knows of a number.
type numberRecord struct {
	Sends []int64 // unix ms of accepted sends, ascending, at most a day old
	// Codes are the code jobs accepted, oldest first: the last is the
	// number's newest code.
	Codes []codeEntry
	// Last is the job admitted last (its idTag), and LastAt when: a
	// submission of the same id in the moment before its job record is
	// written is that job's duplicate, not a new send (errSameJob).
	Last   uint64
	LastAt int64
}

// errInFlight is known's answer to a submission of a job that another
// submission is admitting or queueing right now (see ErrInFlight).
var errInFlight = errors.New("the job is being admitted by another submission")

// errSameJob is admitNumber's answer to a job whose id was admitted for
// the number a moment ago by another submission still recording it.
var errSameJob = errors.New("the job is being admitted by another submission")

// codeEntry is a code job accepted for a number. The code itself is not
// kept, not even hashed.
type codeEntry struct {
	ID  string
	At  int64 // unix ms
	Exp int64 // unix ms
}

// prefixRecord holds the distinct numbers sent to in one block of numbers
// (a prefix) within the prefix window, and when the block is blocked
// until.
type prefixRecord struct {
	Blocked int64 // unix ms
	Nums    []prefixNumber
}

// prefixNumber is a number of a prefix, by a short keyed hash, and its
// last send.
type prefixNumber struct {
	Tag [6]byte
	At  int64 // unix ms
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
		b := rec.marshal(nil)
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
	case seq == 0 && rec.State == stateQueuing:
		// Being admitted: its decision may yet be taken back, or its
		// publish fail. Its outcome is the answer.
		return Verdict{}, true, errInFlight
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
	b := rec.marshal(nil)
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
	if err := rec.unmarshal(e.Value); err != nil {
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
		if err := rec.unmarshal(cur); err != nil {
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
		return rec.marshal(nil), nil
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
		if err := rec.unmarshal(cur); err != nil {
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
		return rec.marshal(nil), nil
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
	if err := rec.unmarshal(e.Value); err != nil {
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
	e, err := p.store.Get(ctx, p.NumberKey(j.Number.E164))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read number: %w", err)
	}
	var rec numberRecord
	if err := rec.unmarshal(e.Value); err != nil {
		return "", fmt.Errorf("decode number: %w", err)
	}
	if n := len(rec.Codes); n > 0 && rec.Codes[n-1].ID != j.ID {
		return rec.Codes[n-1].ID, nil
	}
	return "", nil
}
