package modemsim

import (
	"fmt"
	"testing"

	"github.com/simgate/simgate/modem/cms"
)

// Every +CMS ERROR the simulator gives of its own accord has its text in
// the shared table, so AT+CMEE=2 answers it verbosely.
func TestCMSErrorsHaveText(t *testing.T) {
	for _, e := range []cmsError{
		cmsOperationNotAllowed, cmsOperationNotSupported, cmsInvalidPDUParam,
		cmsInvalidTextParam, cmsSIMPINRequired, cmsSIMFailure, cmsSIMPUKRequired,
		cmsInvalidMemIndex, cmsSMSCUnknown, cmsNoNetworkService, cmsNoCNMAExpected,
	} {
		if cms.Text(int(e)) == "" {
			t.Errorf("%v has no text in package cms", e)
		}
	}
}

func TestVerboseCMSError(t *testing.T) {
	l := newLocal(t, Config{})
	l.exchange("ATE0;+CMEE=2\r")
	for code, want := range map[int]string{
		42:  "\r\n+CMS ERROR: congestion\r\n",
		195: "\r\n+CMS ERROR: 195\r\n", // no standard text: numeric
		512: "\r\n+CMS ERROR: 512\r\n",
	} {
		l.modem().FailNextSends(code)
		p := encode(t, "x", "+4526227921")[0]
		got := l.exchange(fmt.Sprintf("AT+CMGS=%d\r", p.len) + p.hex + "\x1a")
		if got != "\r\n> "+want {
			t.Errorf("code %d: got %q, want %q", code, got, want)
		}
	}
}
