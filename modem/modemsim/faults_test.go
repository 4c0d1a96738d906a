package modemsim

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRandomHang checks Config.HangRate: the send hangs the modem, the SMS
// goes out without an answer, and the modem answers again after HangFor.
func TestRandomHang(t *testing.T) {
	cfg := Config{HangRate: 1, HangFor: time.Second}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0")
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	c.readN(4)
	sent := time.Now()
	c.write(p.hex + "\x1a")
	if s := waitFor(t, rec.subs, "OnSubmit"); s.MR != 0 {
		t.Errorf("%+v", s)
	}
	// Recovery has no event: ask until the modem answers.
	var got []byte
	deadline := time.After(timeout)
	for !bytes.Contains(got, []byte(ok)) {
		c.write("AT\r")
		select {
		case b := <-c.chunks:
			got = append(got, b...)
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no answer after the hang: %q", got)
		}
	}
	if d := time.Since(sent); d < cfg.HangFor {
		t.Errorf("answered %v after the send, before HangFor %v", d, cfg.HangFor)
	}
	if bytes.Contains(got, []byte("+CMGS")) {
		t.Errorf("the answer to the send was not lost: %q", got)
	}
	// SetHung ends a random hang at once.
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	c.readUntil("> ")
	c.write(p.hex + "\x1a")
	waitFor(t, rec.subs, "second OnSubmit")
	m.SetHung(false)
	recovered := time.Now()
	if got := c.command("AT"); got != ok {
		t.Errorf("after SetHung(false): %q", got)
	}
	if d := time.Since(recovered); d >= cfg.HangFor {
		t.Errorf("answered after %v", d)
	}
}

func TestStrayURC(t *testing.T) {
	cmti := func(n int) string { return info(fmt.Sprintf(`+CMTI: "SM",%d`, n)) }
	l := newLocal(t, Config{URCRate: 1})
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	for i, s := range []step{
		{"ATE0\r", "ATE0\r" + cmti(1) + ok},
		{"AT+CSQ;+CGMI\r", info("+CSQ: 20,99") + cmti(2) + info("simgate") + cmti(3) + ok},
		{"AT+FOO\r", cmti(4) + erro},
		{"AT\r", ok}, // no command
		{"AT+CMEE=1;+CMGR=1\r", cmti(5) + cmti(6) + "\r\n+CMS ERROR: 321\r\n"},
		{fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex), "\r\n> " + info("+CMGS: 0") + cmti(7) + ok},
		{fmt.Sprintf("AT+CMGS=%d\r\x1b", p.len), "\r\n> " + cmti(8) + ok},
	} {
		if got := l.exchange(s.in); got != s.want {
			t.Fatalf("step %d: %q: got %q, want %q", i, s.in, got, s.want)
		}
	}
}

// TestSeedRepeats checks that the random faults depend only on the seed
// and the input.
func TestSeedRepeats(t *testing.T) {
	p := srrPDU(t, "Your code is 123456", "+4526227921")
	cmgs := fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex)
	type outcome struct {
		out     string
		reports []string
	}
	run := func(seed uint64) outcome {
		cfg := Config{Seed: seed, FailRate: 0.3, URCRate: 0.3, ReportFailRate: 0.5, ReportDropRate: 0.3}
		reps := reportRecorder(&cfg)
		l := newLocal(t, cfg)
		var out strings.Builder
		out.WriteString(l.exchange("ATE0;+CMEE=1\r"))
		for range 30 {
			out.WriteString(l.exchange(cmgs))
		}
		// A last report, after all the others: then they are all out.
		l.modem().SetReport(func(Submission) StatusReport { return StatusReport{TPStatus: 0x7f} })
		// FailRate may refuse it: try again, a bounded number of times.
		for i := 0; !strings.Contains(l.exchange(cmgs), "+CMGS:"); i++ {
			if i == 100 {
				t.Fatal("no send got through in 100 tries")
			}
		}
		var o outcome
		for {
			r := waitFor(t, reps, "OnReport")
			if r.TPStatus == 0x7f {
				break
			}
			o.reports = append(o.reports, fmt.Sprintf("%d:%#x", r.MR, r.TPStatus))
		}
		o.out = out.String()
		return o
	}
	a, b, other := run(7), run(7), run(8)
	if a.out != b.out || fmt.Sprint(a.reports) != fmt.Sprint(b.reports) {
		t.Errorf("seed 7 twice:\n%q %v\n%q %v", a.out, a.reports, b.out, b.reports)
	}
	if a.out == other.out {
		t.Errorf("seeds 7 and 8 gave the same output %q", a.out)
	}
	// Seed 7 gives every kind of fault.
	for _, want := range []string{"+CMS ERROR: 42", "+CMTI:", "+CMGS:"} {
		if !strings.Contains(a.out, want) {
			t.Errorf("no %q in %q", want, a.out)
		}
	}
	sends := strings.Count(a.out, "+CMGS:")
	fails := strings.Count(fmt.Sprint(a.reports), ":0x41")
	if len(a.reports) == sends || fails == 0 || fails == len(a.reports) {
		t.Errorf("%d sends, reports %v: want some dropped, some failed, some not", sends, a.reports)
	}
}
