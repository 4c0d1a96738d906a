// Package verify keeps managed codes: simgate generates a verification's
// code, keeps it only sealed (to send it again) and as a keyed hash (to
// check it), and answers checks of it, so that an auth service never
// handles a code.
//
// A verification's state lives in a Store shared by every daemon of a
// cluster (the policy bucket), updated with compare-and-swap: two daemons
// answering checks of one verification never allow more wrong codes than
// the maximum between them. Its secrets live apart (Secrets), for no
// longer than the verification: they are deleted when it ends (approved,
// locked, replaced), and the store deletes them itself when its time runs
// out, whether or not anyone checks.
package verify

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// Store keeps the state of verifications: the policy's store (see
// policy.Store) does.
type Store interface {
	Get(ctx context.Context, key string) (policy.Entry, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
}

// Secrets keeps each verification's sealed code and code hash, named by
// the verification's id, until Delete or until ttl after Create, whichever
// comes first (queue.OpenSecrets: a bucket whose keys the server deletes
// at their ttl).
type Secrets interface {
	Create(ctx context.Context, id string, value []byte, ttl time.Duration) error
	// Get returns policy.ErrNotFound for an id it does not keep.
	Get(ctx context.Context, id string) ([]byte, error)
	Delete(ctx context.Context, id string) error
}

// Digits bounds.
const (
	MinDigits     = 6
	MaxDigits     = 10
	DefaultDigits = 6
)

// Defaults of Config.
const (
	// DefaultMaxChecks is how many wrong codes lock a verification.
	DefaultMaxChecks = 5
	// DefaultChecksPerMinute is how many checks a number's verifications
	// get a minute, in bursts of as many.
	DefaultChecksPerMinute = 10
)

// Config configures a Verifier.
type Config struct {
	// Key is the cluster's policy hash key, from which the keys that seal
	// and hash codes are derived (at least 16 bytes).
	Key []byte
	// MaxChecks is how many wrong codes lock a verification
	// (DefaultMaxChecks when 0).
	MaxChecks int
	// ChecksPerMinute bounds the checks of one number's verifications
	// (DefaultChecksPerMinute when 0).
	ChecksPerMinute int
}

// replaced is the end of a verification a newer code replaced: checks of
// it are not_found.
const replaced otp.CheckStatus = "replaced"

// Result is the answer to a check.
type Result struct {
	Status       otp.CheckStatus
	AttemptsLeft int
	// RetryAfter tells, for a check refused because the number's checks
	// ran out (Status rejected, reason rate_limited), when to try again.
	RetryAfter time.Duration
	// ID is the verification checked (a resend's id names the
	// verification whose code it sent).
	ID string
	// Region is the checked number's ISO region, for metrics; To the
	// number masked, for events.
	Region, To string
	// Ended is true when this check ended the verification (approved,
	// locked, expired): its event is to be told.
	Ended bool
}

// ErrDigits is the error of a number of digits out of bounds.
var ErrDigits = fmt.Errorf("digits must be %d to %d", MinDigits, MaxDigits)

// Verifier starts and checks verifications. It is safe for concurrent use.
type Verifier struct {
	store     Store
	secrets   Secrets
	aead      cipher.AEAD
	hashKey   []byte
	maxChecks int
	perMinute int
	now       func() time.Time
}

// New returns a Verifier over store and secrets.
func New(store Store, secrets Secrets, cfg Config) (*Verifier, error) {
	if len(cfg.Key) < 16 {
		return nil, errors.New("verify: hash key shorter than 16 bytes")
	}
	block, err := aes.NewCipher(derive(cfg.Key, "simgate verify seal"))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v := &Verifier{store: store, secrets: secrets, aead: aead, hashKey: derive(cfg.Key, "simgate verify hash"),
		maxChecks: cfg.MaxChecks, perMinute: cfg.ChecksPerMinute, now: time.Now}
	if v.maxChecks <= 0 {
		v.maxChecks = DefaultMaxChecks
	}
	if v.perMinute <= 0 {
		v.perMinute = DefaultChecksPerMinute
	}
	return v, nil
}

// SetClock replaces time.Now (tests).
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// MaxChecks returns how many wrong codes lock a verification.
func (v *Verifier) MaxChecks() int { return v.maxChecks }

// derive returns a 32-byte key for purpose from key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// record is a verification's state as stored: never its code.
type record struct {
	// Number is the number's key in the policy store (a keyed hash).
	Number string `json:"n"`
	// Region is the number's ISO region (for metrics), To the number
	// masked (for events).
	Region  string          `json:"r,omitempty"`
	To      string          `json:"to,omitempty"`
	Expires int64           `json:"e"` // unix ms
	Wrong   int             `json:"w,omitempty"`
	Ended   otp.CheckStatus `json:"x,omitempty"` // approved, locked, expired or replaced
	// Of names, for the id of a request that sent another
	// verification's code again, that verification.
	Of string `json:"of,omitempty"`
}

// secret is what Secrets keeps of a verification.
type secret struct {
	// Sealed is the code, sealed (nonce and ciphertext).
	Sealed []byte `json:"s"`
	// Hash is a keyed hash of the id and the code.
	Hash []byte `json:"h"`
}

func recordKey(id string) string { return "ver." + id }

// pendingKey names the newest pending verification of a number.
func pendingKey(number string) string { return "vnum." + number }

// checksKey names the bucket of checks of a number.
func checksKey(number string) string { return "vchk." + number }

// GenerateCode returns a code of digits decimal digits from crypto/rand,
// leading zeros allowed.
func GenerateCode(digits int) (string, error) {
	if digits < MinDigits || digits > MaxDigits {
		return "", ErrDigits
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return fmt.Sprintf("%0*s", digits, n.String()), nil
}

func (v *Verifier) hash(id, code string) []byte {
	m := hmac.New(sha256.New, v.hashKey)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// seal seals code, bound to ad: it opens only with the same ad.
func (v *Verifier) seal(ad, code string) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize(), v.aead.NonceSize()+len(code)+v.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal code: %w", err)
	}
	return v.aead.Seal(nonce, nonce, []byte(code), []byte(ad)), nil
}

func (v *Verifier) open(ad string, sealed []byte) (string, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed code too short")
	}
	code, err := v.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return "", errors.New("the sealed code does not open")
	}
	return string(code), nil
}

// jobAD binds a code sealed into a job to the job's id and number.
func jobAD(id, e164 string) string { return "job:" + id + "\x00" + e164 }

// SealJob returns code sealed for job id to number e164 (E.164): what a
// queued job of a verification carries in place of its code
// (otp.Job.Sealed). Only a daemon with the cluster's key opens it, and only
// for that job and number.
func (v *Verifier) SealJob(id, e164, code string) (string, error) {
	b, err := v.seal(jobAD(id, e164), code)
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

// OpenJob returns the code SealJob sealed for job id to e164.
func (v *Verifier) OpenJob(id, e164, sealed string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("the sealed code is not base64")
	}
	return v.open(jobAD(id, e164), b)
}

// Request starts a verification (see Plan).
type Request struct {
	// ID names the verification; it is the request's (and its job's) id.
	ID string
	// Number is the number's key in the policy store; Region its ISO
	// region; To the number masked ("+45******21").
	Number, Region, To string
	// TTL is how long the code is valid.
	TTL time.Duration
	// Digits is the code's length (DefaultDigits when 0).
	Digits int
	// New asks for a new code even when the number has a valid one.
	New bool
}

// Started is a verification's code decided by Plan, recorded by Commit.
type Started struct {
	// ID is the verification whose code is to be sent: the one asked
	// for, or, for a resend, the number's pending one.
	ID string
	// Code is the code to render into the SMS. It must go nowhere else.
	Code string
	// Resend is true when the code is that of a verification still
	// pending for the number.
	Resend bool
	// Replaced names, once committed, the pending verification a new code
	// ended.
	Replaced string

	req    Request
	rec    record // what Commit records under req.ID
	secret secret // for a new code
	// recorded is true when the request's id is recorded already (a
	// request retried): Commit has nothing to do.
	recorded bool
	// pendingRev is the revision of the number's pending verification's
	// name as Plan read it (0: none); prevID that verification.
	pendingRev uint64
	prevID     string
	// What Commit changed, for Abort.
	committed bool
	prevRev   uint64 // the replaced verification's record, as Commit left it
	newRev    uint64 // the pending name (a resend: its record), as Commit left it
}

// LockedError is Plan's answer for a number whose pending verification
// was locked by wrong codes: no new code until that one would have
// expired, so that guesses cannot go on with a fresh code.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong codes for this number; try again in %s", e.RetryAfter.Round(time.Second))
}

// ErrExists is Plan's and Commit's answer for an id that names another
// verification (of another number, or one whose code is gone).
var ErrExists = errors.New("the id names another verification")

// ErrReplan is Commit's answer when the number's verifications changed
// since Plan (another start, a check): plan again.
var ErrReplan = errors.New("the number's verification changed; plan again")

// Start plans, commits and finishes verification r at once (see Plan,
// Commit and Finish), planning again when another start for the number
// came first: for a caller with nothing to do between.
func (v *Verifier) Start(ctx context.Context, r Request) (Started, error) {
	for range 10 {
		s, err := v.Plan(ctx, r)
		if err != nil {
			return s, err
		}
		err = v.Commit(ctx, &s)
		if err == nil {
			v.Finish(ctx, &s)
		}
		if !errors.Is(err, ErrReplan) {
			return s, err
		}
	}
	return Started{}, fmt.Errorf("start %s: too much contention", r.ID)
}

// Plan decides the code of verification r, writing nothing: a new code,
// or, when the number has a pending verification and r.New is false, that
// one's code again (Resend), unless less than half of r.TTL is left of it.
// While a locked verification of the number would still be valid, there is
// no code (*LockedError). A request retried under an id that is recorded
// already gets the code it sent. Between Plan and Commit a caller may
// still refuse the request: nothing is recorded of it then.
func (v *Verifier) Plan(ctx context.Context, r Request) (Started, error) {
	if r.Digits == 0 {
		r.Digits = DefaultDigits
	}
	if own, _, err := v.read(ctx, r.ID); err != nil {
		return Started{}, err
	} else if own != nil {
		return v.planRetry(ctx, r, own)
	}
	now := v.now()
	pending, err := v.store.Get(ctx, pendingKey(r.Number))
	if err != nil && !errors.Is(err, policy.ErrNotFound) {
		return Started{}, fmt.Errorf("read pending verification: %w", err)
	}
	s := Started{req: r, pendingRev: pending.Rev, prevID: string(pending.Value)}
	var prev *record
	if s.prevID != "" {
		if prev, _, err = v.read(ctx, s.prevID); err != nil {
			return Started{}, err
		}
	}
	// One replaced by a start not done yet still counts.
	live := prev != nil && prev.Expires > now.UnixMilli() && prev.Ended != otp.CheckApproved && prev.Ended != otp.CheckExpired
	if live && prev.Ended == otp.CheckLocked {
		return Started{}, &LockedError{RetryAfter: time.UnixMilli(prev.Expires).Sub(now)}
	}
	if live && prev.Ended == "" && !r.New && time.UnixMilli(prev.Expires).Sub(now) >= r.TTL/2 {
		sec, err := v.secret(ctx, s.prevID)
		if err != nil {
			return Started{}, err
		}
		if sec != nil {
			code, err := v.open("ver:"+s.prevID, sec.Sealed)
			if err != nil {
				return Started{}, fmt.Errorf("verification %s: %w", s.prevID, err)
			}
			s.ID, s.Code, s.Resend = s.prevID, code, true
			s.rec = record{Number: r.Number, Region: r.Region, To: r.To, Expires: prev.Expires, Of: s.prevID}
			return s, nil
		}
		// Its secrets are gone: its time ran out by the store's clock.
	}
	code, err := GenerateCode(r.Digits)
	if err != nil {
		return Started{}, err
	}
	sealed, err := v.seal("ver:"+r.ID, code)
	if err != nil {
		return Started{}, err
	}
	s.ID, s.Code = r.ID, code
	s.rec = record{Number: r.Number, Region: r.Region, To: r.To, Expires: now.Add(r.TTL).UnixMilli()}
	s.secret = secret{Sealed: sealed, Hash: v.hash(r.ID, code)}
	return s, nil
}

// planRetry plans a request whose id is recorded as own: the code it sent,
// nothing to commit.
func (v *Verifier) planRetry(ctx context.Context, r Request, own *record) (Started, error) {
	if own.Number != r.Number {
		return Started{}, ErrExists
	}
	id := cmp.Or(own.Of, r.ID)
	sec, err := v.secret(ctx, id)
	if err != nil {
		return Started{}, err
	}
	if sec == nil {
		return Started{}, ErrExists // its code is gone: the id is spent
	}
	code, err := v.open("ver:"+id, sec.Sealed)
	if err != nil {
		return Started{}, fmt.Errorf("verification %s: %w", id, err)
	}
	return Started{ID: id, Code: code, Resend: true, req: r, recorded: true}, nil
}

// Commit records s. A resend is recorded under its request's id, so that a
// check by that id checks the verification it sent. A new code ends the
// number's pending verification at the revision it has now (wrong codes
// checked since Plan carry over; a lock since Plan refuses it,
// *LockedError) and becomes the pending one, if that is still the one Plan
// read (ErrReplan otherwise). Until Finish, Abort takes it all back.
func (v *Verifier) Commit(ctx context.Context, s *Started) error {
	if s.recorded {
		return nil
	}
	if s.Resend {
		b, _ := json.Marshal(s.rec)
		rev, err := v.store.Create(ctx, recordKey(s.req.ID), b)
		if errors.Is(err, policy.ErrExists) {
			return ErrExists
		}
		if err != nil {
			return fmt.Errorf("record verification: %w", err)
		}
		s.committed, s.newRev = true, rev
		return nil
	}
	if err := v.replace(ctx, s); err != nil {
		return err
	}
	undo := func() {
		ctx := context.WithoutCancel(ctx)
		v.restore(ctx, s)
		_ = v.secrets.Delete(ctx, s.ID)
	}
	sb, _ := json.Marshal(s.secret)
	if err := v.secrets.Create(ctx, s.ID, sb, s.req.TTL); err != nil {
		v.restore(context.WithoutCancel(ctx), s)
		if errors.Is(err, policy.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("keep the code sealed: %w", err)
	}
	b, _ := json.Marshal(s.rec)
	if _, err := v.store.Create(ctx, recordKey(s.ID), b); err != nil {
		undo()
		if errors.Is(err, policy.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("record verification: %w", err)
	}
	var rev uint64
	var err error
	if s.pendingRev == 0 {
		rev, err = v.store.Create(ctx, pendingKey(s.req.Number), []byte(s.ID))
	} else {
		rev, err = v.store.Update(ctx, pendingKey(s.req.Number), []byte(s.ID), s.pendingRev)
	}
	if err != nil {
		undo()
		v.deleteRecord(context.WithoutCancel(ctx), s.ID)
		if errors.Is(err, policy.ErrConflict) || errors.Is(err, policy.ErrExists) {
			return ErrReplan
		}
		return fmt.Errorf("record pending verification: %w", err)
	}
	s.committed, s.newRev = true, rev
	return nil
}

// replace ends the verification s replaces (Plan's prevID), at the
// revision it has now, and carries its wrong codes over to s.
func (v *Verifier) replace(ctx context.Context, s *Started) error {
	if s.prevID == "" {
		return nil
	}
	prev, rev, err := v.read(ctx, s.prevID)
	if err != nil {
		return err
	}
	now := v.now().UnixMilli()
	if prev == nil || prev.Expires <= now || prev.Ended == otp.CheckApproved || prev.Ended == otp.CheckExpired {
		return nil
	}
	if prev.Ended == otp.CheckLocked {
		return &LockedError{RetryAfter: time.Duration(prev.Expires-now) * time.Millisecond}
	}
	s.rec.Wrong = prev.Wrong // a new code does not give new guesses
	s.Replaced = s.prevID
	if prev.Ended == replaced {
		return nil // by a start not done yet: that one or this one wins
	}
	prev.Ended = replaced
	b, _ := json.Marshal(prev)
	nrev, err := v.store.Update(ctx, recordKey(s.prevID), b, rev)
	if errors.Is(err, policy.ErrConflict) {
		return ErrReplan // a check came first
	}
	if err != nil {
		return fmt.Errorf("end verification %s: %w", s.prevID, err)
	}
	s.prevRev = nrev
	return nil
}

// Finish completes a committed verification whose SMS is queued: the
// secrets of the one it replaced go.
func (v *Verifier) Finish(ctx context.Context, s *Started) {
	if s.committed && s.Replaced != "" {
		_ = v.secrets.Delete(ctx, s.Replaced) // else gone at its ttl
	}
}

// Abort takes back a committed verification whose SMS could not be
// queued: the one it replaced is pending again, and a retry of the request
// starts afresh.
func (v *Verifier) Abort(ctx context.Context, s *Started) {
	if !s.committed {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.committed = false
	if s.Resend {
		_ = v.store.Delete(ctx, recordKey(s.req.ID), s.newRev)
		return
	}
	// The pending name back, if nothing changed it since.
	if s.pendingRev == 0 {
		_ = v.store.Delete(ctx, pendingKey(s.req.Number), s.newRev)
	} else {
		_, _ = v.store.Update(ctx, pendingKey(s.req.Number), []byte(s.prevID), s.newRev)
	}
	v.restore(ctx, s)
	v.deleteRecord(ctx, s.ID)
	_ = v.secrets.Delete(ctx, s.ID)
}

// restore makes the verification Commit replaced pending again, if nothing
// changed it since.
func (v *Verifier) restore(ctx context.Context, s *Started) {
	if s.prevRev == 0 {
		return
	}
	prev, _, err := v.read(ctx, s.prevID)
	if err == nil && prev != nil && prev.Ended == replaced {
		prev.Ended = ""
		b, _ := json.Marshal(prev)
		_, _ = v.store.Update(ctx, recordKey(s.prevID), b, s.prevRev)
	}
	s.prevRev = 0
}

// deleteRecord deletes verification id's record.
func (v *Verifier) deleteRecord(ctx context.Context, id string) {
	if e, err := v.store.Get(ctx, recordKey(id)); err == nil {
		_ = v.store.Delete(ctx, recordKey(id), e.Rev)
	}
}

// Verification returns the verification whose code request id sent: id,
// or for a resend the one it sent again ("" when id names none).
func (v *Verifier) Verification(ctx context.Context, id string) (string, error) {
	rec, _, err := v.read(ctx, id)
	if err != nil || rec == nil {
		return "", err
	}
	return cmp.Or(rec.Of, id), nil
}

func (v *Verifier) read(ctx context.Context, id string) (*record, uint64, error) {
	e, err := v.store.Get(ctx, recordKey(id))
	if errors.Is(err, policy.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read verification: %w", err)
	}
	var rec record
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return nil, 0, fmt.Errorf("decode verification: %w", err)
	}
	return &rec, e.Rev, nil
}

// secret returns verification id's secrets, nil when they are gone.
func (v *Verifier) secret(ctx context.Context, id string) (*secret, error) {
	b, err := v.secrets.Get(ctx, id)
	if errors.Is(err, policy.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sealed code: %w", err)
	}
	var s secret
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode sealed code: %w", err)
	}
	return &s, nil
}

// PendingOf returns the id of the number's newest pending verification
// ("" when none), for a check by number.
func (v *Verifier) PendingOf(ctx context.Context, number string) (string, error) {
	e, err := v.store.Get(ctx, pendingKey(number))
	if errors.Is(err, policy.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read pending verification: %w", err)
	}
	return string(e.Value), nil
}

// Check checks code against verification id (or the verification whose
// code request id sent again). The comparison takes the same time whatever
// the code; a right code is approved once; wrong ones count, across every
// daemon, until the verification locks; and the checks of one number's
// verifications are limited (Config.ChecksPerMinute).
func (v *Verifier) Check(ctx context.Context, id, code string) (Result, error) {
	rec, _, err := v.read(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if rec != nil && rec.Of != "" {
		id = rec.Of
	}
	limited := false
	for range 50 {
		rec, rev, err := v.read(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if rec == nil || rec.Ended == otp.CheckApproved || rec.Ended == replaced || rec.Of != "" {
			return Result{Status: otp.CheckNotFound}, nil
		}
		res := Result{ID: id, Region: rec.Region, To: rec.To}
		if rec.Ended == "" {
			// Only the number's newest verification is checkable: one
			// replaced is so even if its end was never recorded.
			if cur, err := v.PendingOf(ctx, rec.Number); err != nil {
				return Result{}, err
			} else if cur != id {
				return Result{Status: otp.CheckNotFound}, nil
			}
		}
		switch rec.Ended {
		case otp.CheckLocked, otp.CheckExpired:
			res.Status = rec.Ended
			return res, nil
		}
		if !limited {
			wait, err := v.takeCheck(ctx, rec.Number)
			if err != nil {
				return Result{}, err
			}
			if wait > 0 {
				res.Status, res.RetryAfter = otp.CheckRejected, wait
				return res, nil
			}
			limited = true // taken once, whatever the retries below
		}
		now := v.now().UnixMilli()
		sec, err := v.secret(ctx, id)
		if err != nil {
			return Result{}, err
		}
		switch {
		case rec.Expires <= now || sec == nil:
			res.Status, res.Ended = otp.CheckExpired, true
		case hmac.Equal(v.hash(id, code), sec.Hash):
			res.Status, res.Ended = otp.CheckApproved, true
		default:
			rec.Wrong++
			res.Status, res.AttemptsLeft = otp.CheckDenied, v.maxChecks-rec.Wrong
			if rec.Wrong >= v.maxChecks {
				res.Status, res.AttemptsLeft, res.Ended = otp.CheckLocked, 0, true
			}
		}
		if res.Ended {
			rec.Ended = res.Status
		}
		b, _ := json.Marshal(rec)
		if _, err := v.store.Update(ctx, recordKey(id), b, rev); err != nil {
			if errors.Is(err, policy.ErrConflict) {
				continue // another check came first: judge again
			}
			return Result{}, fmt.Errorf("record check: %w", err)
		}
		if res.Ended {
			// The secrets go with the verification (and at their ttl if
			// this delete fails).
			_ = v.secrets.Delete(context.WithoutCancel(ctx), id)
		}
		return res, nil
	}
	return Result{}, fmt.Errorf("check %s: too much contention", id)
}

// bucket is a number's allowance of checks: a token bucket of
// Config.ChecksPerMinute tokens, refilled at as many a minute.
type bucket struct {
	Tokens float64 `json:"t"`
	At     int64   `json:"a"` // unix ms of Tokens
}

// takeCheck takes one check from the number's bucket, or returns how long
// until one is there.
func (v *Verifier) takeCheck(ctx context.Context, number string) (time.Duration, error) {
	perMs := float64(v.perMinute) / float64(time.Minute.Milliseconds())
	for range 50 {
		now := v.now().UnixMilli()
		b := bucket{Tokens: float64(v.perMinute), At: now}
		e, err := v.store.Get(ctx, checksKey(number))
		found := err == nil
		switch {
		case found:
			if err := json.Unmarshal(e.Value, &b); err != nil {
				return 0, fmt.Errorf("decode checks of the number: %w", err)
			}
			b.Tokens = min(float64(v.perMinute), b.Tokens+float64(max(now-b.At, 0))*perMs)
			b.At = now
		case !errors.Is(err, policy.ErrNotFound):
			return 0, fmt.Errorf("read checks of the number: %w", err)
		}
		if b.Tokens < 1 {
			return time.Duration((1-b.Tokens)/perMs) * time.Millisecond, nil
		}
		b.Tokens--
		val, _ := json.Marshal(b)
		if found {
			_, err = v.store.Update(ctx, checksKey(number), val, e.Rev)
		} else {
			_, err = v.store.Create(ctx, checksKey(number), val)
		}
		if err == nil {
			return 0, nil
		}
		if !errors.Is(err, policy.ErrConflict) && !errors.Is(err, policy.ErrExists) {
			return 0, fmt.Errorf("count the check: %w", err)
		}
	}
	return 0, errors.New("count the check: too much contention")
}
