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

// jobAD binds a code sealed into a job to the job's id and destination.
func jobAD(id, to string) string { return "job:" + id + "\x00" + to }

// SealJob returns code sealed for job id to destination to (as the job
// gives it): what a queued job of a verification carries in place of its
// code (otp.Job.Sealed). Only a daemon with the cluster's key opens it,
// and only for that job.
func (v *Verifier) SealJob(id, to, code string) (string, error) {
	b, err := v.seal(jobAD(id, to), code)
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

// OpenJob returns the code SealJob sealed for job id to to.
func (v *Verifier) OpenJob(id, to, sealed string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("the sealed code is not base64")
	}
	return v.open(jobAD(id, to), b)
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
}

// LockedError is Plan's answer for a number whose pending verification
// was locked by wrong codes: no new code until that one would have
// expired, so that guesses cannot go on with a fresh code.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong codes for this number; try again in %s", e.RetryAfter.Round(time.Second))
}

// ErrExists is Commit's answer for an id that names a verification already.
var ErrExists = errors.New("the verification exists")

// Start plans and commits verification r at once (see Plan and Commit).
func (v *Verifier) Start(ctx context.Context, r Request) (Started, error) {
	s, err := v.Plan(ctx, r)
	if err != nil {
		return s, err
	}
	return s, v.Commit(ctx, &s)
}

// Plan decides the code of verification r, writing nothing: a new code,
// or, when the number has a pending verification and r.New is false, that
// one's code again (Resend). While a locked verification of the number
// would still be valid, there is no code (*LockedError). Between Plan and
// Commit a caller may still refuse the request (its limits): nothing is
// recorded of it then.
func (v *Verifier) Plan(ctx context.Context, r Request) (Started, error) {
	if r.Digits == 0 {
		r.Digits = DefaultDigits
	}
	now := v.now()
	prevID, prev, err := v.current(ctx, r.Number)
	if err != nil {
		return Started{}, err
	}
	live := prev != nil && prev.Expires > now.UnixMilli()
	if live && prev.Ended == otp.CheckLocked {
		return Started{}, &LockedError{RetryAfter: time.UnixMilli(prev.Expires).Sub(now)}
	}
	live = live && prev.Ended == ""
	if live && !r.New {
		sec, err := v.secret(ctx, prevID)
		if err != nil {
			return Started{}, err
		}
		if sec != nil {
			code, err := v.open("ver:"+prevID, sec.Sealed)
			if err != nil {
				return Started{}, fmt.Errorf("verification %s: %w", prevID, err)
			}
			rec := record{Number: r.Number, Region: r.Region, To: r.To, Expires: prev.Expires, Of: prevID}
			return Started{ID: prevID, Code: code, Resend: true, req: r, rec: rec}, nil
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
	rec := record{Number: r.Number, Region: r.Region, To: r.To, Expires: now.Add(r.TTL).UnixMilli()}
	if live {
		rec.Wrong = prev.Wrong // a new code does not give new guesses
	}
	return Started{ID: r.ID, Code: code, req: r, rec: rec, secret: secret{Sealed: sealed, Hash: v.hash(r.ID, code)}}, nil
}

// Commit records s: a new code becomes the number's pending verification
// (ending the one it replaces), a resend is recorded under its request's
// id so that a check by that id checks the verification it sent.
func (v *Verifier) Commit(ctx context.Context, s *Started) error {
	if s.Resend && s.ID == s.req.ID {
		// Its own code again: a request retried after its job could not
		// be queued. Everything is recorded already.
		return nil
	}
	b, _ := json.Marshal(s.rec)
	if _, err := v.store.Create(ctx, recordKey(s.req.ID), b); err != nil {
		if errors.Is(err, policy.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("record verification: %w", err)
	}
	if s.Resend {
		return nil
	}
	sb, _ := json.Marshal(s.secret)
	if err := v.secrets.Create(ctx, s.ID, sb, s.req.TTL); err != nil {
		return fmt.Errorf("keep the code sealed: %w", err)
	}
	// The number's pending verification is this one from now on: checks
	// of any other are not_found, whether or not its end is recorded.
	ctx = context.WithoutCancel(ctx)
	for try := 0; ; try++ {
		e, err := v.store.Get(ctx, pendingKey(s.req.Number))
		switch {
		case errors.Is(err, policy.ErrNotFound):
			_, err = v.store.Create(ctx, pendingKey(s.req.Number), []byte(s.ID))
		case err == nil:
			if prev := string(e.Value); prev != s.ID {
				s.Replaced = prev
			}
			_, err = v.store.Update(ctx, pendingKey(s.req.Number), []byte(s.ID), e.Rev)
		}
		if err == nil {
			break
		}
		if try == 9 || !errors.Is(err, policy.ErrExists) && !errors.Is(err, policy.ErrConflict) {
			return fmt.Errorf("record pending verification: %w", err)
		}
	}
	if s.Replaced != "" {
		v.end(ctx, s.Replaced, replaced)
	}
	return nil
}

// current returns the number's pending verification and its record (nil
// when it has none).
func (v *Verifier) current(ctx context.Context, number string) (string, *record, error) {
	id, err := v.PendingOf(ctx, number)
	if err != nil || id == "" {
		return "", nil, err
	}
	rec, _, err := v.read(ctx, id)
	return id, rec, err
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

// end ends verification id with status and deletes its secrets.
func (v *Verifier) end(ctx context.Context, id string, status otp.CheckStatus) {
	for range 10 {
		rec, rev, err := v.read(ctx, id)
		if err != nil || rec == nil || rec.Ended != "" {
			break
		}
		rec.Ended = status
		b, _ := json.Marshal(rec)
		if _, err := v.store.Update(ctx, recordKey(id), b, rev); !errors.Is(err, policy.ErrConflict) {
			break
		}
	}
	_ = v.secrets.Delete(ctx, id) // else gone at its ttl
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
