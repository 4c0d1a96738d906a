package modemsim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// srrPDU builds a one-part SMS-SUBMIT that requests a status report.
func srrPDU(t testing.TB, text, to string) pdu {
	t.Helper()
	tpdus, err := sms.Encode([]byte(text), sms.To(to))
	if err != nil {
		t.Fatal(err)
	}
	tpdus[0].FirstOctet |= tpdu.FoSRR
	b, err := tpdus[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	h, err := (&pdumode.PDU{TPDU: b}).MarshalHexString()
	if err != nil {
		t.Fatal(err)
	}
	return pdu{hex: h, len: len(b)}
}

// reportRecorder collects OnReport callbacks.
func reportRecorder(cfg *Config) chan SentReport {
	ch := make(chan SentReport, 100)
	cfg.OnReport = func(r SentReport) { ch <- r }
	return ch
}

// cdsRE matches a +CDS indication in PDU mode.
var cdsRE = regexp.MustCompile(`\r\n\+CDS: (\d+)\r\n([0-9A-F]+)\r\n`)

// cds is a +CDS indication: its announced length and PDU.
type cds struct {
	length int
	pdu    string
}

// findCDS returns the +CDS indications in s, in order.
func findCDS(s string) []cds {
	var out []cds
	for _, m := range cdsRE.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, cds{n, m[2]})
	}
	return out
}

// sendLoose sends a PDU with AT+CMGS and returns everything received up to
// the final result code: unsolicited result codes may come anywhere.
func (c *client) sendLoose(p pdu) string {
	c.t.Helper()
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	s := c.readUntil("> ")
	return s + c.command(p.hex+"\x1a")
}

// readCDS reads up to the next +CDS indication.
func (c *client) readCDS() cds {
	c.t.Helper()
	if !c.fill(func(p []byte) bool { return cdsRE.Match(p) }) {
		c.t.Fatalf("timeout waiting for +CDS, got %q", c.pending)
	}
	loc := cdsRE.FindIndex(c.pending)
	got := findCDS(string(c.pending[loc[0]:loc[1]]))[0]
	c.pending = c.pending[loc[1]:]
	return got
}

// tpduLen returns the TPDU length of a PDU with a service centre address.
func tpduLen(t *testing.T, hexs string) int {
	t.Helper()
	p, err := pdumode.UnmarshalHexString(hexs)
	if err != nil {
		t.Fatal(err)
	}
	return len(p.TPDU)
}

// decodeReport decodes a +CDS/+CMGR PDU and checks its framing: service
// centre address first, then a TPDU of the announced length.
func decodeReport(t *testing.T, c cds, sca string) *tpdu.TPDU {
	t.Helper()
	p, err := pdumode.UnmarshalHexString(c.pdu)
	if err != nil {
		t.Fatalf("pdumode: %v", err)
	}
	if len(p.TPDU) != c.length {
		t.Errorf("TPDU of %d octets, announced %d", len(p.TPDU), c.length)
	}
	if got := "+" + p.SMSC.Addr; got != sca || p.SMSC.TOA != 0x91 {
		t.Errorf("SMSC %q TOA %#x, want %q 0x91", got, p.SMSC.TOA, sca)
	}
	tp, err := sms.Unmarshal(p.TPDU, sms.AsMT)
	if err != nil {
		t.Fatalf("sms.Unmarshal: %v", err)
	}
	if tp.SmsType() != tpdu.SmsStatusReport {
		t.Fatalf("%v, want a status report", tp.SmsType())
	}
	return tp
}

func TestReportRouted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		report func(Submission) StatusReport
		want   byte
	}{
		{name: "default delivered", want: 0x00},
		{name: "configured status", cfg: Config{ReportStatus: 0x46}, want: 0x46},
		{name: "report function", cfg: Config{ReportStatus: 0x46}, want: 0x20,
			report: func(Submission) StatusReport { return StatusReport{TPStatus: 0x20} }},
		{name: "fail rate", cfg: Config{ReportFailRate: 1}, want: 0x41},
		{name: "delay", cfg: Config{ReportDelay: 50 * time.Millisecond}, want: 0x00},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Report = tc.report
			cfg.SCA = "+4599999999"
			cfg.FirstMR = 7
			rec := newRecorder(&cfg)
			reps := reportRecorder(&cfg)
			m := start(t, cfg)
			c := dial(t, m.Path())
			c.command("ATE0;+CNMI=2,1,0,1,0")
			before := time.Now().Truncate(time.Second)
			if got := c.sendPDU(srrPDU(t, "Your code is 123456", "+4526227921")); got != info("+CMGS: 7")+ok {
				t.Fatalf("send: %q", got)
			}
			sub := waitFor(t, rec.subs, "OnSubmit")
			got := c.readCDS()
			tp := decodeReport(t, got, "+4599999999")
			if tp.MR != 7 || tp.RA.Number() != "+4526227921" || tp.RA.TOA != 0x91 || tp.ST != tc.want {
				t.Errorf("MR %d RA %q/%#x ST %#x, want 7 +4526227921/0x91 %#x", tp.MR, tp.RA.Number(), tp.RA.TOA, tp.ST, tc.want)
			}
			if !tp.SCTS.Equal(sub.At.Truncate(time.Second)) {
				t.Errorf("SCTS %v, want %v", tp.SCTS, sub.At)
			}
			if tp.DT.Before(tp.SCTS.Time) || tp.DT.Before(before) || tp.DT.After(time.Now()) {
				t.Errorf("DT %v out of range (SCTS %v)", tp.DT, tp.SCTS)
			}
			r := waitFor(t, reps, "OnReport")
			want := SentReport{Modem: m.Name(), MR: 7, To: "+4526227921", TPStatus: tc.want, Route: RouteCDS, PDU: got.pdu, At: r.At}
			if r != want {
				t.Errorf("OnReport\n got %+v\nwant %+v", r, want)
			}
			if d := r.At.Sub(sub.At); d < cfg.ReportDelay {
				t.Errorf("reported %v after the submission, before ReportDelay %v", d, cfg.ReportDelay)
			}
			if reps := m.Reports(); len(reps) != 1 || reps[0] != want {
				t.Errorf("Reports() = %+v", reps)
			}
		})
	}
}

// TestReportsInTimeOrder checks that reports come out when they are due,
// not in the order of the submissions.
func TestReportsInTimeOrder(t *testing.T) {
	delays := map[int]time.Duration{0: 600 * time.Millisecond, 1: 0, 2: 200 * time.Millisecond, 3: 200 * time.Millisecond}
	cfg := Config{Report: func(s Submission) StatusReport {
		return StatusReport{TPStatus: byte(s.MR), Delay: delays[s.MR]}
	}}
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0;+CNMI=2,1,0,1,0")
	var all strings.Builder
	for range 4 {
		all.WriteString(c.sendLoose(srrPDU(t, "x", "+4526227921")))
	}
	for len(findCDS(all.String())) < 4 {
		all.WriteString(c.readUntil("+CDS: "))
		all.WriteString(c.readUntil("\r\n"))
		all.WriteString(c.readUntil("\r\n"))
	}
	var order []byte
	for _, r := range findCDS(all.String()) {
		order = append(order, decodeReport(t, r, defaultSCA).MR)
	}
	// Equal delays keep the order of the submissions.
	if fmt.Sprint(order) != "[1 2 3 0]" {
		t.Errorf("reports in MR order %v, want [1 2 3 0]", order)
	}
	var routed []int
	for _, r := range m.Reports() {
		routed = append(routed, r.MR)
	}
	if fmt.Sprint(routed) != "[1 2 3 0]" {
		t.Errorf("Reports() in MR order %v", routed)
	}
}

// waitHeld polls (the state has no event) until n due reports wait for an
// acknowledgement.
func waitHeld(t *testing.T, m *Modem, n int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m.ip.mu.Lock()
		held := len(m.ip.held)
		m.ip.mu.Unlock()
		if held == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reports held, want %d", held, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReportAck checks AT+CSMS=1: each +CDS wants an AT+CNMA before the
// next; without one the modem disables routing after AckTimeout.
func TestReportAck(t *testing.T) {
	p := srrPDU(t, "Your code is 123456", "+4526227921")
	t.Run("acknowledged", func(t *testing.T) {
		cfg := Config{AckTimeout: time.Hour}
		reps := reportRecorder(&cfg)
		m := start(t, cfg)
		c := dial(t, m.Path())
		c.command("ATE0;+CMEE=1;+CSMS=1;+CNMI=2,1,0,1,0")
		c.sendPDU(p)
		if r := decodeReport(t, c.readCDS(), defaultSCA); r.MR != 0 {
			t.Fatalf("first report MR %d", r.MR)
		}
		waitFor(t, reps, "first OnReport")
		if got := c.sendLoose(p); strings.Contains(got, "+CDS") {
			t.Fatalf("second +CDS before AT+CNMA: %q", got)
		}
		waitHeld(t, m, 1)
		if got := c.command("AT+CNMA"); got != ok {
			t.Fatalf("CNMA: %q", got)
		}
		if r := decodeReport(t, c.readCDS(), defaultSCA); r.MR != 1 {
			t.Fatalf("second report MR %d", r.MR)
		}
		if r := waitFor(t, reps, "second OnReport"); r.Route != RouteCDS {
			t.Errorf("second report %+v", r)
		}
		if got := c.command("AT+CNMA"); got != ok {
			t.Fatalf("second CNMA: %q", got)
		}
		if got := c.command("AT+CNMA"); got != "\r\n+CMS ERROR: 340\r\n" {
			t.Fatalf("third CNMA: %q", got)
		}
		if n := m.MissedAcks(); n != 0 {
			t.Errorf("MissedAcks() = %d", n)
		}
	})
	t.Run("missed", func(t *testing.T) {
		cfg := Config{AckTimeout: 200 * time.Millisecond}
		reps := reportRecorder(&cfg)
		m := start(t, cfg)
		c := dial(t, m.Path())
		c.command("ATE0;+CMEE=1;+CSMS=1;+CNMI=2,1,0,1,0")
		c.sendPDU(p)
		c.readCDS()
		first := waitFor(t, reps, "first OnReport")
		c.sendLoose(p)
		// The second report waits for the acknowledgement that never
		// comes; then routing is off and it is dropped.
		second := waitFor(t, reps, "second OnReport")
		if second.MR != 1 || second.Route != RouteDropped || second.At.Sub(first.At) < cfg.AckTimeout {
			t.Errorf("second report %+v, first at %v", second, first.At)
		}
		if got := c.command("AT+CNMI?"); got != info("+CNMI: 2,0,0,0,0")+ok {
			t.Errorf("CNMI after the timeout: %q", got)
		}
		if n := m.MissedAcks(); n != 1 {
			t.Errorf("MissedAcks() = %d, want 1", n)
		}
		if got := c.command("AT+CNMA"); got != "\r\n+CMS ERROR: 340\r\n" {
			t.Errorf("late CNMA: %q", got)
		}
	})
	t.Run("no ack wanted", func(t *testing.T) {
		cfg := Config{AckTimeout: time.Hour}
		reps := reportRecorder(&cfg)
		m := start(t, cfg)
		c := dial(t, m.Path())
		c.command("ATE0;+CMEE=1;+CSMS=0;+CNMI=2,1,0,1,0")
		for mr := range 3 {
			c.sendLoose(p)
			if r := waitFor(t, reps, "OnReport"); r.MR != mr || r.Route != RouteCDS {
				t.Errorf("report %+v", r)
			}
		}
		if got := c.command("AT+CNMA"); !strings.HasSuffix(got, "\r\n+CMS ERROR: 340\r\n") {
			t.Errorf("CNMA with CSMS=0: %q", got)
		}
	})
	t.Run("reset ends the wait", func(t *testing.T) {
		cfg := Config{AckTimeout: time.Hour}
		reps := reportRecorder(&cfg)
		m := start(t, cfg)
		c := dial(t, m.Path())
		c.command("ATE0;+CMEE=1;+CSMS=1;+CNMI=2,1,0,1,0")
		c.sendPDU(p)
		c.readCDS()
		waitFor(t, reps, "first OnReport")
		c.sendLoose(p)
		waitHeld(t, m, 1)
		// ATZ resets +CSMS and +CNMI: the held report is not routed.
		c.command("ATZ")
		if r := waitFor(t, reps, "second OnReport"); r.Route != RouteDropped {
			t.Errorf("second report %+v", r)
		}
		c.command("ATE0;+CSMS=1;+CNMI=2,1,0,1,0")
		c.sendLoose(p)
		if r := decodeReport(t, c.readCDS(), defaultSCA); r.MR != 2 {
			t.Errorf("third report MR %d", r.MR)
		}
		if n := m.MissedAcks(); n != 0 {
			t.Errorf("MissedAcks() = %d", n)
		}
	})
}

// TestReportStored checks <ds>=2: reports are stored in "SR", indicated
// with +CDSI and read with AT+CMGR, listed with AT+CMGL, deleted with
// AT+CMGD.
func TestReportStored(t *testing.T) {
	cfg := Config{StoreReports: true}
	reps := reportRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0;+CMEE=1;+CNMI=2,1,0,2,0")
	p := srrPDU(t, "Your code is 123456", "+4526227921")
	for i := range 2 {
		c.sendLoose(p)
		want := fmt.Sprintf("\r\n+CDSI: \"SR\",%d\r\n", i+1)
		if got := c.readUntil(want); !strings.HasSuffix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if r := waitFor(t, reps, "OnReport"); r.Route != RouteCDSI || r.Index != i+1 || r.MR != i {
			t.Errorf("report %+v", r)
		}
	}
	sent := m.Reports()
	if got := c.command(`AT+CPMS="SR";+CPMS?`); got != info("+CPMS: 2,30", `+CPMS: "SR",2,30,"SM",0,30,"SM",0,30`)+ok {
		t.Fatalf("CPMS: %q", got)
	}
	for _, stat := range []int{0, 1} { // unread, then read
		got := c.command("AT+CMGR=1")
		want := info(fmt.Sprintf("+CMGR: %d,,%d\r\n%s", stat, tpduLen(t, sent[0].PDU), sent[0].PDU)) + ok
		if got != want {
			t.Fatalf("CMGR:\n got %q\nwant %q", got, want)
		}
	}
	n := tpduLen(t, sent[0].PDU)
	r := decodeReport(t, cds{n, sent[0].PDU}, defaultSCA)
	if r.MR != 0 || r.ST != 0 || r.RA.Number() != "+4526227921" {
		t.Errorf("stored report %+v", r)
	}
	if got, want := c.command("AT+CMGL"), info(fmt.Sprintf("+CMGL: 2,0,,%d\r\n%s", n, sent[1].PDU))+ok; got != want {
		t.Errorf("CMGL unread:\n got %q\nwant %q", got, want)
	}
	if got, want := c.command("AT+CMGL=4"), info(fmt.Sprintf("+CMGL: 1,1,,%d\r\n%s\r\n+CMGL: 2,1,,%d\r\n%s", n, sent[0].PDU, n, sent[1].PDU))+ok; got != want {
		t.Errorf("CMGL all:\n got %q\nwant %q", got, want)
	}
	if got := c.command("AT+CMGD=?"); got != info("+CMGD: (1,2),(0-4)")+ok {
		t.Errorf("CMGD=?: %q", got)
	}
	if got := c.command("AT+CMGD=1"); got != ok {
		t.Fatalf("CMGD: %q", got)
	}
	if got := c.command("AT+CMGR=1"); got != "\r\n+CMS ERROR: 321\r\n" {
		t.Errorf("CMGR after CMGD: %q", got)
	}
	// The next report takes the free index.
	c.sendLoose(p)
	c.readUntil("\r\n+CDSI: \"SR\",1\r\n")
	if got := c.command("AT+CMGD=1,1;+CPMS?"); got != info(`+CPMS: "SR",1,30,"SM",0,30,"SM",0,30`)+ok {
		t.Errorf("after deleting the read ones: %q", got)
	}
	if got := c.command("AT+CMGD=0,4;+CPMS?"); got != info(`+CPMS: "SR",0,30,"SM",0,30,"SM",0,30`)+ok {
		t.Errorf("after deleting all: %q", got)
	}
}

// TestReportMemoryFull checks that a report finding "SR" full is lost.
func TestReportMemoryFull(t *testing.T) {
	cfg := Config{}
	reps := reportRecorder(&cfg)
	l := newLocal(t, cfg)
	m := l.modem()
	l.exchange("ATE0;+CNMI=2,1,0,2,0\r")
	p := srrPDU(t, "x", "+4526227921")
	for i := range memCapacity + 1 {
		l.exchange(fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex))
		r := waitFor(t, reps, "OnReport")
		if i < memCapacity && (r.Route != RouteCDSI || r.Index != i+1) || i == memCapacity && r.Route != RouteLost {
			t.Fatalf("report %d: %+v", i, r)
		}
	}
	if got := l.exchange("AT+CPMS=\"SR\"\r"); got != info("+CPMS: 30,30")+ok {
		t.Errorf("%q", got)
	}
	if n := len(m.Reports()); n != memCapacity+1 {
		t.Errorf("%d reports", n)
	}
}

// TestReportTextMode checks the text mode forms of +CDS, +CMGR and +CMGL.
func TestReportTextMode(t *testing.T) {
	cfg := Config{}
	reps := reportRecorder(&cfg)
	l := newLocal(t, cfg)
	l.exchange(`ATE0;+CMGF=1;+CSMP=49,167,0,0;+CNMI=2,1,0,1,0` + "\r")
	got := l.exchange(`AT+CMGS="12345",129` + "\rhi\x1a")
	r := waitFor(t, reps, "OnReport")
	got += l.out.take() // the report may come before exchange returns
	p, _ := pdumode.UnmarshalHexString(r.PDU)
	tp, _ := sms.Unmarshal(p.TPDU, sms.AsMT)
	ts := func(tm time.Time) string {
		_, off := tm.Zone()
		return tm.Format("06/01/02,15:04:05") + fmt.Sprintf("%+03d", off/900)
	}
	fields := fmt.Sprintf(`6,0,"12345",129,"%s","%s",0`, ts(tp.SCTS.Time), ts(tp.DT.Time))
	if want := "\r\n> " + info("+CMGS: 0") + ok + info("+CDS: "+fields); got != want {
		t.Errorf("+CDS:\n got %q\nwant %q", got, want)
	}
	if tp.RA.TOA != 0x81 || r.To != "12345" {
		t.Errorf("RA %+v, To %q", tp.RA, r.To)
	}
	l.exchange("AT+CNMI=2,1,0,2,0\r")
	l.exchange(`AT+CMGS="12345",129` + "\rhi\x1a")
	waitFor(t, reps, "OnReport")
	l.out.take()
	got = l.exchange(`AT+CPMS="SR";+CMGR=1;+CMGL="ALL";+CSCS="UCS2";+CMGR=1` + "\r")
	r = l.modem().Reports()[1]
	p, _ = pdumode.UnmarshalHexString(r.PDU)
	tp, _ = sms.Unmarshal(p.TPDU, sms.AsMT)
	fields = fmt.Sprintf(`6,1,"%%s",129,"%s","%s",0`, ts(tp.SCTS.Time), ts(tp.DT.Time))
	want := info("+CPMS: 1,30", `+CMGR: "REC UNREAD",`+fmt.Sprintf(fields, "12345"),
		`+CMGL: 1,"REC READ",`+fmt.Sprintf(fields, "12345"),
		`+CMGR: "REC READ",`+fmt.Sprintf(fields, "00310032003300340035")) + ok
	if got != want {
		t.Errorf("text mode storage:\n got %q\nwant %q", got, want)
	}
}

// TestNoReport checks that a message without TP-SRR, or one whose report
// the network drops, gets no report.
func TestNoReport(t *testing.T) {
	cfg := Config{Report: func(s Submission) StatusReport { return StatusReport{Drop: s.MR == 0} }}
	reps := reportRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0;+CNMI=2,1,0,1,0")
	var all strings.Builder
	all.WriteString(c.sendLoose(srrPDU(t, "dropped", "+4526227921")))
	all.WriteString(c.sendLoose(encode(t, "no SRR", "+4526227921")[0]))
	all.WriteString(c.sendLoose(srrPDU(t, "reported", "+4526227921")))
	// Reports are decided in the order of the sends: once the third is
	// out, the first two were decided.
	if r := waitFor(t, reps, "OnReport"); r.MR != 2 {
		t.Errorf("report %+v", r)
	}
	all.WriteString(c.command("AT"))
	if got := findCDS(all.String()); len(got) != 1 || decodeReport(t, got[0], defaultSCA).MR != 2 {
		t.Errorf("+CDS %v in %q", got, all.String())
	}
	if n := len(m.Reports()); n != 1 {
		t.Errorf("%d reports", n)
	}
}

// TestReportLost checks reports that come while the modem is hung or no
// client has the port open, and that Close drops pending reports.
func TestReportLost(t *testing.T) {
	cfg := Config{}
	reps := reportRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0;+CNMI=2,1,0,1,0")
	p := srrPDU(t, "x", "+4526227921")
	cmgs := fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex)
	m.SetReport(func(Submission) StatusReport { return StatusReport{Delay: time.Hour} })
	c.sendPDU(p) // MR 0: not due before Close

	// Hung: the report is lost.
	m.SetReport(func(Submission) StatusReport {
		m.SetHung(true)
		return StatusReport{}
	})
	c.sendPDU(p)
	if r := waitFor(t, reps, "OnReport"); r.MR != 1 || r.Route != RouteLost {
		t.Errorf("hung: %+v", r)
	}
	m.SetHung(false)
	c.port.Close()
	waitFor(t, c.readErr, "reader end")

	// No client: a routed report is lost, a stored one is kept.
	for _, tc := range []struct {
		cnmi  string
		route Route
	}{{"AT+CNMI=2,1,0,1,0", RouteLost}, {"AT+CNMI=2,1,0,2,0", RouteCDSI}} {
		c := dial(t, m.Path())
		c.command(tc.cnmi)
		m.SetReport(func(Submission) StatusReport {
			c.port.Close()
			<-c.readErr
			return StatusReport{}
		})
		c.write(cmgs) // the answer may not be read before the port closes
		if r := waitFor(t, reps, "OnReport"); r.Route != tc.route {
			t.Errorf("%s without a client: %+v", tc.cnmi, r)
		}
	}
	c = dial(t, m.Path())
	// Answers the last client did not read may still be in the line.
	c.write(`AT+CPMS="SR";+CMGL=4` + "\r")
	c.readUntil("+CPMS: 1,30")
	n := tpduLen(t, m.Reports()[2].PDU)
	if got := c.readUntil(ok); !strings.Contains(got, fmt.Sprintf("\r\n+CMGL: 1,0,,%d\r\n", n)) {
		t.Errorf("stored report after reopening: %q", got)
	}

	// Close does not wait for the pending report.
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	if err := waitFor(t, closed, "Close"); err != nil {
		t.Error(err)
	}
	if reps := m.Reports(); len(reps) != 3 {
		t.Errorf("%d reports, want 3: %+v", len(reps), reps)
	}
}
