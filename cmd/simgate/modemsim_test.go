package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"go.bug.st/serial"

	"github.com/simgate/simgate/modem/modemsim"
)

// simTimeout bounds every wait of the modemsim tests.
const simTimeout = 5 * time.Second

// startModemsim runs "simgate modemsim" in-process with args and returns the
// device it prints, and a function that stops it and returns its error.
func startModemsim(t *testing.T, args ...string) (path string, stop func() error) {
	t.Helper()
	return startModemsimIn(t, strings.NewReader(""), args...)
}

// startModemsimIn is startModemsim with stdin as the command's standard
// input.
func startModemsimIn(t *testing.T, stdin io.Reader, args ...string) (path string, stop func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd(io.Discard, pw)
		cmd.SetIn(stdin)
		cmd.SetArgs(append([]string{"modemsim"}, args...))
		done <- cmd.ExecuteContext(ctx)
		pw.Close()
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("modemsim: %v", err)
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "simulated modem on "); ok {
				found <- p
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case path = <-found:
		return path, stop
	case err := <-done:
		stopped = true
		t.Fatalf("modemsim ended: %v", err)
	case <-time.After(simTimeout):
		t.Fatal("modemsim did not start")
	}
	return "", stop
}

// simPort is an AT client of the simulated modem.
type simPort struct {
	t       *testing.T
	port    serial.Port
	chunks  chan []byte
	pending []byte
}

func openSim(t *testing.T, path string) *simPort {
	t.Helper()
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	p := &simPort{t: t, port: port, chunks: make(chan []byte, 256)}
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := port.Read(buf)
			if n > 0 {
				p.chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				close(p.chunks)
				return
			}
		}
	}()
	t.Cleanup(func() { port.Close() })
	return p
}

// until returns what was received up to and including the first match of
// re.
func (p *simPort) until(re *regexp.Regexp) string {
	p.t.Helper()
	deadline := time.After(simTimeout)
	for !re.Match(p.pending) {
		select {
		case b, ok := <-p.chunks:
			if !ok {
				p.t.Fatalf("port closed waiting for %v, got %q", re, p.pending)
			}
			p.pending = append(p.pending, b...)
		case <-deadline:
			p.t.Fatalf("timeout waiting for %v, got %q", re, p.pending)
		}
	}
	end := re.FindIndex(p.pending)[1]
	s := string(p.pending[:end])
	p.pending = p.pending[end:]
	return s
}

var finalRE = regexp.MustCompile(`\r\n(OK|ERROR|\+CM[ES] ERROR: [^\r]*)\r\n`)

// at sends a command line and returns the answer up to its final result
// code.
func (p *simPort) at(line string) string {
	p.t.Helper()
	if _, err := p.port.Write([]byte(line + "\r")); err != nil {
		p.t.Fatal(err)
	}
	return p.until(finalRE)
}

// sendSRR sends an SMS that requests a status report and returns the answer.
func (p *simPort) sendSRR(text, to string) string {
	p.t.Helper()
	tpdus, err := sms.Encode([]byte(text), sms.To(to))
	if err != nil {
		p.t.Fatal(err)
	}
	tpdus[0].FirstOctet |= tpdu.FoSRR
	b, _ := tpdus[0].MarshalBinary()
	h, _ := (&pdumode.PDU{TPDU: b}).MarshalHexString()
	p.port.Write([]byte(fmt.Sprintf("AT+CMGS=%d\r", len(b))))
	s := p.until(regexp.MustCompile(`> `))
	p.port.Write([]byte(h + "\x1a"))
	return s + p.until(finalRE)
}

var cdsRE = regexp.MustCompile(`\r\n\+CDS: (\d+)\r\n([0-9A-F]+)\r\n`)

// report waits for a +CDS and decodes it.
func (p *simPort) report() *tpdu.TPDU {
	p.t.Helper()
	m := cdsRE.FindStringSubmatch(p.until(cdsRE))
	pdu, err := pdumode.UnmarshalHexString(m[2])
	if err != nil {
		p.t.Fatal(err)
	}
	if fmt.Sprint(len(pdu.TPDU)) != m[1] {
		p.t.Errorf("+CDS: %s with a TPDU of %d octets", m[1], len(pdu.TPDU))
	}
	tp, err := sms.Unmarshal(pdu.TPDU, sms.AsMT)
	if err != nil {
		p.t.Fatal(err)
	}
	return tp
}

func TestModemsimFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		run  func(t *testing.T, p *simPort)
	}{
		{"report status", []string{"--report-status", "0x46", "--report-delay", "0"}, func(t *testing.T, p *simPort) {
			p.at("ATE0;+CNMI=2,1,0,1,0")
			p.sendSRR("Your code is 123456", "+4526227921")
			if r := p.report(); r.ST != 0x46 || r.MR != 0 || r.RA.Number() != "+4526227921" {
				t.Errorf("report %+v", r)
			}
		}},
		{"report fail rate", []string{"--report-fail-rate", "1", "--report-delay", "10ms"}, func(t *testing.T, p *simPort) {
			p.at("ATE0;+CNMI=2,1,0,1,0")
			p.sendSRR("Your code is 123456", "+4526227921")
			if r := p.report(); r.ST != 0x41 {
				t.Errorf("report %+v", r)
			}
		}},
		{"report drop rate", []string{"--report-drop-rate", "1", "--report-delay", "0"}, func(t *testing.T, p *simPort) {
			p.at("ATE0;+CNMI=2,1,0,2,0")
			p.sendSRR("Your code is 123456", "+4526227921")
			// No event says that nothing came: this only fails when a
			// report came.
			p.at("AT")
			if got := p.at(`AT+CPMS="SR"`); !strings.Contains(got, "+CPMS: 0,30") {
				t.Errorf("stored reports: %q", got)
			}
		}},
		{"store reports", []string{"--store-reports", "--report-delay", "0"}, func(t *testing.T, p *simPort) {
			if got := p.at("ATE0;+CMEE=1;+CNMI=?"); !strings.Contains(got, "+CNMI: (0-3),(0-3),(0,2),(0,2),(0,1)") {
				t.Errorf("CNMI=?: %q", got)
			}
			if got := p.at("AT+CNMI=2,1,0,1,0"); got != "\r\n+CMS ERROR: 303\r\n" {
				t.Errorf("ds=1: %q", got)
			}
			p.at("AT+CNMI=2,1,0,2,0")
			p.sendSRR("Your code is 123456", "+4526227921")
			p.until(regexp.MustCompile(`\r\n\+CDSI: "SR",1\r\n`))
			if got := p.at(`AT+CPMS="SR";+CMGR=1`); !strings.Contains(got, "+CMGR: 0,,") {
				t.Errorf("CMGR: %q", got)
			}
		}},
		{"urc rate", []string{"--urc-rate", "1"}, func(t *testing.T, p *simPort) {
			if got := p.at("ATE0;+CSQ"); got != "ATE0;+CSQ\r\r\n+CMTI: \"SM\",1\r\n\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",2\r\n\r\nOK\r\n" {
				t.Errorf("%q", got)
			}
		}},
		{"hang rate", []string{"--hang-rate", "1", "--hang-for", "300ms", "--send-delay", "0"}, func(t *testing.T, p *simPort) {
			p.at("ATE0")
			tpdus, _ := sms.Encode([]byte("x"), sms.To("+4526227921"))
			b, _ := tpdus[0].MarshalBinary()
			h, _ := (&pdumode.PDU{TPDU: b}).MarshalHexString()
			p.port.Write([]byte(fmt.Sprintf("AT+CMGS=%d\r", len(b))))
			p.until(regexp.MustCompile(`> `))
			sent := time.Now()
			p.port.Write([]byte(h + "\x1a"))
			// Recovery has no event: ask until the modem answers.
			deadline := time.After(simTimeout)
			for !bytes.Contains(p.pending, []byte("\r\nOK\r\n")) {
				p.port.Write([]byte("AT\r"))
				select {
				case b := <-p.chunks:
					p.pending = append(p.pending, b...)
				case <-time.After(20 * time.Millisecond):
				case <-deadline:
					t.Fatalf("no answer after the hang: %q", p.pending)
				}
			}
			if d := time.Since(sent); d < 300*time.Millisecond {
				t.Errorf("answered after %v", d)
			}
			if bytes.Contains(p.pending, []byte("+CMGS")) {
				t.Errorf("answer not lost: %q", p.pending)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			path, _ := startModemsim(t, append(tc.args, "--out", out, "--send-delay", "0")...)
			tc.run(t, openSim(t, path))
		})
	}
}

// TestModemsimOutput checks the JSON lines of --out, and that a seed
// repeats the random faults.
func TestModemsimOutput(t *testing.T) {
	session := func(seed string) (answers string, msgs []modemsim.Message) {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		path, stop := startModemsim(t, "--out", out, "--send-delay", "0", "--seed", seed,
			"--fail-rate", "0.3", "--urc-rate", "0.3")
		p := openSim(t, path)
		var all strings.Builder
		all.WriteString(p.at("ATE0;+CMEE=1"))
		for i := range 10 {
			all.WriteString(p.sendSRR(fmt.Sprintf("message %d", i), "+4526227921"))
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var m modemsim.Message
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		return all.String(), msgs
	}
	a, msgs := session("3")
	b, _ := session("3")
	if a != b {
		t.Errorf("same seed, different answers:\n%q\n%q", a, b)
	}
	if n := strings.Count(a, "+CMGS:"); n != len(msgs) || n == 0 || n == 10 || !strings.Contains(a, "+CMTI:") {
		t.Errorf("%d sent, %d messages written: %q", n, len(msgs), a)
	}
	if len(msgs) > 0 && (msgs[0].Modem != "sim1" || msgs[0].To != "+4526227921" || !msgs[0].SRR || !strings.HasPrefix(msgs[0].Text, "message ")) {
		t.Errorf("message %+v", msgs[0])
	}
}

func TestModemsimBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--report-fail-rate", "2"},
		{"--report-drop-rate", "-0.5"},
		{"--hang-rate", "-1"},
		{"--hang-for", "-1s"},
		{"--urc-rate", "1.5"},
		{"--report-status", "256"},
		{"--report-delay", "-1s"},
	} {
		// An accepted configuration runs until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), simTimeout)
		cmd := newRootCmd(io.Discard, io.Discard)
		cmd.SetArgs(append([]string{"modemsim", "--out", filepath.Join(t.TempDir(), "out")}, args...))
		if err := cmd.ExecuteContext(ctx); err == nil {
			t.Errorf("%v accepted", args)
		}
		cancel()
	}
}

// TestModemsimIncomingAndUSSD: a line on standard input arrives as an
// incoming SMS; --ussd answers AT+CUSD.
func TestModemsimIncomingAndUSSD(t *testing.T) {
	in, feed := io.Pipe()
	defer feed.Close()
	path, _ := startModemsimIn(t, in, "--ussd", "*100#=Your balance is 12.34 EUR")
	p := openSim(t, path)
	p.at("ATE0;+CMGF=0;+CNMI=2,1,0,0,0")
	if _, err := feed.Write([]byte("+4526227921 STOP\n")); err != nil {
		t.Fatal(err)
	}
	p.until(regexp.MustCompile(`\+CMTI: "SM",1\r\n`))
	if got := p.at("AT+CPMS=\"SM\";+CMGL=4"); !strings.Contains(got, "+CMGL: 1,0,,") {
		t.Errorf("stored: %q", got)
	}
	p.at(`AT+CUSD=1,"*100#",15`)
	p.until(regexp.MustCompile(`\+CUSD: 0,"Your balance is 12.34 EUR",15\r\n`))
}

func TestParseIncoming(t *testing.T) {
	for line, want := range map[string]modemsim.Incoming{
		"+4526227921 STOP":         {From: "+4526227921", Text: "STOP"},
		"Telco Your balance is 5":  {From: "Telco", Text: "Your balance is 5"},
		"ucs2 +4526227921 Привет":  {From: "+4526227921", Text: "Привет", UCS2: true},
		"  +4526227921   spaced  ": {From: "+4526227921", Text: "  spaced"},
	} {
		if got, ok := parseIncoming(line); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("parseIncoming(%q) = %+v, %v", line, got, ok)
		}
	}
	for _, bad := range []string{"", "+4526227921", "ucs2 ", "   "} {
		if got, ok := parseIncoming(bad); ok {
			t.Errorf("parseIncoming(%q) = %+v", bad, got)
		}
	}
}
