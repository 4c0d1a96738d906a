// Package verify keeps managed codes: simgate generates a verification's
// code, keeps it only sealed (to send it again) and as a keyed hash (to
// check it), and answers checks of it, so that an auth service never
// handles a code.
//
// A verification lives in a Store shared by every daemon of a cluster
// (the policy bucket), updated with compare-and-swap: two daemons
// answering checks of one verification never allow more wrong codes than
// the maximum between them. Its secrets are deleted when it ends
// (approved, locked or expired).
package verify

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// Store keeps verifications: the policy's store (see policy.Store) does.
type Store interface {
	Get(ctx context.Context, key string) (policy.Entry, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string, rev uint64) error
}

// Digits bounds.
const (
	MinDigits     = 6
	MaxDigits     = 10
	DefaultDigits = 6
)

// DefaultMaxChecks is how many wrong codes lock a verification.
const DefaultMaxChecks = 5

// replaced is the end of a verification a newer code replaced: checks of
// it are not_found.
const replaced otp.CheckStatus = "replaced"

// Result is the answer to a check.
type Result struct {
	Status       otp.CheckStatus
	AttemptsLeft int
	// Ended is true when this check ended the verification (approved,
	// locked, expired): its event is to be told.
	Ended bool
}

// ErrDigits is the error of a number of digits out of bounds.
var ErrDigits = fmt.Errorf("digits must be %d to %d", MinDigits, MaxDigits)

// Verifier starts and checks verifications. It is safe for concurrent use.
type Verifier struct {
	store     Store
	aead      cipher.AEAD
	hashKey   []byte
	maxChecks int
	now       func() time.Time
}

// New returns a Verifier over store; key is the cluster's policy hash key,
// from which the keys that seal and hash codes are derived; maxChecks is
// how many wrong codes lock a verification (DefaultMaxChecks when 0).
func New(store Store, key []byte, maxChecks int) (*Verifier, error) {
	if len(key) < 16 {
		return nil, errors.New("verify: hash key shorter than 16 bytes")
	}
	block, err := aes.NewCipher(derive(key, "simgate verify seal"))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if maxChecks <= 0 {
		maxChecks = DefaultMaxChecks
	}
	return &Verifier{store: store, aead: aead, hashKey: derive(key, "simgate verify hash"), maxChecks: maxChecks, now: time.Now}, nil
}

// SetClock replaces time.Now (tests).
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// derive returns a 32-byte key for purpose from key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// record is a verification as stored.
type record struct {
	// Number is the number's key in the policy store (a keyed hash).
	Number string `json:"n"`
	// Sealed is the code, sealed (nonce and ciphertext), while pending.
	Sealed []byte `json:"s,omitempty"`
	// Hash is a keyed hash of the id and the code, while pending.
	Hash    []byte          `json:"h,omitempty"`
	Expires int64           `json:"e"` // unix ms
	Wrong   int             `json:"w,omitempty"`
	Ended   otp.CheckStatus `json:"x,omitempty"` // approved, locked, expired or replaced
}

func recordKey(id string) string { return "ver." + id }

// pendingKey names the newest pending verification of a number.
func pendingKey(number string) string { return "vnum." + number }

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

func (v *Verifier) seal(id, code string) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize(), v.aead.NonceSize()+len(code)+v.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal code: %w", err)
	}
	return v.aead.Seal(nonce, nonce, []byte(code), []byte("ver:"+id)), nil
}

func (v *Verifier) open(id string, sealed []byte) (string, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed code too short")
	}
	code, err := v.aead.Open(nil, sealed[:n], sealed[n:], []byte("ver:"+id))
	if err != nil {
		return "", errors.New("cannot open the sealed code")
	}
	return string(code), nil
}

// Started is the outcome of Start.
type Started struct {
	// ID is the verification whose code is to be sent: the one asked
	// for, or, for a resend, the number's pending one.
	ID string
	// Code is the code to render into the SMS. It must go nowhere else.
	Code string
	// Resend is true when the code is that of a verification still
	// pending for the number.
	Resend bool
	// Replaced names the pending verification a new code ended.
	Replaced string
}

// LockedError is Start's answer for a number whose pending verification
// was locked by wrong codes: no new code until that one would have
// expired, so that guesses cannot go on with a fresh code.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many wrong codes for this number; try again in %s", e.RetryAfter.Round(time.Second))
}

// ErrExists is Start's answer for an id that names a verification already.
var ErrExists = errors.New("the verification exists")

// Start begins verification id for the number whose policy key is number,
// valid for ttl, with a code of digits digits; or, when the number has a
// pending verification and fresh is false, sends that one's code again.
// A new code ends the number's pending verification (Replaced), and takes
// over its count of wrong codes; while a locked one would still be valid,
// there is no new code (*LockedError).
func (v *Verifier) Start(ctx context.Context, id, number string, ttl time.Duration, digits int, fresh bool) (Started, error) {
	if digits == 0 {
		digits = DefaultDigits
	}
	now := v.now()
	prevID, prev, err := v.current(ctx, number)
	if err != nil {
		return Started{}, err
	}
	live := prev != nil && prev.Expires > now.UnixMilli()
	if live && prev.Ended == otp.CheckLocked {
		return Started{}, &LockedError{RetryAfter: time.UnixMilli(prev.Expires).Sub(now)}
	}
	live = live && prev.Ended == ""
	if live && !fresh && prev.Sealed != nil {
		code, err := v.open(prevID, prev.Sealed)
		if err != nil {
			return Started{}, fmt.Errorf("verification %s: %w", prevID, err)
		}
		return Started{ID: prevID, Code: code, Resend: true}, nil
	}
	code, err := GenerateCode(digits)
	if err != nil {
		return Started{}, err
	}
	sealed, err := v.seal(id, code)
	if err != nil {
		return Started{}, err
	}
	rec := record{Number: number, Sealed: sealed, Hash: v.hash(id, code), Expires: now.Add(ttl).UnixMilli()}
	if live {
		rec.Wrong = prev.Wrong // a new code does not give new guesses
	}
	b, _ := json.Marshal(rec)
	if _, err := v.store.Create(ctx, recordKey(id), b); err != nil {
		if errors.Is(err, policy.ErrExists) {
			return Started{}, ErrExists
		}
		return Started{}, fmt.Errorf("record verification: %w", err)
	}
	started := Started{ID: id, Code: code}
	// The number's pending verification is this one from now on: checks
	// of any other are not_found, whether or not its end is recorded.
	ctx = context.WithoutCancel(ctx)
	for try := 0; ; try++ {
		e, err := v.store.Get(ctx, pendingKey(number))
		switch {
		case errors.Is(err, policy.ErrNotFound):
			_, err = v.store.Create(ctx, pendingKey(number), []byte(id))
		case err == nil:
			if prev := string(e.Value); prev != id {
				started.Replaced = prev
			}
			_, err = v.store.Update(ctx, pendingKey(number), []byte(id), e.Rev)
		}
		if err == nil {
			break
		}
		if try == 9 || !errors.Is(err, policy.ErrExists) && !errors.Is(err, policy.ErrConflict) {
			return Started{}, fmt.Errorf("record pending verification: %w", err)
		}
	}
	if started.Replaced != "" {
		v.end(ctx, started.Replaced, replaced)
	}
	return started, nil
}

// current returns the number's pending verification and its record (nil
// when it has none).
func (v *Verifier) current(ctx context.Context, number string) (string, *record, error) {
	e, err := v.store.Get(ctx, pendingKey(number))
	if errors.Is(err, policy.ErrNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read pending verification: %w", err)
	}
	id := string(e.Value)
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

// end ends verification id with status, deleting its
// secrets.
func (v *Verifier) end(ctx context.Context, id string, status otp.CheckStatus) {
	for range 10 {
		rec, rev, err := v.read(ctx, id)
		if err != nil || rec == nil || rec.Ended != "" {
			return
		}
		rec.Sealed, rec.Hash = nil, nil
		rec.Ended = status
		b, _ := json.Marshal(rec)
		if _, err := v.store.Update(ctx, recordKey(id), b, rev); !errors.Is(err, policy.ErrConflict) {
			return
		}
	}
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

// Check checks code against verification id. The comparison takes the
// same time whatever the code; a right code is approved once; wrong ones
// count, across every daemon, until the verification locks.
func (v *Verifier) Check(ctx context.Context, id, code string) (Result, error) {
	for range 50 {
		rec, rev, err := v.read(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if rec == nil || rec.Ended == otp.CheckApproved || rec.Ended == replaced {
			return Result{Status: otp.CheckNotFound}, nil
		}
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
		case otp.CheckLocked:
			return Result{Status: otp.CheckLocked}, nil
		case otp.CheckExpired:
			return Result{Status: otp.CheckExpired}, nil
		}
		now := v.now().UnixMilli()
		var res Result
		switch {
		case rec.Expires <= now:
			res = Result{Status: otp.CheckExpired, Ended: true}
			rec.Ended = otp.CheckExpired
		case hmac.Equal(v.hash(id, code), rec.Hash):
			res = Result{Status: otp.CheckApproved, Ended: true}
			rec.Ended = otp.CheckApproved
		default:
			rec.Wrong++
			res = Result{Status: otp.CheckDenied, AttemptsLeft: v.maxChecks - rec.Wrong}
			if rec.Wrong >= v.maxChecks {
				res = Result{Status: otp.CheckLocked, Ended: true}
				rec.Ended = otp.CheckLocked
			}
		}
		if rec.Ended != "" {
			rec.Sealed, rec.Hash = nil, nil // the secrets go with the verification
		}
		b, _ := json.Marshal(rec)
		if _, err := v.store.Update(ctx, recordKey(id), b, rev); err != nil {
			if errors.Is(err, policy.ErrConflict) {
				continue // another check came first: judge again
			}
			return Result{}, fmt.Errorf("record check: %w", err)
		}
		return res, nil
	}
	return Result{}, fmt.Errorf("check %s: too much contention", id)
}
