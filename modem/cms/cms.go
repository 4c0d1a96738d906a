// Package cms is the table of +CMS ERROR values that the driver (package
// modem) and the simulator (modem/modemsim) share: the verbose text of each
// value, as a modem gives it after AT+CMEE=2, and whether a message
// refused with it can ever be sent.
//
// Values 0-127 are the RP causes of 3GPP TS 24.011 §E.2 that a network
// gives for a failed submission, 128-255 the TP-FCS values of TS 23.040
// §9.2.3.22, and 300-511 the ME and TA errors of TS 27.005 §3.2.5. Values
// from 512 are the manufacturer's.
package cms

import "slices"

// Error describes one +CMS ERROR value.
type Error struct {
	// Code is the value, as a modem gives it after AT+CMEE=1.
	Code int
	// Text is the value as a modem gives it after AT+CMEE=2.
	Text string
	// Permanent is set when a message refused with this value will never
	// be sent: the destination is invalid or barred, the message is
	// malformed, or the SIM is unusable. Other values are retryable.
	Permanent bool
	// Account names, for values the network gives when it refuses the
	// SIM's own subscription rather than one message, the cause: "barred"
	// (operator determined barring, call barred: a prepaid SIM out of
	// credit is commonly barred so) or "not_subscribed" (no SMS service on
	// the subscription). Every message of the SIM fails alike.
	Account string
}

// table holds the values with a standard text, in increasing order of
// Code. It is never modified.
var table = [...]Error{
	// RP causes (TS 24.011 §E.2).
	{Code: 1, Text: "unassigned (unallocated) number", Permanent: true},
	{Code: 8, Text: "operator determined barring", Permanent: true, Account: "barred"},
	{Code: 10, Text: "call barred", Permanent: true, Account: "barred"},
	{Code: 21, Text: "short message transfer rejected", Permanent: true},
	{Code: 27, Text: "destination out of service"},
	{Code: 28, Text: "unidentified subscriber"},
	{Code: 29, Text: "facility rejected", Permanent: true},
	{Code: 30, Text: "unknown subscriber", Permanent: true},
	{Code: 38, Text: "network out of order"},
	{Code: 41, Text: "temporary failure"},
	{Code: 42, Text: "congestion"},
	{Code: 47, Text: "resources unavailable, unspecified"},
	{Code: 50, Text: "requested facility not subscribed", Permanent: true, Account: "not_subscribed"},
	{Code: 69, Text: "requested facility not implemented", Permanent: true},
	{Code: 81, Text: "invalid short message transfer reference value"},
	{Code: 95, Text: "invalid message, unspecified"},
	{Code: 96, Text: "invalid mandatory information", Permanent: true},
	{Code: 97, Text: "message type non-existent or not implemented", Permanent: true},
	{Code: 98, Text: "message not compatible with short message protocol state", Permanent: true},
	{Code: 99, Text: "information element non-existent or not implemented", Permanent: true},
	{Code: 111, Text: "protocol error, unspecified", Permanent: true},
	{Code: 127, Text: "interworking, unspecified", Permanent: true},

	// ME and TA failures (TS 27.005 §3.2.5).
	{Code: 300, Text: "ME failure"},
	{Code: 301, Text: "SMS service of ME reserved"},
	{Code: 302, Text: "operation not allowed"},
	{Code: 303, Text: "operation not supported", Permanent: true},
	{Code: 304, Text: "invalid PDU mode parameter", Permanent: true},
	{Code: 305, Text: "invalid text mode parameter", Permanent: true},
	{Code: 310, Text: "SIM not inserted", Permanent: true},
	{Code: 311, Text: "SIM PIN required"},
	{Code: 312, Text: "PH-SIM PIN required"},
	{Code: 313, Text: "SIM failure", Permanent: true},
	{Code: 314, Text: "SIM busy"},
	{Code: 315, Text: "SIM wrong", Permanent: true},
	{Code: 316, Text: "SIM PUK required", Permanent: true},
	{Code: 317, Text: "SIM PIN2 required"},
	{Code: 318, Text: "SIM PUK2 required", Permanent: true},
	{Code: 320, Text: "memory failure"},
	{Code: 321, Text: "invalid memory index"},
	{Code: 322, Text: "memory full"},
	{Code: 330, Text: "SMSC address unknown"},
	{Code: 331, Text: "no network service"},
	{Code: 332, Text: "network timeout"},
	{Code: 340, Text: "no +CNMA acknowledgement expected"},
	{Code: 500, Text: "unknown error"},
}

// Lookup returns the table's entry for code and whether it has one.
func Lookup(code int) (Error, bool) {
	i, ok := slices.BinarySearchFunc(table[:], code, func(e Error, code int) int { return e.Code - code })
	if !ok {
		return Error{}, false
	}
	return table[i], true
}

// Accounts returns the account causes the table names (Error.Account),
// each once.
func Accounts() []string {
	var causes []string
	for _, e := range table {
		if e.Account != "" && !slices.Contains(causes, e.Account) {
			causes = append(causes, e.Account)
		}
	}
	return causes
}

// Text returns the verbose text of code, or "" when it has no standard
// text.
func Text(code int) string {
	e, _ := Lookup(code)
	return e.Text
}

// IsPermanent reports whether a message refused with code will never be
// sent: a value the table marks Permanent, or a TP-FCS value (the message
// or its destination is wrong) other than SC busy (0xC0), SC system
// failure (0xC2), error in MS (0xD2), SIM Application Toolkit busy (0xD4)
// and unspecified (0xFF), which may pass on a later try. Any other value,
// including those the table does not know (a manufacturer's 512 is often a
// collision with an incoming SMS), is retryable: the caller bounds the
// number of attempts.
func IsPermanent(code int) bool {
	if e, ok := Lookup(code); ok {
		return e.Permanent
	}
	if code >= 128 && code <= 255 {
		switch code {
		case 0xC0, 0xC2, 0xD2, 0xD4, 0xFF:
			return false
		}
		return true
	}
	return false
}
