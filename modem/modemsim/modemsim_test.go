package modemsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/gsm"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"go.bug.st/serial"
)

// recorder collects callbacks.
type recorder struct {
	subs chan Submission
	msgs chan Message
}

func newRecorder(cfg *Config) *recorder {
	r := &recorder{subs: make(chan Submission, 100), msgs: make(chan Message, 100)}
	cfg.OnSubmit = func(s Submission) { r.subs <- s }
	cfg.OnMessage = func(m Message) { r.msgs <- m }
	return r
}

// sendPDU sends one PDU with AT+CMGS (echo off) and returns the answer.
func (c *client) sendPDU(p pdu) string {
	c.t.Helper()
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	if got := c.readN(4); got != "\r\n> " {
		c.t.Fatalf("prompt: got %q", got)
	}
	return c.command(p.hex + "\x1a")
}

func TestSendOTP(t *testing.T) {
	cfg := Config{Name: "sim0"}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0")

	p := encode(t, "Your code is 123456", "+4526227921")[0]
	before := time.Now()
	if got, want := c.sendPDU(p), "\r\n+CMGS: 0\r\n\r\nOK\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	s := waitFor(t, rec.subs, "OnSubmit")
	want := Submission{
		Modem: "sim0", MR: 0, To: "+4526227921", Text: "Your code is 123456",
		Encoding: "gsm7", Part: 1, Parts: 1, ConcatRef: 0, PDU: p.hex, At: s.At,
	}
	if s != want {
		t.Errorf("submission\n got %+v\nwant %+v", s, want)
	}
	if s.At.Before(before) || s.At.After(time.Now()) {
		t.Errorf("At %v out of range", s.At)
	}
	msg := waitFor(t, rec.msgs, "OnMessage")
	if msg.Text != "Your code is 123456" || msg.Parts != 1 || len(msg.MRs) != 1 || msg.MRs[0] != 0 || msg.To != "+4526227921" {
		t.Errorf("message %+v", msg)
	}
	if subs := m.Submissions(); len(subs) != 1 || subs[0] != want {
		t.Errorf("Submissions() = %+v", subs)
	}
	if msgs := m.Messages(); len(msgs) != 1 || msgs[0].Text != msg.Text {
		t.Errorf("Messages() = %+v", msgs)
	}

	// MR increments per SMS and SRR is read from the first octet.
	tpdus, err := sms.Encode([]byte("again"), sms.To("+4526227921"))
	if err != nil {
		t.Fatal(err)
	}
	tpdus[0].FirstOctet |= tpdu.FoSRR
	b, _ := tpdus[0].MarshalBinary()
	pp := pdumode.PDU{TPDU: b}
	h, _ := pp.MarshalHexString()
	if got := c.sendPDU(pdu{hex: h, len: len(b)}); got != "\r\n+CMGS: 1\r\n\r\nOK\r\n" {
		t.Fatalf("second send: %q", got)
	}
	if s := waitFor(t, rec.subs, "OnSubmit"); s.MR != 1 || !s.SRR {
		t.Errorf("second submission %+v", s)
	}
}

func TestMRWraps(t *testing.T) {
	m := start(t, Config{FirstMR: 254})
	c := dial(t, m.Path())
	c.command("ATE0")
	p := encode(t, "x", "+4526227921")[0]
	for _, mr := range []int{254, 255, 0} {
		if got, want := c.sendPDU(p), fmt.Sprintf("\r\n+CMGS: %d\r\n\r\nOK\r\n", mr); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestLongMessage(t *testing.T) {
	cfg := Config{}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0")

	text := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 7) // 399 chars
	parts := encode(t, text, "+4526227921")
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	var got strings.Builder
	for i, p := range parts {
		if ans := c.sendPDU(p); ans != fmt.Sprintf("\r\n+CMGS: %d\r\n\r\nOK\r\n", i) {
			t.Fatalf("part %d: %q", i+1, ans)
		}
		s := waitFor(t, rec.subs, "OnSubmit")
		if s.Part != i+1 || s.Parts != 3 || s.ConcatRef != 1 || s.Encoding != "gsm7" || s.MR != i {
			t.Errorf("part %d: %+v", i+1, s)
		}
		got.WriteString(s.Text)
		if i < 2 {
			select {
			case msg := <-rec.msgs:
				t.Fatalf("OnMessage before the last part: %+v", msg)
			default:
			}
		}
	}
	if got.String() != text {
		t.Errorf("part texts joined: %q", got.String())
	}
	msg := waitFor(t, rec.msgs, "OnMessage")
	if msg.Text != text || msg.Parts != 3 || fmt.Sprint(msg.MRs) != "[0 1 2]" || msg.Encoding != "gsm7" {
		t.Errorf("message %+v", msg)
	}
}

func TestUCS2Message(t *testing.T) {
	cfg := Config{}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0")
	for _, text := range []string{
		"Ваш код: 123456",
		strings.Repeat("Код 😀 ", 20), // two parts, surrogate pairs
	} {
		var mrs []int
		for _, p := range encode(t, text, "+4526227921") {
			if ans := c.sendPDU(p); !strings.HasSuffix(ans, "\r\nOK\r\n") {
				t.Fatalf("%q", ans)
			}
			s := waitFor(t, rec.subs, "OnSubmit")
			if s.Encoding != "ucs2" {
				t.Errorf("encoding %q", s.Encoding)
			}
			mrs = append(mrs, s.MR)
		}
		msg := waitFor(t, rec.msgs, "OnMessage")
		if msg.Text != text || msg.Encoding != "ucs2" || msg.Parts != len(mrs) {
			t.Errorf("message %+v, want text %q", msg, text)
		}
	}
}

func Test8BitMessage(t *testing.T) {
	cfg := Config{}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	c.command("ATE0")
	p := encode(t, "\x01\x02binary", "12345", sms.As8Bit)[0]
	c.sendPDU(p)
	s := waitFor(t, rec.subs, "OnSubmit")
	if s.Encoding != "8bit" || s.Text != "\x01\x02binary" || s.To != "+12345" {
		t.Errorf("%+v", s)
	}
}

func TestFailNextSends(t *testing.T) {
	m := start(t, Config{})
	c := dial(t, m.Path())
	c.command("ATE0;+CMEE=1")
	m.FailNextSends(500, 42)
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	for _, want := range []string{
		"\r\n+CMS ERROR: 500\r\n",
		"\r\n+CMS ERROR: 42\r\n",
		"\r\n+CMGS: 0\r\n\r\nOK\r\n",
	} {
		if got := c.sendPDU(p); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := len(m.Submissions()); n != 1 {
		t.Errorf("%d submissions, want 1", n)
	}
}

// TestWarthogClient sends through github.com/warthog618/modem, the AT
// library the daemon uses.
func TestWarthogClient(t *testing.T) {
	cfg := Config{}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	port, err := serial.Open(m.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	a := at.New(port, at.WithTimeout(timeout))
	g := gsm.New(a)
	if err := g.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	info, err := g.Command("+CSQ")
	if err != nil || len(info) != 1 || info[0] != "+CSQ: 20,99" {
		t.Fatalf("+CSQ: %q %v", info, err)
	}
	if _, err := g.Command("+FOO"); !errors.Is(err, at.ErrError) {
		t.Errorf("+FOO: %v, want ERROR", err)
	}

	tpdus, err := sms.Encode([]byte("Your code is 123456"), sms.To("+4526227921"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tpdus[0].MarshalBinary()
	mr, err := g.SendPDU(b)
	if err != nil || mr != "0" {
		t.Fatalf("SendPDU: %q %v", mr, err)
	}
	if s := waitFor(t, rec.subs, "OnSubmit"); s.Text != "Your code is 123456" || s.To != "+4526227921" {
		t.Errorf("%+v", s)
	}

	// gsm.Init sets AT+CMEE=2: errors come as text.
	m.FailNextSends(500)
	_, err = g.SendPDU(b)
	var cms at.CMSError
	if !errors.As(err, &cms) || string(cms) != "unknown error" {
		t.Errorf("SendPDU: %v, want CMS unknown error", err)
	}

	// The library's escape on timeout cancels the entry.
	mrs, err := g.SendLongMessage("+4526227921", strings.Repeat("long ", 40))
	if err != nil || len(mrs) != 2 || mrs[0] != "1" || mrs[1] != "2" {
		t.Errorf("SendLongMessage: %q %v", mrs, err)
	}
}

// TestInjectMidCommand checks that unsolicited result codes injected while
// a send waits for the network come before its final result code.
func TestInjectMidCommand(t *testing.T) {
	m := start(t, Config{SendDelay: time.Hour})
	c := dial(t, m.Path())

	m.Inject(`+CMTI: "SM",3`)
	if got := c.readN(17); got != "\r\n+CMTI: \"SM\",3\r\n" {
		t.Fatalf("idle URC: %q", got)
	}

	c.command("ATE0")
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	c.readN(4)
	c.write(p.hex + "\x1a")
	m.Inject("+CDS: 25", "07914400000000F006000B914562729721F1")
	m.SetSendDelay(0)
	got := c.command("")
	want := "\r\n+CDS: 25\r\n07914400000000F006000B914562729721F1\r\n\r\n+CMGS: 0\r\n\r\nOK\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := c.command("AT+CMEE=1;+CNMA"); got != "\r\nOK\r\n" {
		t.Errorf("CNMA after +CDS: %q", got)
	}
	if got := c.command("AT+CNMA"); got != "\r\n+CMS ERROR: 340\r\n" {
		t.Errorf("second CNMA: %q", got)
	}
}

// TestCloseHangsUp checks that Close abandons a waiting send and that a
// client reading the port sees the line hang up.
func TestCloseHangsUp(t *testing.T) {
	m, err := Start(Config{SendDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, m.Path())
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	c.readUntil("> ")
	c.write(p.hex + "\x1a")
	c.readUntil("\x1a") // echo: the modem is now waiting for the network

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	if err := waitFor(t, closed, "Close"); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Depending on timing the kernel reports the hang-up as end of file
	// (go.bug.st/serial: PortError PortClosed) or as EIO (passed through).
	err = waitFor(t, c.readErr, "read error")
	var pe *serial.PortError
	if !(errors.As(err, &pe) && pe.Code() == serial.PortClosed) && !errors.Is(err, syscall.EIO) {
		t.Errorf("read error %v (%T), want PortClosed or EIO", err, err)
	}
	if n := len(m.Submissions()); n != 0 {
		t.Errorf("%d submissions after abandoned send", n)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestReopen checks that clients may close and reopen the port, and that
// output produced while nobody has it open is not delivered later.
func TestReopen(t *testing.T) {
	m := start(t, Config{})
	for i := range 3 {
		c := dial(t, m.Path())
		if got := c.command("AT"); got != "AT\r\r\nOK\r\n" {
			t.Fatalf("session %d: %q", i, got)
		}
		c.port.Close()
		waitFor(t, c.readErr, "reader end")
		m.Inject("+CMTI: \"SM\",1") // nobody listening: dropped
	}
	c := dial(t, m.Path())
	c.write("AT\r")
	if got := c.readN(9); got != "AT\r\r\nOK\r\n" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestHungDuringSend(t *testing.T) {
	cfg := Config{SendDelay: time.Hour}
	rec := newRecorder(&cfg)
	m := start(t, cfg)
	c := dial(t, m.Path())
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	c.write(fmt.Sprintf("AT+CMGS=%d\r", p.len))
	c.readUntil("> ")
	c.write(p.hex + "\x1a")
	c.readUntil("\x1a")

	m.SetHung(true)
	m.SetSendDelay(0)
	// The SMS went out but the answer is lost.
	if s := waitFor(t, rec.subs, "OnSubmit"); s.MR != 0 {
		t.Errorf("%+v", s)
	}
	m.SetHung(false)
	c.write("AT\r")
	if got := c.readN(9); got != "AT\r\r\nOK\r\n" {
		t.Fatalf("after recovery: %q", got)
	}
}

func TestLink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyUSB0")
	if err := os.Symlink("/nonexistent", link); err != nil { // stale link
		t.Fatal(err)
	}
	m, err := Start(Config{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != m.Path() {
		t.Fatalf("link -> %q %v, want %q", target, err, m.Path())
	}
	c := dial(t, link)
	if got := c.command("AT"); got != "AT\r\r\nOK\r\n" {
		t.Errorf("%q", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there: %v", err)
	}
}

func TestStartConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Signal: 32},
		{Signal: -1},
		{Registration: 11},
		{FirstMR: 256},
		{SCA: "+45abc"},
		{SendDelay: -time.Second},
		{Model: "x\r\nOK"},
		{ReportDelay: -time.Second},
		{AckTimeout: -time.Second},
		{ReportFailRate: 1.5},
		{ReportDropRate: -0.1},
	} {
		if m, err := Start(cfg); err == nil {
			m.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

// TestConcurrentHooks exercises the hooks while a client talks to the
// modem (for the race detector).
func TestConcurrentHooks(t *testing.T) {
	m := start(t, Config{})
	c := dial(t, m.Path())
	c.command("ATE0;+CMEE=1;+CNMI=2,1,0,2,0") // no +CREG URCs: registration flips below; reports stored
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.SetSignal(i % 32)
			m.SetSendDelay(0)
			m.FailNextSends()
			_ = m.Submissions()
			_ = m.Messages()
			_ = m.Reports()
			_ = m.MissedAcks()
			m.SetReport(func(Submission) StatusReport { return StatusReport{TPStatus: byte(i)} })
			m.SetRegistration(1 + 4*(i%2))
		}
	}()
	p := srrPDU(t, "x", "+4526227921")
	for range 20 {
		if got := c.sendLoose(p); !strings.HasSuffix(got, "\r\nOK\r\n") {
			t.Fatalf("%q", got)
		}
	}
	close(stop)
	<-done
}

// modem wraps a local interpreter in a Modem to use the hooks without a
// pseudo-terminal.
func (l *local) modem() *Modem { return &Modem{cfg: l.ip.cfg, ip: l.ip} }

func TestHungLocal(t *testing.T) {
	l := newLocal(t, Config{})
	m := l.modem()
	l.exchange("ATE0\r")
	m.SetHung(true)
	for _, in := range []string{"AT\r", "AT+CS"} {
		if got := l.exchange(in); got != "" {
			t.Errorf("hung: %q answered %q", in, got)
		}
	}
	m.Inject("RING")
	m.SetHung(false)
	if got := l.exchange("Q\r"); got != "" { // the partial line was forgotten
		t.Errorf("after recovery: %q", got)
	}
	if got := l.exchange("AT\r"); got != ok {
		t.Errorf("after recovery: %q", got)
	}
}

func TestRegistrationURCs(t *testing.T) {
	l := newLocal(t, Config{})
	m := l.modem()
	l.exchange("ATE0;+CREG=1;+CEREG=2\r")
	m.SetRegistration(0)
	if got, want := l.out.take(), "\r\n+CREG: 0\r\n\r\n+CEREG: 0\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	m.SetRegistration(0)
	if got := l.out.take(); got != "" {
		t.Errorf("no change: %q", got)
	}
	m.SetRegistration(5)
	if got, want := l.out.take(), "\r\n+CREG: 5\r\n\r\n+CEREG: 5,\"1A2B\",\"01A2B3C4\",7\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	m.SetSignal(0)
	if got := l.exchange("AT+CSQ\r"); got != info("+CSQ: 0,99")+ok {
		t.Errorf("%q", got)
	}
}

func TestInjectDuringEntry(t *testing.T) {
	l := newLocal(t, Config{})
	m := l.modem()
	p := encode(t, "Your code is 123456", "+4526227921")[0]
	l.exchange("ATE0\r")
	if got := l.exchange(fmt.Sprintf("AT+CMGS=%d\r%s", p.len, p.hex[:10])); got != "\r\n> " {
		t.Fatalf("%q", got)
	}
	m.Inject("RING")
	if got := l.out.take(); got != "" {
		t.Fatalf("URC during entry: %q", got)
	}
	if got, want := l.exchange(p.hex[10:]+"\x1a"), "\r\nRING\r\n"+info("+CMGS: 0")+ok; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
