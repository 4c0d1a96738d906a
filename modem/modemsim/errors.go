package modemsim

import (
	"errors"
	"strconv"
)

// Errors reported by command handlers. The interpreter turns them into
// final result codes.
var (
	// errSyntax is a V.250 error: unknown command, bad syntax or a
	// parameter out of range. It always gives "ERROR".
	errSyntax = errors.New("syntax error")
	// errNoCarrier gives the "NO CARRIER" result code (ATA, ATO).
	errNoCarrier = errors.New("no carrier")
	// errSuspend tells the line executor that the command now waits for
	// more input (the PDU or text after AT+CMGS).
	errSuspend = errors.New("waiting for message entry")
	// errAborted means the modem is closing: nothing more is written.
	errAborted = errors.New("aborted")
)

// cmeError is a 3GPP TS 27.007 +CME ERROR code.
type cmeError int

func (e cmeError) Error() string { return "+CME ERROR: " + strconv.Itoa(int(e)) }

// cmsError is a 3GPP TS 27.005 +CMS ERROR code.
type cmsError int

func (e cmsError) Error() string { return "+CMS ERROR: " + strconv.Itoa(int(e)) }

// +CME ERROR codes (3GPP TS 27.007 §9.2).
const (
	cmeOperationNotAllowed   cmeError = 3
	cmeOperationNotSupported cmeError = 4
	cmeSIMPINRequired        cmeError = 11
	cmeSIMPUKRequired        cmeError = 12
	cmeSIMFailure            cmeError = 13
	cmeIncorrectPassword     cmeError = 16
	cmeNetworkNotAllowed     cmeError = 32
)

// +CMS ERROR codes (3GPP TS 27.005 §3.2.5) the simulator gives of its own
// accord; their texts are in package cms, with those of any code
// FailNextSends or Config.FailCodes may give.
const (
	cmsOperationNotAllowed   cmsError = 302
	cmsOperationNotSupported cmsError = 303
	cmsInvalidPDUParam       cmsError = 304
	cmsInvalidTextParam      cmsError = 305
	cmsSIMPINRequired        cmsError = 311
	cmsSIMFailure            cmsError = 313
	cmsSIMPUKRequired        cmsError = 316
	cmsInvalidMemIndex       cmsError = 321
	cmsMemoryFull            cmsError = 322
	cmsSMSCUnknown           cmsError = 330
	cmsNoNetworkService      cmsError = 331
	cmsNoCNMAExpected        cmsError = 340
)

// cmeText returns the verbose (+CMEE=2) text of a +CME ERROR code, or ""
// when the code has no standard text.
func cmeText(code int) string {
	switch code {
	case 0:
		return "phone failure"
	case 1:
		return "no connection to phone"
	case 2:
		return "phone-adaptor link reserved"
	case 3:
		return "operation not allowed"
	case 4:
		return "operation not supported"
	case 5:
		return "PH-SIM PIN required"
	case 10:
		return "SIM not inserted"
	case 11:
		return "SIM PIN required"
	case 12:
		return "SIM PUK required"
	case 13:
		return "SIM failure"
	case 14:
		return "SIM busy"
	case 15:
		return "SIM wrong"
	case 16:
		return "incorrect password"
	case 17:
		return "SIM PIN2 required"
	case 18:
		return "SIM PUK2 required"
	case 20:
		return "memory full"
	case 21:
		return "invalid index"
	case 22:
		return "not found"
	case 23:
		return "memory failure"
	case 24:
		return "text string too long"
	case 25:
		return "invalid characters in text string"
	case 26:
		return "dial string too long"
	case 27:
		return "invalid characters in dial string"
	case 30:
		return "no network service"
	case 31:
		return "network timeout"
	case 32:
		return "network not allowed - emergency calls only"
	case 50:
		return "incorrect parameters"
	case 100:
		return "unknown"
	}
	return ""
}
