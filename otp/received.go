package otp

import (
	"strings"
	"time"
)

// Messages the modems receive (replies, STOP requests, operator notices,
// balance messages) are published on sms.received.<modem>, kept in
// stream SMS_IN.
const (
	StreamInbound   = "SMS_IN"
	SubjectReceived = "sms.received"
)

// ReceivedSubject returns the subject of the messages modem receives.
func ReceivedSubject(modem string) string { return SubjectReceived + "." + modem }

// Received is a message a modem received, its parts reassembled, as
// published on sms.received.<modem>. Nothing of it is logged.
type Received struct {
	Modem string `json:"modem"`
	// From is the sender: masked ("+45******21", inbound.sender: masked,
	// the default) or in full; a name an operator sends from ("Telco")
	// as it came.
	From string `json:"from"`
	Text string `json:"text"`
	// Encoding is the alphabet of its parts: gsm7, ucs2 or 8bit.
	Encoding string `json:"encoding"`
	// Sent is the service centre's time stamp; absent when it could not
	// be read.
	Sent time.Time `json:"sent,omitzero"`
	// Parts is how many parts it came in; Missing how many of them never
	// came (it is then published as it is after inbound.reassembly_timeout).
	Parts   int `json:"parts"`
	Missing int `json:"missing,omitempty"`
	// Time is when simgate had it whole; Node the daemon that did.
	Time time.Time `json:"time"`
	Node string    `json:"node,omitempty"`
}

// MaskSender masks the sender of a received message: a number as Masked
// does ("+45******21"), national digits as MaskRaw does; a name an
// operator sends from (letters) stays as it is.
func MaskSender(from string) string {
	digits := strings.TrimPrefix(from, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return from
	}
	if n, err := ParseNumber(from, ""); err == nil && strings.HasPrefix(from, "+") {
		return n.Masked()
	}
	return MaskRaw(from)
}
