package otp

import (
	"errors"
	"fmt"
	"time"
)

// Reason is the machine-readable cause of a rejected or failed job. Reasons
// are part of the public contract: auth services switch on them.
type Reason string

// Reasons a job can be rejected before it reaches a modem.
const (
	ReasonMalformed       Reason = "malformed"        // not a JSON object, or trailing data
	ReasonUnknownField    Reason = "unknown_field"    // a field the contract does not define
	ReasonMissingField    Reason = "missing_field"    // a required field is absent
	ReasonInvalidID       Reason = "invalid_id"       // id is not 1-64 of [A-Za-z0-9_-]
	ReasonInvalidNumber   Reason = "invalid_number"   // to is not a valid phone number
	ReasonInvalidCode     Reason = "invalid_code"     // code is not 4-10 digits, or shorter than the configured minimum
	ReasonInvalidText     Reason = "invalid_text"     // text is empty, too long or not UTF-8
	ReasonTextDisabled    Reason = "text_disabled"    // a plain-text job where the operator turned them off
	ReasonTooLong         Reason = "too_long"         // the rendered message takes more SMS than the configured maximum
	ReasonInvalidTTL      Reason = "invalid_ttl"      // ttl is not a positive duration within the maximum
	ReasonUnknownTemplate Reason = "unknown_template" // template/locale not configured
	ReasonInvalidOrigin   Reason = "invalid_origin"   // origin is not a lower-case DNS host name
	ReasonInvalidAppHash  Reason = "invalid_app_hash" // app_hash is not 11 characters of [A-Za-z0-9+/]

	// Refused by the configured NumberPolicy.
	ReasonNumberTypeBlocked Reason = "number_type_blocked" // the number's type (premium_rate, ...) is not accepted
	ReasonCountryBlocked    Reason = "country_blocked"     // the number's region is not accepted
	ReasonOptedOut          Reason = "opted_out"           // the number replied STOP (inbound.opt_out); START undoes it

	// Refused by the duplicate and rate limits (see Scope).
	ReasonRateLimited   Reason = "rate_limited"   // a limit on sends was reached; retry_after tells when to try again
	ReasonPrefixBlocked Reason = "prefix_blocked" // the number's block saw too many distinct numbers (SMS pumping)

	// Refused because its id names another job: a job is one id with one
	// body (number, code or text, ttl, template, locale, origin, app hash).
	ReasonIDConflict Reason = "id_conflict"
)

// Scope names the limit a rate_limited or prefix_blocked rejection hit.
type Scope string

// Scopes of rate limits.
const (
	ScopeNumber  Scope = "number"  // sends to one number (cooldown, windows)
	ScopePrefix  Scope = "prefix"  // distinct numbers of one number block
	ScopeCountry Scope = "country" // sends to one region per hour
	ScopeGlobal  Scope = "global"  // all sends per minute
)

// Reasons a job can fail, or be retried, after it was accepted.
const (
	ReasonRetryable         Reason = "retryable"          // a retrying event: the modem or network failed for now
	ReasonModemRejected     Reason = "modem_rejected"     // the modem or network refused the SMS for good
	ReasonAttemptsExhausted Reason = "attempts_exhausted" // retryable failures until the attempt limit
	ReasonUnknownOutcome    Reason = "unknown_outcome"    // the (last) attempt timed out; the SMS may have gone out
)

// RejectError is a job refused with a typed reason. It is what a publisher
// gets back on otp.request and in the rejected event.
type RejectError struct {
	Reason Reason
	Field  string // the JSON field at fault, if any
	Detail string // a human-readable explanation; never contains a code or a full number
	// Scope names the limit a rate_limited or prefix_blocked rejection
	// hit: number, prefix, country or global.
	Scope Scope
	// RetryAfter is set when the same job may succeed later (rate limits).
	RetryAfter time.Duration
}

// Error returns the reason, the field and the detail.
func (e *RejectError) Error() string {
	s := "rejected: " + string(e.Reason)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func reject(reason Reason, field, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// AsReject returns the RejectError in err's chain, if any.
func AsReject(err error) (*RejectError, bool) {
	switch e := err.(type) {
	case nil:
		return nil, false
	case *RejectError:
		return e, true // as errors.As, also for a nil *RejectError
	}
	var re *RejectError
	ok := errors.As(err, &re)
	return re, ok
}
