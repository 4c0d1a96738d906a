package modemsim

import (
	"fmt"
	"testing"
)

// step is one exchange: what the DTE writes and exactly what the modem
// answers.
type step struct{ in, want string }

type transcript struct {
	name  string
	cfg   Config
	steps []step
}

const (
	ok    = "\r\nOK\r\n"
	erro  = "\r\nERROR\r\n"
	echo0 = "ATE0\r"
)

func info(lines ...string) string {
	s := ""
	for _, l := range lines {
		s += "\r\n" + l + "\r\n"
	}
	return s
}

// transcripts are checked both in-process and over the serial path.
func transcripts(t testing.TB) []transcript {
	otp := encode(t, "Your code is 123456", "+4526227921")[0]
	cmgs := fmt.Sprintf("AT+CMGS=%d\r", otp.len)
	half := len(otp.hex) / 2
	e0 := step{echo0, echo0 + ok}
	return []transcript{
		{name: "echo", steps: []step{
			{"AT\r", "AT\r" + ok},
			{"at\r", "at\r" + ok},
			{"ATE0\r", "ATE0\r" + ok},
			{"AT\r", ok},
			{"ATE1\r", ok},
			{"AT+CSQ\r", "AT+CSQ\r" + info("+CSQ: 20,99") + ok},
			{"ATE0\r", "ATE0\r" + ok},
			{"ATZ\r", ok},
			{"AT\r", "AT\r" + ok},
		}},
		{name: "fragments and noise", steps: []step{
			e0,
			{"\x00A", ""},
			{"T+C", ""},
			{"SQ\r\n", info("+CSQ: 20,99") + ok},
			{"\x1b\r\n\r\nAT\r\n", ok},
			{"xyz\x00\rAT\r", ok},
			{"AT+CSX\bQ\r", info("+CSQ: 20,99") + ok},
			{"AT\x1b\x00+C\nSQ\r", info("+CSQ: 20,99") + ok},
			{"at + csq\r", info("+CSQ: 20,99") + ok},
			{"A/", info("+CSQ: 20,99") + ok},
		}},
		{name: "chained", steps: []step{
			e0,
			{"AT+CMEE=1;+CREG=2\r", ok},
			{"AT+CMEE?;+CREG?\r", info("+CMEE: 1", `+CREG: 2,1,"1A2B","01A2B3C4"`) + ok},
			{"ATE0V1Q0X4&C1&D2\r", ok},
			{"AT+CPIN?;+CSQ\r", info("+CPIN: READY", "+CSQ: 20,99") + ok},
			{"AT;+CSQ;\r", info("+CSQ: 20,99") + ok},
			{"AT+CMEE=0;+FOO;+CMEE=2\r", erro},
			{"AT+CMEE?\r", info("+CMEE: 0") + ok},
			{"AT+CSQ+CSQ\r", erro},
			{"ATE0+CMEE=1\r", ok},
			{"AT+CMEE?\r", info("+CMEE: 1") + ok},
		}},
		{name: "unknown and invalid", steps: []step{
			e0,
			{"AT+CMEE=1\r", ok},
			{"AT+FOO\r", erro},
			{"AT^SYSINFO\r", erro},
			{"AT$QCSIMSTAT?\r", erro},
			{"ATY\r", erro},
			{"ATE2\r", erro},
			{"AT+CMEE=3\r", erro},
			{"AT+CMEE=x\r", erro},
			{"AT+CSQ?\r", erro},
			{"AT+CSQ=1\r", erro},
			{"AT+CGMI=?\r", ok},
			{"AT+CMEE\r", erro},
			{`AT+CSCA="123` + "\r", erro},
			{"ATD+4512345678;\r", "\r\nNO CARRIER\r\n"},
		}},
		{name: "identification", steps: []step{
			e0,
			{"ATI\r", "\r\nsimgate\r\nSIM-1\r\nRevision: 1.0\r\n" + ok},
			{"AT+CGMI;+GMM;+CGMR\r", info("simgate", "SIM-1", "1.0") + ok},
			{"AT+CGSN\r", info("356938035643809") + ok},
			{"AT+GSN\r", info("356938035643809") + ok},
			{"AT+CIMI\r", info("001010123456789") + ok},
			{"AT+GCAP\r", info("+GCAP: +CGSM") + ok},
		}},
		{name: "network and sms settings", steps: []step{
			e0,
			{"AT+COPS?\r", info(`+COPS: 0,0,"Simulated",7`) + ok},
			{"AT+COPS=3,2;+COPS?\r", info(`+COPS: 0,2,"00101",7`) + ok},
			{"AT+CEREG=2;+CEREG?\r", info(`+CEREG: 2,1,"1A2B","01A2B3C4",7`) + ok},
			{"AT+CREG?\r", info("+CREG: 0,1") + ok},
			{"AT+CREG=?\r", info("+CREG: (0-2)") + ok},
			{"AT+CMGF?\r", info("+CMGF: 0") + ok},
			{"AT+CMGF=?\r", info("+CMGF: (0,1)") + ok},
			{"AT+CSCA?\r", info(`+CSCA: "+4500000000",145`) + ok},
			{`AT+CSCA="+4511111111";+CSCA?` + "\r", info(`+CSCA: "+4511111111",145`) + ok},
			{"AT+CSMS?\r", info("+CSMS: 0,1,1,1") + ok},
			{"AT+CSMS=1\r", info("+CSMS: 1,1,1") + ok},
			{"AT+CNMI?\r", info("+CNMI: 0,0,0,0,0") + ok},
			{"AT+CNMI=2,1,0,1,0;+CNMI?\r", info("+CNMI: 2,1,0,1,0") + ok},
			{"AT+CNMI=?\r", info("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)") + ok},
			{"AT+CPMS?\r", info(`+CPMS: "SM",0,30,"SM",0,30,"SM",0,30`) + ok},
			{`AT+CPMS="ME","ME","ME"` + "\r", info("+CPMS: 0,30,0,30,0,30") + ok},
			{"AT+CPMS=?\r", info(`+CPMS: ("SM","ME","MT","SR"),("SM","ME","MT"),("SM","ME","MT")`) + ok},
			{"AT+CFUN?\r", info("+CFUN: 1") + ok},
			{"AT+CFUN=0;+CSQ;+CREG?\r", info("+CSQ: 99,99", "+CREG: 0,0") + ok + info("+CEREG: 0")},
			{"AT+CFUN=1;+CSQ;+CREG?\r", info("+CSQ: 20,99", "+CREG: 0,1") + ok + info(`+CEREG: 1,"1A2B","01A2B3C4",7`)},
			{"ATZ;+CNMI?;+CEREG?\r", info("+CNMI: 0,0,0,0,0", "+CEREG: 0,1") + "\r\nOK\r\n"},
		}},
		{name: "cmee forms", cfg: Config{PIN: "1234"}, steps: []step{
			e0,
			{"AT+CIMI\r", erro},
			{"AT+CMEE=1;+CIMI\r", "\r\n+CME ERROR: 11\r\n"},
			{"AT+CSCA?\r", "\r\n+CMS ERROR: 311\r\n"},
			{"AT+CMGS=20\r", "\r\n+CMS ERROR: 311\r\n"},
			{"AT+CMEE=2;+CIMI\r", "\r\n+CME ERROR: SIM PIN required\r\n"},
			{"AT+CPMS?\r", "\r\n+CMS ERROR: SIM PIN required\r\n"},
			{"AT+FOO\r", erro},
			{"AT+CMEE=0;+CMGS=20\r", erro},
		}},
		{name: "pin", cfg: Config{PIN: "1234"}, steps: []step{
			e0,
			{"AT+CMEE=1\r", ok},
			{"AT+CPIN?\r", info("+CPIN: SIM PIN") + ok},
			{"AT+CREG?;+COPS?\r", info("+CREG: 0,0", "+COPS: 0") + ok},
			{`AT+CPIN="0000"` + "\r", "\r\n+CME ERROR: 16\r\n"},
			{`AT+CPIN="1234"` + "\r", ok},
			{"AT+CPIN?\r", info("+CPIN: READY") + ok},
			{"AT+CREG?\r", info("+CREG: 0,1") + ok},
			{"AT+CIMI\r", info("001010123456789") + ok},
			{`AT+CPIN="1234"` + "\r", "\r\n+CME ERROR: 3\r\n"},
			{"AT+CFUN=1,1\r", ok},
			{"AT+CMEE=1;+CPIN?\r", "AT+CMEE=1;+CPIN?\r" + info("+CPIN: SIM PIN") + ok}, // ATE1 again after the reset
			{"AT+CPIN=1234\r", "AT+CPIN=1234\r" + ok},
		}},
		{name: "puk", cfg: Config{PIN: "1234", PUK: "12345678"}, steps: []step{
			e0,
			{"AT+CMEE=1;+CREG=1\r", ok},
			{`AT+CPIN="1111"` + "\r", "\r\n+CME ERROR: 16\r\n"},
			{`AT+CPIN="2222"` + "\r", "\r\n+CME ERROR: 16\r\n"},
			{`AT+CPIN="3333"` + "\r", "\r\n+CME ERROR: 16\r\n"},
			{"AT+CPIN?\r", info("+CPIN: SIM PUK") + ok},
			{`AT+CPIN="1234"` + "\r", "\r\n+CME ERROR: 16\r\n"},
			{"AT+CIMI\r", "\r\n+CME ERROR: 12\r\n"},
			{"AT+CMGS=20\r", "\r\n+CMS ERROR: 316\r\n"},
			{`AT+CPIN="12345678","4321"` + "\r", ok + "\r\n+CREG: 1\r\n"},
			{"AT+CPIN?\r", info("+CPIN: READY") + ok},
		}},
		{name: "cmgs", steps: []step{
			{cmgs, cmgs + "\r\n> "},
			{otp.hex + "\x1a", otp.hex + "\x1a" + info("+CMGS: 0") + ok},
			{cmgs, cmgs + "\r\n> "},
			{otp.hex + "\x1a", otp.hex + "\x1a" + info("+CMGS: 1") + ok},
			{"AT+CMGS=?\r", "AT+CMGS=?\r" + ok},
		}},
		{name: "pdu in two writes", steps: []step{
			e0,
			{cmgs, "\r\n> "},
			{otp.hex[:half], ""},
			{otp.hex[half:], ""},
			{"\x1a", info("+CMGS: 0") + ok},
		}},
		{name: "esc cancels", steps: []step{
			e0,
			{cmgs, "\r\n> "},
			{otp.hex + "\x1b", ok},
			{"AT\r", ok},
			{cmgs + otp.hex + "\x1a", "\r\n> " + info("+CMGS: 0") + ok},
		}},
		{name: "invalid pdu", steps: []step{
			e0,
			{"AT+CMEE=1\r", ok},
			{fmt.Sprintf("AT+CMGS=%d\r", otp.len+1), "\r\n> "},
			{otp.hex + "\x1a", "\r\n+CMS ERROR: 304\r\n"},
			{cmgs, "\r\n> "},
			{"ZZ" + otp.hex + "\x1a", "\r\n+CMS ERROR: 304\r\n"},
			{cmgs, "\r\n> "},
			{otp.hex[:len(otp.hex)-1] + "\x1a", "\r\n+CMS ERROR: 304\r\n"},
			{"AT+CMGS=0\r", "\r\n+CMS ERROR: 304\r\n"},
			{"AT+CMGS=abc\r", "\r\n+CMS ERROR: 304\r\n"},
			{"AT+CMGS\r", erro},
			{"AT+CMGS=2\r", "\r\n> "},
			{"0011\x1a", "\r\n+CMS ERROR: 304\r\n"}, // SMS-SUBMIT cut short
			{"AT+CMEE=2;+CMGS=1\r", "\r\n> "},
			{"0000\x1a", "\r\n+CMS ERROR: invalid PDU mode parameter\r\n"},
		}},
		{name: "not registered", cfg: Config{Registration: 2}, steps: []step{
			e0,
			{"AT+CMEE=1;+CREG?\r", info("+CREG: 0,2") + ok},
			{cmgs + otp.hex + "\x1a", "\r\n> " + "\r\n+CMS ERROR: 331\r\n"},
		}},
		{name: "text mode", steps: []step{
			e0,
			{"AT+CMGF=1\r", ok},
			{`AT+CMGS="+4526227921"` + "\r", "\r\n> "},
			{"Hello\rworld\x1a", "\r\n> " + info("+CMGS: 0") + ok},
			{`AT+CMGS="+4526227921"` + "\r", "\r\n> "},
			{"x\x1b", ok},
			{`AT+CMEE=1;+CMGS="12a"` + "\r", "\r\n+CMS ERROR: 305\r\n"},
		}},
		{name: "numeric result codes", steps: []step{
			e0,
			{"ATV0\r", "0\r"},
			{"AT+FOO\r", "4\r"},
			{"AT+CSQ\r", "+CSQ: 20,99\r\n0\r"},
			{"ATV1\r", ok},
			{"ATQ1\r", ""},
			{"AT+CSQ\r", info("+CSQ: 20,99")},
			{"ATQ0\r", ok},
		}},
		{name: "s registers", steps: []step{
			e0,
			{"ATS3?\r", info("013") + ok},
			{"ATS7=60;S7?\r", info("060") + ok},
			{"ATS99?\r", erro},
			{"ATS3=300\r", erro},
			{"ATS3=64\r", "@\nOK@\n"}, // V.250: the new S3 frames this result already
			{"AT@", "@\nOK@\n"},
			{"ATZ@\r", ok},
		}},
		{name: "empty storage", steps: []step{
			e0,
			{"AT+CMEE=1;+CPMS?\r", info(`+CPMS: "SM",0,30,"SM",0,30,"SM",0,30`) + ok},
			{`AT+CPMS="SR";+CPMS?` + "\r", info("+CPMS: 0,30", `+CPMS: "SR",0,30,"SM",0,30,"SM",0,30`) + ok},
			{`AT+CPMS="SM","SR"` + "\r", "\r\n+CMS ERROR: 302\r\n"},
			{`AT+CPMS="SM","SM","SR"` + "\r", "\r\n+CMS ERROR: 302\r\n"},
			{`AT+CPMS="XX"` + "\r", "\r\n+CMS ERROR: 302\r\n"},
			{"AT+CMGR=1\r", "\r\n+CMS ERROR: 321\r\n"},
			{"AT+CMGR=0\r", "\r\n+CMS ERROR: 321\r\n"},
			{"AT+CMGR\r", erro},
			{"AT+CMGR=\r", erro},
			{"AT+CMGR=?\r", ok},
			{"AT+CMGL\r", ok},
			{"AT+CMGL=4\r", ok},
			{"AT+CMGL=5\r", erro},
			{"AT+CMGL=?\r", info("+CMGL: (0-4)") + ok},
			{"AT+CMGD=1\r", ok},
			{"AT+CMGD=31\r", "\r\n+CMS ERROR: 321\r\n"},
			{"AT+CMGD=1,4;+CMGD=,1\r", ok},
			{"AT+CMGD=1,5\r", erro},
			{"AT+CMGD=?\r", info("+CMGD: (),(0-4)") + ok},
			{`AT+CPMS="SM";+CMGR=1` + "\r", info("+CPMS: 0,30") + "\r\n+CMS ERROR: 321\r\n"},
			{"AT+CMGF=1;+CMGL=?\r", info(`+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")`) + ok},
			{`AT+CMGL="ALL";+CMGL="rec read";+CMGL` + "\r", ok},
			{`AT+CMGL=4` + "\r", erro},
		}},
		{name: "storage needs the sim", cfg: Config{PIN: "1234"}, steps: []step{
			e0,
			{"AT+CMEE=1;+CMGR=1\r", "\r\n+CMS ERROR: 311\r\n"},
			{"AT+CMGL=4\r", "\r\n+CMS ERROR: 311\r\n"},
			{"AT+CMGD=1\r", "\r\n+CMS ERROR: 311\r\n"},
		}},
		{name: "reports only stored", cfg: Config{StoreReports: true}, steps: []step{
			e0,
			{"AT+CNMI=?\r", info("+CNMI: (0-3),(0-3),(0,2),(0,2),(0,1)") + ok},
			{"AT+CMEE=1;+CNMI=2,1,0,1,0\r", "\r\n+CMS ERROR: 303\r\n"},
			{"AT+CNMI?\r", info("+CNMI: 0,0,0,0,0") + ok},
			{"AT+CNMI=2,1,0,2,0;+CNMI?\r", info("+CNMI: 2,1,0,2,0") + ok},
		}},
		{name: "cnma without indication", steps: []step{
			e0,
			{"AT+CMEE=1;+CNMA\r", "\r\n+CMS ERROR: 340\r\n"},
		}},
	}
}

// TestTranscriptsLocal runs the transcripts through the interpreter alone.
func TestTranscriptsLocal(t *testing.T) {
	for _, tc := range transcripts(t) {
		t.Run(tc.name, func(t *testing.T) {
			l := newLocal(t, tc.cfg)
			for i, s := range tc.steps {
				if got := l.exchange(s.in); got != s.want {
					t.Fatalf("step %d: %q: got %q, want %q", i, s.in, got, s.want)
				}
			}
		})
	}
}

// TestTranscriptsSerial runs the transcripts through a pseudo-terminal
// opened with go.bug.st/serial, the way the daemon talks to a modem.
func TestTranscriptsSerial(t *testing.T) {
	for _, tc := range transcripts(t) {
		t.Run(tc.name, func(t *testing.T) {
			m := start(t, tc.cfg)
			c := dial(t, m.Path())
			for i, s := range tc.steps {
				c.write(s.in)
				if got := c.readN(len(s.want)); got != s.want {
					t.Fatalf("step %d: %q: got %q, want %q", i, s.in, got, s.want)
				}
			}
			// Nothing more than expected: the next command's answer comes
			// first.
			c.write("\x1bATE1Q0V1S3=13\rAT\r")
			if got := c.readUntil("AT\r"); len(got) > 200 {
				t.Fatalf("unexpected trailing output %q", got)
			}
		})
	}
}
