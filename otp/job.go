package otp

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the job contract.
const (
	MaxJobSize   = 8 << 10 // bytes of JSON
	MaxTextLen   = 1000    // characters of a plain SMS text (7 concatenated GSM-7 parts)
	MaxOriginLen = 253     // characters of an origin: the longest DNS name
)

// Job is one send request as published by an auth service on otp.send or
// otp.request. Exactly one of Code and Text is set.
type Job struct {
	// ID is the publisher's idempotency key: 1-64 characters of [A-Za-z0-9_-].
	// It is also the last token of the job's event subject.
	ID string `json:"id"`
	// To is the destination as typed by a person; see ParseNumber.
	To string `json:"to"`
	// Region is the ISO region for national numbers ("DK"); optional.
	Region string `json:"region,omitempty"`
	// Code is the one-time passcode: 4-10 ASCII digits, and at least
	// Limits.MinCodeDigits (6 by default).
	Code string `json:"code,omitempty"`
	// Text is a plain SMS text, sent as is; only where Limits.AllowText
	// turns such jobs on.
	Text string `json:"text,omitempty"`
	// TTL is how long the code is worth sending, counted from when the job
	// was queued. Zero means the configured default.
	TTL Duration `json:"ttl,omitzero"`
	// Template and Locale choose the message template for a code.
	Template string `json:"template,omitempty"`
	Locale   string `json:"locale,omitempty"`
	// Origin binds the code to a web site for browser and OS autofill: the
	// host name ("example.com") the code may be entered on. With it the
	// message ends with the line "@example.com #<code>" (see Render). Only
	// with Code.
	Origin string `json:"origin,omitempty"`
	// AppHash is the 11-character hash of an Android app that reads the code
	// with the SMS Retriever API. It goes on a line of its own after the
	// template text (see Render). Only with Code.
	AppHash string `json:"app_hash,omitempty"`
	// Sealed is the code of a managed verification, sealed with the
	// cluster's key (verify.Verifier.SealJob), in place of Code: simgate
	// queues such jobs for otp.verify, so that the code crosses NATS only
	// sealed. A publisher cannot make one (otp.request refuses the field;
	// on otp.send one that does not open is rejected).
	Sealed string `json:"sealed,omitempty"`
}

// Duration is a time.Duration that reads from JSON either as a Go duration
// string ("90s", "5m") or as a number of seconds (300).
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return errBadDuration
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil || secs > maxSeconds || secs < -maxSeconds {
		return errBadDuration
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

var errBadDuration = errors.New("not a duration string or a number of seconds")

const maxSeconds = float64(1<<62) / float64(time.Second)

// MarshalJSON implements json.Marshaler; it writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	codePattern = regexp.MustCompile(`^[0-9]{4,10}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

// ValidID reports whether id may be used as a job id (and as a NATS subject
// token).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// DecodeJob parses and checks the syntax of a job. Every error it returns is
// a *RejectError. It does not check the phone number (see ParseNumber) nor
// the TTL against a maximum (see Limits.Prepare); when the error is not
// ReasonMalformed the returned job carries whatever fields were decoded, so
// the caller can name the job in its answer.
func DecodeJob(data []byte) (Job, error) {
	var j Job
	if err := decodeObject(data, MaxJobSize, "job", &j, jobFields); err != nil {
		return j, err
	}
	return j, j.validate()
}

// decodeError turns an encoding/json error decoding what into a typed
// rejection.
func decodeError(what string, err error) *RejectError {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return reject(ReasonMalformed, typeErr.Field, "%s must be a %s", typeErr.Field, jsonKind(typeErr.Field))
	case errors.Is(err, errBadDuration):
		return reject(ReasonInvalidTTL, "ttl", "ttl must be a duration string such as \"5m\" or a number of seconds")
	default:
		return reject(ReasonMalformed, "", "%s is not a JSON object: %v", what, err)
	}
}

func jsonKind(field string) string {
	if field == "ttl" {
		return "duration string or number of seconds"
	}
	return "string"
}

func (j *Job) validate() error {
	switch {
	case j.ID == "":
		return reject(ReasonMissingField, "id", "id is required")
	case !ValidID(j.ID):
		return reject(ReasonInvalidID, "id", "id must be 1-64 characters of A-Z a-z 0-9 _ -")
	case j.To == "":
		return reject(ReasonMissingField, "to", "to is required")
	case j.Code == "" && j.Text == "" && j.Sealed == "":
		return reject(ReasonMissingField, "code", "one of code or text is required")
	case j.Code != "" && j.Text != "":
		return reject(ReasonMalformed, "text", "code and text are mutually exclusive")
	case j.Sealed != "" && (j.Code != "" || j.Text != ""):
		return reject(ReasonMalformed, "sealed", "a sealed code goes without code and text")
	case j.Code != "" && !codePattern.MatchString(j.Code):
		return reject(ReasonInvalidCode, "code", "code must be 4-10 digits")
	case j.Text != "" && !utf8.ValidString(j.Text):
		return reject(ReasonInvalidText, "text", "text is not valid UTF-8")
	case utf8.RuneCountInString(j.Text) > MaxTextLen:
		return reject(ReasonInvalidText, "text", "text is longer than %d characters", MaxTextLen)
	case j.TTL < 0:
		return reject(ReasonInvalidTTL, "ttl", "ttl must be positive")
	case j.Region != "" && !regionPattern.MatchString(j.Region):
		return reject(ReasonMalformed, "region", "region must be an ISO 3166-1 alpha-2 code")
	case j.Template != "" && !namePattern.MatchString(j.Template):
		return reject(ReasonUnknownTemplate, "template", "template name must be 1-32 characters of A-Z a-z 0-9 _ -")
	case j.Locale != "" && !namePattern.MatchString(j.Locale):
		return reject(ReasonUnknownTemplate, "locale", "locale must be 1-32 characters of A-Z a-z 0-9 _ -")
	}
	if re := j.checkCodeOptions(); re != nil {
		return re
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[A-Za-z]{2}$`)

var appHashPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{11}$`)

// checkCodeOptions checks Origin and AppHash, which only a code job may have.
func (j *Job) checkCodeOptions() *RejectError {
	if j.Code == "" && j.Sealed == "" {
		switch {
		case j.Origin != "":
			return reject(ReasonMalformed, "origin", "origin is only for code jobs")
		case j.AppHash != "":
			return reject(ReasonMalformed, "app_hash", "app_hash is only for code jobs")
		}
		return nil
	}
	if j.Origin != "" {
		if problem := originProblem(j.Origin); problem != "" {
			return reject(ReasonInvalidOrigin, "origin", "%s", problem)
		}
	}
	if j.AppHash != "" && !appHashPattern.MatchString(j.AppHash) {
		return reject(ReasonInvalidAppHash, "app_hash", "app_hash must be exactly 11 characters of A-Z a-z 0-9 + /")
	}
	return nil
}

// originProblem says what keeps s from being an origin: a DNS host name of
// at most MaxOriginLen characters, in lower case, with at least two labels,
// each of 1-63 characters of a-z 0-9 and '-' that neither begin nor end with
// '-', and a top-level label that begins with a letter (so that no IPv4
// address passes). International names must be in their xn-- form. It
// returns "" for a valid origin.
func originProblem(s string) string {
	if len(s) > MaxOriginLen {
		return fmt.Sprintf("origin is longer than %d characters", MaxOriginLen)
	}
	if strings.ContainsAny(s, ":/?#@[]") {
		return "origin must be a host name such as example.com, without scheme, port or path"
	}
	for _, c := range s {
		switch {
		case 'A' <= c && c <= 'Z':
			return "origin must be lower-case"
		case !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.'):
			return "origin may contain only a-z 0-9 - and . (international names in their xn-- form)"
		}
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return "origin must be a domain name with at least one dot, such as example.com"
	}
	for _, l := range labels {
		switch {
		case l == "":
			return "origin has an empty label (a leading, trailing or double dot)"
		case len(l) > 63:
			return "origin has a label longer than 63 characters"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "origin labels must not begin or end with a hyphen"
		}
	}
	if tld := labels[len(labels)-1]; tld[0] < 'a' || tld[0] > 'z' {
		return "origin must be a host name, not an IP address: its last label must begin with a letter"
	}
	return ""
}

// Defaults and bounds of Limits. NIST SP 800-63B and OWASP ask for codes of
// at least 6 digits; the contract admits 4 (MinCodeDigits) only where the
// operator configures it.
const (
	DefaultMinCodeDigits = 6  // Limits.MinCodeDigits when zero
	MinCodeDigits        = 4  // the least Limits.MinCodeDigits may be
	MaxCodeDigits        = 10 // the most digits of any code
	DefaultMaxParts      = 3  // Limits.MaxParts when zero
	// MaxSMSParts is the most parts of one concatenated SMS: its header
	// counts them in one octet (3GPP TS 23.040 §9.2.3.24.1).
	MaxSMSParts = 255
)

// Limits are the configured bounds a job is checked against once decoded.
type Limits struct {
	DefaultTTL time.Duration // used when a job has no ttl
	MaxTTL     time.Duration // a larger ttl is rejected
	Region     string        // default region for national numbers
	// Numbers decides which valid numbers are accepted; the zero value
	// accepts all. Validate it when the configuration is loaded.
	Numbers NumberPolicy
	// MinCodeDigits is the least number of digits of a code, from
	// MinCodeDigits to MaxCodeDigits; zero means DefaultMinCodeDigits.
	MinCodeDigits int
	// AllowText accepts jobs with a plain Text; without it they are
	// rejected (text_disabled).
	AllowText bool
	// MaxParts is the most SMS a rendered message may take (see Fit);
	// zero means DefaultMaxParts.
	MaxParts int
}

// minCodeDigits returns the effective MinCodeDigits.
func (l Limits) minCodeDigits() int {
	if l.MinCodeDigits == 0 {
		return DefaultMinCodeDigits
	}
	return l.MinCodeDigits
}

// maxParts returns the effective MaxParts.
func (l Limits) maxParts() int {
	if l.MaxParts == 0 {
		return DefaultMaxParts
	}
	return l.MaxParts
}

// Prepared is a job that passed every check: its number is normalised, its
// TTL resolved and, once rendered (see Fit), its size in SMS known.
type Prepared struct {
	Job
	Number Number
	TTL    time.Duration
	// Parts is the number of SMS the rendered message takes; the policy
	// counts each as a send. Zero until Fit sets it.
	Parts int
}

// Prepare checks a decoded job against the limits, normalises its number and
// applies the number policy. Every error it returns is a *RejectError.
func (l Limits) Prepare(j Job) (Prepared, error) {
	if j.Text != "" && !l.AllowText {
		return Prepared{}, reject(ReasonTextDisabled, "text", "plain-text jobs are turned off (otp.allow_text); send a code")
	}
	if least := l.minCodeDigits(); j.Code != "" && len(j.Code) < least {
		return Prepared{}, reject(ReasonInvalidCode, "code", "code must be at least %d digits", least)
	}
	ttl := time.Duration(j.TTL)
	if ttl == 0 {
		ttl = l.DefaultTTL
	}
	if l.MaxTTL > 0 && ttl > l.MaxTTL {
		return Prepared{}, reject(ReasonInvalidTTL, "ttl", "ttl %s is above the maximum %s", ttl, l.MaxTTL)
	}
	region := j.Region
	if region == "" {
		region = l.Region
	}
	n, err := ParseNumber(j.To, region)
	if err != nil {
		return Prepared{}, err
	}
	if err := l.Numbers.Check(n); err != nil {
		return Prepared{}, err
	}
	return Prepared{Job: j, Number: n, TTL: ttl}, nil
}

// Fit sets p.Parts to the number of SMS text, the message rendered for p,
// takes (see Segments), and rejects the job (too_long) when that is more
// than MaxParts. The error, if any, is a *RejectError; it names the
// template for a code job and the text for a text job, never the message.
func (l Limits) Fit(p Prepared, text string) (Prepared, error) {
	_, p.Parts = Segments(text)
	if most := l.maxParts(); p.Parts > most {
		field := "template"
		if p.Code == "" {
			field = "text"
		}
		return p, reject(ReasonTooLong, field, "message takes %d SMS, more than the maximum %d", p.Parts, most)
	}
	return p, nil
}
