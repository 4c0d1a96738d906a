package redact

import (
	"reflect"
	"testing"
)

func TestSent(t *testing.T) {
	const pdu = "0011000B915462227912F10000AA05C8329BFD06"
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ATZ\r\n", []string{"ATZ"}},
		{"ATE0\r\n", []string{"ATE0"}},
		{"\x1b\r\n", []string{"<ESC>"}},
		{"AT+CMEE=1\r\n", []string{"AT+CMEE=1"}},
		{"at+cpin=\"1234\"\r\n", []string{`AT+CPIN="****"`}},
		{"AT+CMGS=20\r", []string{"AT+CMGS=**"}},
		{pdu + "\x1a", []string{"[41 bytes withheld]"}},
		{"ATTACK at 1234\rsecond line\x1a", []string{"[27 bytes withheld]"}}, // a text entry
		{"\x1b", []string{"<ESC>"}},
		{pdu + "\r\n", []string{"[40 bytes withheld]"}}, // not a command: withheld
		{"", nil},
		{"AT\r\nAT+CSQ\r\n", []string{"AT", "AT+CSQ"}},
	} {
		if got := Sent([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Sent(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResponses(t *testing.T) {
	const reportPDU = "0006D60B911326880736F4111011719551401110117195714000"
	var r Responses
	for i, tc := range []struct{ in, want string }{
		{"OK", "OK"},
		{"+CPIN: SIM PIN", "+CPIN: SIM PIN"},
		{"+CSQ: 17,99", "+CSQ: 17,99"},
		{"+CMGS: 12", "+CMGS: 12"},
		{"+CME ERROR: 16", "+CME ERROR: 16"},
		{"490154203237518", "***************"}, // IMEI
		{`+CSCA: "+4500000000",145`, `+CSCA: "+**********",145`},
		{`+CREG: 2,1,"1A2B","01A2B3C4"`, `+CREG: 2,1,"1A2B","01A2B3C4"`},
		{"+CDS: 25", "+CDS: 25"},
		{"", ""}, // the message is still to come
		{reportPDU, "[52 bytes withheld]"},
		{"OK", "OK"},
		{`+CMGR: 0,,25`, `+CMGR: 0,,25`},
		{"short", "[5 bytes withheld]"},
		{`+CMT: "+4526227921",,"24/01/01,12:00:00+04"`, `+CMT: "+**********",,"24/01/01,12:00:00+04"`},
		{"Your code is 034812", "[19 bytes withheld]"},
		{`+CMTI: "SM",3`, `+CMTI: "SM",3`},
		{reportPDU, "[52 bytes withheld]"}, // a PDU, wherever it comes
		{"junk " + reportPDU, "[57 bytes withheld]"},
		{`AT+CPIN="1234"`, `AT+CPIN="****"`}, // echo
		{"ATE0", "ATE0"},
		{"0011000B915462227912F1\x1a", "[23 bytes withheld]"}, // an echoed entry
		{"secret text\x1a+CMGS: 4", "[12 bytes withheld] +CMGS: 4"},
	} {
		if got := r.Line(tc.in); got != tc.want {
			t.Errorf("%d: Line(%q) = %q, want %q", i, tc.in, got, tc.want)
		}
	}
}
