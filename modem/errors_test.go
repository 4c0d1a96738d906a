package modem

import (
	"errors"
	"fmt"
	"testing"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/gsm"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		class  Class
		code   string
		broken bool
	}{
		{at.CMSError("42"), Retryable, "42", false},                           // congestion
		{at.CMSError("38"), Retryable, "38", false},                           // network out of order
		{at.CMSError("512"), Retryable, "512", false},                         // vendor: collision with incoming SMS
		{at.CMSError("331"), Retryable, "331", false},                         // no network service
		{at.CMSError("314"), Retryable, "314", false},                         // SIM busy
		{at.CMSError("1"), Permanent, "1", false},                             // unassigned number
		{at.CMSError("8"), Permanent, "8", false},                             // operator determined barring
		{at.CMSError("304"), Permanent, "304", false},                         // invalid PDU
		{at.CMSError("195"), Permanent, "195", false},                         // 0xC3 invalid SME address
		{at.CMSError("192"), Retryable, "192", false},                         // 0xC0 SC busy
		{at.CMSError(" 500 "), Retryable, "500", false},                       // unknown error
		{at.CMSError("network timeout"), Retryable, "network timeout", false}, // textual
		{at.CMEError("10"), Retryable, "10", false},
		{at.ErrError, Retryable, "", false},
		{gsm.ErrMalformedResponse, Unknown, "", false}, // OK without +CMGS
		{at.ErrDeadlineExceeded, Unknown, "", true},
		{at.ErrClosed, Unknown, "", true},
		{fmt.Errorf("wrapped: %w", at.ErrClosed), Unknown, "", true},
		{errors.New("other"), Retryable, "", false},
	} {
		se := classify(tc.err, 0)
		if se.Class != tc.class || se.Code != tc.code || se.Broken != tc.broken {
			t.Errorf("%v: class %s code %q broken %v, want %s %q %v", tc.err, se.Class, se.Code, se.Broken, tc.class, tc.code, tc.broken)
		}
		if !errors.Is(se, tc.err) {
			t.Errorf("%v: SendError does not wrap the cause", tc.err)
		}
	}
	// The account causes come from +CMS values only: +CME 10 (SIM not
	// inserted) shares a number with +CMS 10 (call barred).
	for err, want := range map[error]string{
		at.CMSError("8"): "barred", at.CMSError("10"): "barred", at.CMSError("50"): "not_subscribed",
		at.CMEError("10"): "", at.CMEError("8"): "", at.CMSError("42"): "", at.ErrError: "",
	} {
		if got := classify(err, 0).Account; got != want {
			t.Errorf("%v: account cause %q, want %q", err, got, want)
		}
	}
}
