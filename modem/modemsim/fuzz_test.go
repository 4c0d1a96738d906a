package modemsim

import (
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/tpdu"
)

// fuzzConfig is the modem FuzzInput drives: status reports are never due
// during a run (their timing would make the output differ), but one is
// stored in "SR" beforehand (storeOne).
var fuzzConfig = Config{PIN: "1234", PUK: "1", ReportDelay: time.Hour}

// storeOne puts a status report in the "SR" memory, at a fixed time.
func storeOne(l *local) {
	at := time.Date(2026, 11, 23, 11, 29, 6, 0, time.UTC)
	l.ip.mu.Lock()
	defer l.ip.mu.Unlock()
	l.ip.set.cnmi[3] = 2
	l.ip.route(&pendingReport{
		sub: Submission{MR: 42, To: "+4526227921", At: at},
		ra:  tpdu.Address{TOA: 0x91, Addr: "4526227921"},
	}, at.Add(time.Minute))
	l.ip.set.cnmi[3] = 0
	l.out.take()
}

// FuzzInput feeds arbitrary bytes to the command interpreter. It must never
// panic, and its output must not depend on how the input is fragmented.
func FuzzInput(f *testing.F) {
	for _, tc := range transcripts(f) {
		var in string
		for _, s := range tc.steps {
			in += s.in
		}
		f.Add([]byte(in))
	}
	f.Add([]byte("AT+CMGS=1\r00\x1a"))
	f.Add([]byte("AT+CMGF=1;+CSCS=\"UCS2\";+CMGS=\"002B0034\"\r0041\x1a"))
	f.Add([]byte("ATS3=65AATS5=8AAT\b\bA"))
	f.Add([]byte("A/A/AT+CPIN=\"1\",\"2\"\rAT+COPS=1,2,\"00101\"\r"))
	f.Add([]byte("AT+CPIN=1234\rAT+CPMS=\"SR\";+CMGR=1;+CMGL=4;+CMGD=?;+CMGD=1;+CMGR=1\r"))
	f.Add([]byte("AT+CPIN=1234\rAT+CPMS=\"sr\";+CMGF=1;+CSCS=\"UCS2\";+CMGL=\"ALL\";+CMGD=,4\r"))
	f.Add([]byte("AT+CSMS=1;+CNMI=2,1,0,1,0;+CNMA;+CNMI=?\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := newLocal(t, fuzzConfig)
		storeOne(whole)
		whole.ip.feed(data)
		bytewise := newLocal(t, fuzzConfig)
		storeOne(bytewise)
		for i := range data {
			bytewise.ip.feed(data[i : i+1])
		}
		if a, b := whole.out.take(), bytewise.out.take(); a != b {
			t.Fatalf("fragmentation changes the output:\n whole %q\nbytes %q", a, b)
		}
	})
}
