package modem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/simgate/simgate/modem/cms"
	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/gsm"
)

// Class says what a failed send means for the job.
type Class int

// Classes of send failure.
const (
	// Retryable: the SMS was not sent; the same job may succeed later or on
	// another modem (network busy, SIM busy, collision with an incoming SMS).
	Retryable Class = iota
	// Permanent: the SMS was not sent and never will be (invalid or barred
	// destination, malformed message).
	Permanent
	// Unknown: the modem did not answer in time or went away after the
	// message was handed over; the SMS may or may not have gone out.
	Unknown
)

// String returns the class as metric labels and logs show it.
func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	case Unknown:
		return "unknown_outcome"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Errors returned by Open.
var (
	// ErrSIMPINRequired: the SIM wants a PIN and none is configured.
	ErrSIMPINRequired = errors.New("SIM PIN required and no PIN configured")
	// ErrSIMPUK: the SIM is locked (PUK required); a person must unlock it.
	ErrSIMPUK = errors.New("SIM locked: PUK required")
	// ErrWrongPIN: entering the configured PIN failed: refused, or any
	// other failure (a plain ERROR, a timeout) that may have cost a try.
	// It must not be tried again: the SIM locks after three wrong PINs.
	ErrWrongPIN = errors.New("SIM PIN refused")
	// ErrPINLastTry: the SIM has one PIN try left. simgate does not spend
	// it: a person must enter the PIN (or confirm it) first.
	ErrPINLastTry = errors.New("SIM PIN: one try left; not entered")
)

// PINError is an Open that failed on the SIM PIN (ErrWrongPIN,
// ErrPINLastTry). TriesLeft is what the modem says of the PIN tries left,
// -1 when it does not tell. It never holds the PIN.
type PINError struct {
	TriesLeft int
	Err       error
}

// Error describes the failure and the tries left.
func (e *PINError) Error() string {
	if e.TriesLeft < 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (%d tries left)", e.Err, e.TriesLeft)
}

// Unwrap returns ErrWrongPIN or ErrPINLastTry.
func (e *PINError) Unwrap() error { return e.Err }

// SendError is a failed Send. Broken reports that the modem connection is no
// longer usable (timeout, port gone) and must be reopened.
type SendError struct {
	Class Class
	// Code is the +CMS ERROR / +CME ERROR value, if the modem gave one.
	Code string
	// Account is the cause a +CMS ERROR names when the network refuses
	// the SIM's subscription rather than the message (cms.Error.Account:
	// "barred", "not_subscribed"); empty otherwise.
	Account string
	// Sent is the number of parts confirmed before the failure.
	Sent   int
	Broken bool
	Err    error
}

// Error describes the failure with its class and the parts already sent.
func (e *SendError) Error() string {
	return fmt.Sprintf("send (%s, %d parts sent): %v", e.Class, e.Sent, e.Err)
}

// Unwrap returns the underlying error (an at.CMSError, a timeout, ...).
func (e *SendError) Unwrap() error { return e.Err }

// classify maps an error from the AT layer while sending one part.
func classify(err error, sent int) *SendError {
	se := &SendError{Class: Retryable, Sent: sent, Err: err}
	var cms at.CMSError
	var cme at.CMEError
	switch {
	case errors.As(err, &cms):
		se.Code = strings.TrimSpace(string(cms))
		se.Class, se.Account = cmsClass(se.Code)
	case errors.As(err, &cme):
		se.Code = strings.TrimSpace(string(cme))
		se.Class = Retryable
	case errors.Is(err, at.ErrDeadlineExceeded):
		se.Class, se.Broken = Unknown, true
	case errors.Is(err, at.ErrClosed):
		// The port went away: before or after the PDU was written, nobody
		// can tell.
		se.Class, se.Broken = Unknown, true
	case errors.Is(err, gsm.ErrMalformedResponse):
		// OK without "+CMGS: <mr>": the modem took the message and may
		// well have sent it.
		se.Class = Unknown
	case errors.Is(err, at.ErrError):
		// Plain ERROR (CMEE=0 or a modem that ignores it): no cause given.
		se.Class = Retryable
	}
	return se
}

// cmsClass classifies a +CMS ERROR value with the shared table (package
// cms), and names the account cause it is, if any. Unknown and textual
// values are retryable: the caller bounds the number of attempts.
func cmsClass(code string) (Class, string) {
	n, err := strconv.Atoi(code)
	if err != nil {
		return Retryable, ""
	}
	e, _ := cms.Lookup(n)
	if !cms.IsPermanent(n) {
		return Retryable, e.Account
	}
	return Permanent, e.Account
}
