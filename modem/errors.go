package modem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/modem/at"
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
	// ErrWrongPIN: the configured PIN was refused. It must not be tried
	// again: the SIM locks after three wrong PINs.
	ErrWrongPIN = errors.New("SIM PIN refused")
)

// SendError is a failed Send. Broken reports that the modem connection is no
// longer usable (timeout, port gone) and must be reopened.
type SendError struct {
	Class Class
	// Code is the +CMS ERROR / +CME ERROR value, if the modem gave one.
	Code string
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
		se.Class = cmsClass(se.Code)
	case errors.As(err, &cme):
		se.Code = strings.TrimSpace(string(cme))
		se.Class = Retryable
	case errors.Is(err, at.ErrDeadlineExceeded):
		se.Class, se.Broken = Unknown, true
	case errors.Is(err, at.ErrClosed):
		// The port went away: before or after the PDU was written, nobody
		// can tell.
		se.Class, se.Broken = Unknown, true
	case errors.Is(err, at.ErrError):
		// Plain ERROR (CMEE=0 or a modem that ignores it): no cause given.
		se.Class = Retryable
	}
	return se
}

// permanentCMS are +CMS ERROR values that no retry can fix. Values 0-127 are
// RP causes (3GPP TS 24.011 E.2), 128-255 TP-FCS (TS 23.040 9.2.3.22), 300+
// ME/TA errors (TS 27.005 3.2.5).
var permanentCMS = map[int]bool{
	1:   true, // unassigned (unallocated) number
	8:   true, // operator determined barring
	10:  true, // call barred
	21:  true, // short message transfer rejected
	29:  true, // facility rejected
	30:  true, // unknown subscriber
	50:  true, // requested facility not subscribed
	69:  true, // requested facility not implemented
	96:  true, // invalid mandatory information
	97:  true, // message type non-existent
	98:  true, // message not compatible with protocol state
	99:  true, // information element non-existent
	111: true, // protocol error, unspecified
	127: true, // interworking, unspecified
	303: true, // operation not supported
	304: true, // invalid PDU mode parameter
	305: true, // invalid text mode parameter
	310: true, // SIM not inserted
	313: true, // SIM failure
	315: true, // SIM wrong
	316: true, // SIM PUK required
	318: true, // SIM PUK2 required
}

// cmsClass classifies a +CMS ERROR value. Unknown and textual values are
// retryable: the caller bounds the number of attempts.
func cmsClass(code string) Class {
	n, err := strconv.Atoi(code)
	if err != nil {
		return Retryable
	}
	switch {
	case permanentCMS[n]:
		return Permanent
	case n >= 128 && n <= 255:
		// TP-FCS: PID, DCS and command errors, TPDU not supported, invalid
		// or barred destination, no SC subscription: the message or its
		// destination is wrong. SC busy, SC system failure, error in MS,
		// SIM toolkit busy and unspecified may pass on a later try.
		switch n {
		case 0xC0, 0xC2, 0xD2, 0xD4, 0xFF:
			return Retryable
		}
		return Permanent
	}
	return Retryable
}
