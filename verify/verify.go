// Package verify keeps managed codes: simgate generates a verification's
// code, keeps it only sealed (to send it again) and as a keyed hash (to
// check it), and answers checks of it, so that an auth service never
// handles a code.
//
// The state of a number's verification is one record in a Store shared by
// every daemon of a cluster (the policy bucket), which every start and
// check of the number changes with compare-and-swap: two daemons answering
// checks never allow more wrong codes than the maximum between them, and a
// new code, or a start taken back, never loses one. The secrets live apart
// (Secrets), for no longer than the verification: they are deleted when it
// ends (approved, locked, replaced), and the store deletes them itself when
// its time runs out, whether or not anyone checks.
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

// Digits bounds: those of the contract (otp.MinManagedDigits,
// otp.MaxCodeDigits).
const (
	MinDigits     = otp.MinManagedDigits
	MaxDigits     = otp.MaxCodeDigits
	DefaultDigits = otp.MinManagedDigits
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
	// Busy is true (Status error) when the checked verification's code
	// is being replaced by a start not done yet: try again.
	Busy bool
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

// derive returns a 32-byte key for purpose from key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// state is a number's verification as stored under its number: the one
// key every start and check of the number changes, with compare-and-swap,
// so that wrong codes are never lost when codes are replaced or taken
// back. Never its code.
type state struct {
	// ID is the number's current verification.
	ID      string `json:"id"`
	Region  string `json:"r,omitempty"`  // ISO region, for metrics
	To      string `json:"to,omitempty"` // the number masked, for events
	Expires int64  `json:"e"`            // unix ms
	// Wrong counts the wrong codes checked against the number's codes
	// since its last approval (a new code carries it over).
	Wrong int             `json:"w,omitempty"`
	Ended otp.CheckStatus `json:"x,omitempty"` // approved, locked or expired
	// Tentative is when (unix ms) a start whose job is not queued yet
	// made ID current; Prev is what was current before, which Abort
	// restores. Finish clears both.
	Tentative int64  `json:"t,omitempty"`
	Prev      *state `json:"p,omitempty"`
}

// pending reports whether s's code may still be approved at nowMs.
func (s *state) pending(nowMs int64) bool {
	return s != nil && s.Ended == "" && s.Expires > nowMs
}

// carries reports whether s's wrong codes still count at nowMs: until its
// code would have expired, unless it was approved.
func (s *state) carries(nowMs int64) bool {
	return s != nil && s.Expires > nowMs && s.Ended != otp.CheckApproved
}

// tentativeFor is how long a start's code stays tentative at most: a start
// that did not finish within it (its daemon stopped) is taken as done. The
// daemons' clocks must agree far better (NTP).
const tentativeFor = 30 * time.Second

// tentative reports whether s was made current by a start not done yet.
func (s *state) tentative(nowMs int64) bool {
	d := nowMs - s.Tentative
	return s.Tentative != 0 && d < tentativeFor.Milliseconds() && -d < tentativeFor.Milliseconds()
}

// locked reports whether s refuses a new code at nowMs: its code was
// locked, or as many wrong codes were checked, and would still be valid.
func (s *state) locked(nowMs int64, maxChecks int) bool {
	return s.carries(nowMs) && (s.Ended == otp.CheckLocked || s.Wrong >= maxChecks)
}

// idRecord names, for a request's id, the number it verifies and, for a
// resend, the verification whose code it sent again.
type idRecord struct {
	Number string `json:"n"`
	Of     string `json:"of,omitempty"`
}

// secret is what Secrets keeps of a verification.
type secret struct {
	// Sealed is the code, sealed (nonce and ciphertext).
	Sealed []byte `json:"s"`
	// Hash is a keyed hash of the id and the code.
	Hash []byte `json:"h"`
}

func recordKey(id string) string { return "ver." + id }

// numberKey names a number's state.
func numberKey(number string) string { return "vnum." + number }

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
	// for, or, for a resend, the number's current one.
	ID string
	// Code is the code to render into the SMS. It must go nowhere else.
	Code string
	// Resend is true when the code is that of a verification still
	// pending for the number.
	Resend bool

	req      Request
	recorded bool   // the request's id is recorded already: a retry
	rev      uint64 // the number's state as Plan read it (0: none)
	next     state  // the number's state Commit writes
	secret   secret // a new code's
	// committed is true from Commit to Finish or Abort.
	committed bool
}

// LockedError is Plan's answer for a number whose verification was locked
// by wrong codes: no new code until that one would have expired, so that
// guesses cannot go on with a fresh code.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong codes for this number; try again in %s", e.RetryAfter.Round(time.Second))
}

// ErrExists is Plan's and Commit's answer for an id that names another
// verification (of another number, or one whose code is gone).
var ErrExists = errors.New("the id names another verification")

// ErrReplan is Plan's and Commit's answer when the number's verification
// changed since Plan, or is being started by another request: plan again
// (after a short pause).
var ErrReplan = errors.New("the number's verification is changing; plan again")

// Begin plans and commits verification r (see Plan and Commit),
// planning again, after a pause that doubles, while another start of the
// number is under way (its job being queued: milliseconds) or a check
// came between, for about a second or until ctx ends. The caller queues
// the code's job, then calls Finish, or Abort when it could not.
func (v *Verifier) Begin(ctx context.Context, r Request) (Started, error) {
	for pause := time.Millisecond; ; pause *= 2 {
		s, err := v.Plan(ctx, r)
		if err == nil {
			err = v.Commit(ctx, &s)
		}
		if !errors.Is(err, ErrReplan) || pause > time.Second {
			return s, err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return s, err
		}
	}
}

// Plan decides the code of verification r, writing nothing: a new code,
// or, when the number's code is pending and r.New is false, that code
// again (Resend), unless less than half of r.TTL is left of it or it does
// not open (another key). While the number's code is locked and would
// still be valid, there is no code (*LockedError); while another start of
// the number is under way, ErrReplan. A request retried under an id
// recorded already gets the code it sent, if that is still the number's.
func (v *Verifier) Plan(ctx context.Context, r Request) (Started, error) {
	if r.Digits == 0 {
		r.Digits = DefaultDigits
	}
	own, err := v.idRecord(ctx, r.ID)
	if err != nil {
		return Started{}, err
	}
	cur, rev, err := v.state(ctx, r.Number)
	if err != nil {
		return Started{}, err
	}
	now := v.now().UnixMilli()
	if cur != nil && cur.Tentative != 0 && !cur.tentative(now) {
		// The start that made it current stopped before it was done:
		// done now (a late Abort of it finds nothing to take back).
		v.settle(ctx, r.Number, cur.ID, cur.Tentative)
		if cur, rev, err = v.state(ctx, r.Number); err != nil {
			return Started{}, err
		}
	}
	s := Started{req: r, rev: rev}
	if cur != nil && cur.tentative(now) {
		return Started{}, ErrReplan
	}
	if cur.locked(now, v.maxChecks) {
		return Started{}, &LockedError{RetryAfter: time.Duration(cur.Expires-now) * time.Millisecond}
	}
	if own != nil {
		if own.Number != r.Number {
			return Started{}, ErrExists
		}
		if id := cmp.Or(own.Of, r.ID); cur.pending(now) && cur.ID == id {
			// A request retried: the code it sent.
			if code, ok := v.code(ctx, id); ok {
				s.ID, s.Code, s.Resend, s.recorded = id, code, true, true
				return s, nil
			}
		}
		// Spent, or left by a start that never made it current (its
		// daemon stopped within Commit; the policy took its job for
		// never queued): the id starts afresh.
		v.deleteRecord(ctx, r.ID)
	}
	if cur.pending(now) && !r.New && time.Duration(cur.Expires-now)*time.Millisecond >= r.TTL/2 {
		if code, ok := v.code(ctx, cur.ID); ok {
			s.ID, s.Code, s.Resend = cur.ID, code, true
			s.next = *cur
			return s, nil
		}
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
	s.secret = secret{Sealed: sealed, Hash: v.hash(r.ID, code)}
	s.next = state{ID: r.ID, Region: r.Region, To: r.To, Expires: now + r.TTL.Milliseconds(), Tentative: now}
	if cur.carries(now) {
		s.next.Wrong = cur.Wrong // a new code does not give new guesses
	}
	if cur != nil {
		prev := *cur
		prev.Prev, prev.Tentative = nil, 0
		s.next.Prev = &prev
	}
	return s, nil
}

// code returns verification id's code, if its secrets are kept and open.
func (v *Verifier) code(ctx context.Context, id string) (string, bool) {
	sec, err := v.secret(ctx, id)
	if err != nil || sec == nil {
		return "", false
	}
	code, err := v.open("ver:"+id, sec.Sealed)
	return code, err == nil
}

// Commit records s: the request's id, and for a new code its secrets and
// the number's state, at the revision Plan read (ErrReplan when a start or
// a check changed it since). Until Finish, Abort takes it back.
func (v *Verifier) Commit(ctx context.Context, s *Started) error {
	if s.recorded {
		return nil
	}
	of := ""
	if s.Resend {
		of = s.ID
	} else {
		sb, _ := json.Marshal(s.secret)
		if err := v.secrets.Create(ctx, s.ID, sb, s.req.TTL); err != nil {
			if errors.Is(err, policy.ErrExists) {
				return ErrExists
			}
			return fmt.Errorf("keep the code sealed: %w", err)
		}
	}
	undo := func() {
		ctx := context.WithoutCancel(ctx)
		v.deleteRecord(ctx, s.req.ID)
		if !s.Resend {
			_ = v.secrets.Delete(ctx, s.ID)
		}
	}
	b, _ := json.Marshal(idRecord{Number: s.req.Number, Of: of})
	if _, err := v.store.Create(ctx, recordKey(s.req.ID), b); err != nil {
		if !s.Resend {
			_ = v.secrets.Delete(context.WithoutCancel(ctx), s.ID)
		}
		if errors.Is(err, policy.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("record verification: %w", err)
	}
	// A resend writes the state unchanged: that it is still what Plan
	// read is what matters.
	if err := v.putState(ctx, s.req.Number, &s.next, s.rev); err != nil {
		undo()
		return err
	}
	s.committed = true
	return nil
}

// Finish completes a committed start whose SMS is queued: its code is
// no longer tentative, and the secrets of the code it replaced go.
func (v *Verifier) Finish(ctx context.Context, s *Started) {
	if !s.committed || s.Resend {
		return
	}
	s.committed = false
	v.settle(ctx, s.req.Number, s.ID, s.next.Tentative)
}

// settle clears the tentative mark tentative of verification id, the
// number's current one, and deletes the secrets of the code it replaced.
func (v *Verifier) settle(ctx context.Context, number, id string, tentative int64) {
	var replaced string
	_ = v.update(ctx, number, func(cur *state) bool {
		if cur.ID != id || cur.Tentative != tentative {
			return false
		}
		if cur.Prev != nil {
			replaced = cur.Prev.ID
		}
		cur.Tentative, cur.Prev = 0, nil
		return true
	})
	if replaced != "" && replaced != id {
		_ = v.secrets.Delete(ctx, replaced) // else gone at its ttl
	}
}

// Abort takes back a committed start whose SMS was not queued: the code it
// replaced is the number's again, with every wrong code checked meanwhile
// (a lock meanwhile stays), and a retry of the request starts afresh.
func (v *Verifier) Abort(ctx context.Context, s *Started) {
	if !s.committed {
		return
	}
	s.committed = false
	ctx = context.WithoutCancel(ctx)
	if !s.Resend {
		restored := false
		err := v.update(ctx, s.req.Number, func(cur *state) bool {
			if cur.ID != s.ID || cur.Tentative != s.next.Tentative {
				return false // settled or replaced since: not to take back
			}
			if cur.Ended != "" {
				// Locked (or guessed) meanwhile: it stays, done.
				cur.Tentative, cur.Prev = 0, nil
				return true
			}
			restored = true
			if cur.Prev == nil {
				*cur = state{ID: s.ID, Expires: cur.Expires, Wrong: cur.Wrong, Ended: replaced}
				return true
			}
			prev := *cur.Prev
			prev.Wrong = max(prev.Wrong, cur.Wrong)
			if prev.Wrong >= v.maxChecks && prev.carries(v.now().UnixMilli()) {
				prev.Ended = otp.CheckLocked
			}
			*cur = prev
			return true
		})
		if err != nil || !restored {
			return // its code stays (its secrets go at their ttl)
		}
		_ = v.secrets.Delete(ctx, s.ID)
	}
	v.deleteRecord(ctx, s.req.ID)
}

// replaced marks a number's state whose only code was taken back: its
// wrong codes still count until it would have expired.
const replaced otp.CheckStatus = "replaced"

// state returns the number's state and its revision (nil, 0 when none).
func (v *Verifier) state(ctx context.Context, number string) (*state, uint64, error) {
	e, err := v.store.Get(ctx, numberKey(number))
	if errors.Is(err, policy.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the number's verification: %w", err)
	}
	var s state
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return nil, 0, fmt.Errorf("decode the number's verification: %w", err)
	}
	return &s, e.Rev, nil
}

// putState writes the number's state s at revision rev (0: none yet);
// ErrReplan when it is not at rev any more.
func (v *Verifier) putState(ctx context.Context, number string, s *state, rev uint64) error {
	b, _ := json.Marshal(s)
	var err error
	if rev == 0 {
		_, err = v.store.Create(ctx, numberKey(number), b)
	} else {
		_, err = v.store.Update(ctx, numberKey(number), b, rev)
	}
	switch {
	case errors.Is(err, policy.ErrConflict), errors.Is(err, policy.ErrExists):
		return ErrReplan
	case err != nil:
		return fmt.Errorf("record the number's verification: %w", err)
	}
	return nil
}

// update changes the number's state with change (which reports whether
// it changed anything), again as long as others change it first.
func (v *Verifier) update(ctx context.Context, number string, change func(*state) bool) error {
	for range 50 {
		cur, rev, err := v.state(ctx, number)
		if err != nil {
			return err
		}
		if cur == nil || !change(cur) {
			return nil
		}
		if err := v.putState(ctx, number, cur, rev); !errors.Is(err, ErrReplan) {
			return err
		}
	}
	return errors.New("the number's verification: too much contention")
}

// deleteRecord deletes request id's record.
func (v *Verifier) deleteRecord(ctx context.Context, id string) {
	if e, err := v.store.Get(ctx, recordKey(id)); err == nil {
		_ = v.store.Delete(ctx, recordKey(id), e.Rev)
	}
}

// idRecord returns request id's record (nil when none).
func (v *Verifier) idRecord(ctx context.Context, id string) (*idRecord, error) {
	e, err := v.store.Get(ctx, recordKey(id))
	if errors.Is(err, policy.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read verification: %w", err)
	}
	var r idRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("decode verification: %w", err)
	}
	return &r, nil
}

// Verification returns the verification whose code request id sent: id,
// or for a resend the one it sent again ("" when id names none).
func (v *Verifier) Verification(ctx context.Context, id string) (string, error) {
	r, err := v.idRecord(ctx, id)
	if err != nil || r == nil {
		return "", err
	}
	return cmp.Or(r.Of, id), nil
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

// Check checks code against verification id (or the verification whose
// code request id sent again); see CheckNumber.
func (v *Verifier) Check(ctx context.Context, id, code string) (Result, error) {
	r, err := v.idRecord(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if r == nil {
		return Result{Status: otp.CheckNotFound}, nil
	}
	return v.check(ctx, r.Number, cmp.Or(r.Of, id), code)
}

// CheckNumber checks code against the current verification of the number
// whose policy key is number. The comparison takes the same time whatever
// the code; a right code is approved once; wrong ones count, across every
// daemon and every code of the number, until the verification locks; and
// the checks of one number are limited (Config.ChecksPerMinute). Only the
// number's current verification is checked: one a newer code replaced is
// not_found, or, while the newer one's start is under way, Busy.
func (v *Verifier) CheckNumber(ctx context.Context, number, code string) (Result, error) {
	return v.check(ctx, number, "", code)
}

// check checks code against the number's current verification, which must
// be id unless id is "".
func (v *Verifier) check(ctx context.Context, number, id, code string) (Result, error) {
	limited := false
	for range 50 {
		cur, rev, err := v.state(ctx, number)
		if err != nil {
			return Result{}, err
		}
		now := v.now().UnixMilli()
		if cur == nil || cur.Ended == replaced {
			return Result{Status: otp.CheckNotFound}, nil
		}
		if cur.tentative(now) && cur.Prev != nil && cur.Prev.pending(now) && (id == "" || cur.Prev.ID == id) {
			// Its code is being replaced; or, checked by number, the
			// user may be typing either.
			return Result{Status: otp.CheckError, Busy: true}, nil
		}
		if id != "" && cur.ID != id {
			return Result{Status: otp.CheckNotFound}, nil
		}
		res := Result{ID: cur.ID, Region: cur.Region, To: cur.To}
		switch cur.Ended {
		case otp.CheckApproved:
			return Result{Status: otp.CheckNotFound}, nil
		case otp.CheckLocked, otp.CheckExpired:
			res.Status = cur.Ended
			return res, nil
		}
		var sec *secret
		if cur.Expires > now {
			if !limited {
				wait, err := v.takeCheck(ctx, number)
				if err != nil {
					return Result{}, err
				}
				if wait > 0 {
					res.Status, res.RetryAfter = otp.CheckRejected, wait
					return res, nil
				}
				limited = true // taken once, whatever the retries below
			}
			if sec, err = v.secret(ctx, cur.ID); err != nil {
				return Result{}, err
			}
		}
		switch {
		case sec == nil: // its time ran out (by the store's clock too)
			res.Status, res.Ended = otp.CheckExpired, true
		case hmac.Equal(v.hash(cur.ID, code), sec.Hash):
			res.Status, res.Ended = otp.CheckApproved, true
		default:
			cur.Wrong++
			res.Status, res.AttemptsLeft = otp.CheckDenied, v.maxChecks-cur.Wrong
			if cur.Wrong >= v.maxChecks {
				res.Status, res.AttemptsLeft, res.Ended = otp.CheckLocked, 0, true
			}
		}
		if res.Ended {
			cur.Ended = res.Status
			if res.Status == otp.CheckApproved {
				cur.Wrong = 0
			}
		}
		if err := v.putState(ctx, number, cur, rev); err != nil {
			if errors.Is(err, ErrReplan) {
				continue // another check or start came first: judge again
			}
			return Result{}, fmt.Errorf("record check: %w", err)
		}
		if res.Ended {
			// The secrets go with the verification (and at their ttl if
			// this delete fails).
			_ = v.secrets.Delete(context.WithoutCancel(ctx), cur.ID)
		}
		return res, nil
	}
	return Result{}, errors.New("check: too much contention")
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
