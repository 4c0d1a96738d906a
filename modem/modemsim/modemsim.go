package modemsim

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Config describes a simulated modem. The zero value is usable.
type Config struct {
	// Name identifies the modem in Submission.Modem, Message.Modem and
	// logs. Default: the pseudo-terminal path.
	Name string
	// Link, if set, is the path of a symbolic link to the pseudo-terminal
	// made by Start (an existing symbolic link there is replaced) and
	// removed by Close.
	Link string
	// SendDelay is the network latency between Ctrl-Z and "+CMGS: <mr>".
	SendDelay time.Duration

	// Manufacturer, Model, Revision, IMEI and IMSI are what the
	// identification commands report. Defaults: "simgate", "SIM-1", "1.0",
	// a 15-digit IMEI with a valid check digit, "001010123456789".
	Manufacturer, Model, Revision, IMEI, IMSI string
	// SCA is the service centre address reported by AT+CSCA?.
	// Default "+4500000000".
	SCA string
	// PIN, if set, makes the SIM start in the "SIM PIN" state:
	// AT+CPIN="<PIN>" unlocks it, three wrong PINs lock it ("SIM PUK").
	PIN string
	// PUK, if set, unlocks a PUK-locked SIM with AT+CPIN="<PUK>","<new PIN>".
	// Without it a PUK-locked SIM stays locked.
	PUK string
	// PINTriesUsed is how many wrong PINs the SIM has already seen:
	// AT+CPINR reports 3 minus it as the tries left; 3 or more starts the
	// SIM locked ("SIM PUK").
	PINTriesUsed int
	// NoCPINR makes a modem that does not know AT+CPINR (it answers
	// ERROR), so the tries left are not known.
	NoCPINR bool
	// NoCMEE makes a modem that refuses AT+CMEE=1: its errors stay a plain
	// ERROR, with no +CME/+CMS code.
	NoCMEE bool
	// Signal is the <rssi> of AT+CSQ: 0..31 or 99. 0 means the default,
	// 20; use SetSignal(0) for a real 0.
	Signal int
	// Registration is the <stat> of AT+CREG?/+CGREG?/+CEREG? once the SIM
	// is ready: 1 (home) or 5 (roaming) are registered, 0, 2, 3 and 4 are
	// not. 0 means the default, 1; use SetRegistration(0) for a real 0.
	Registration int
	// FirstMR is the message reference of the first SMS sent, 0..255.
	FirstMR int
	// FailRate is the probability (0..1) that a send fails with one of
	// FailCodes (+CMS ERROR), chosen at random; FailCodes defaults to 42
	// (congestion). Seed makes the sequence repeatable.
	FailRate  float64
	FailCodes []int
	Seed      uint64

	// ReportDelay is the time from the "+CMGS: <mr>" answer of a message
	// that requested a status report (TP-SRR) to the network's report;
	// zero means as soon as possible after the answer. Each part of a
	// concatenated message has its own message reference and report. What
	// the modem does with a report depends on AT+CNMI <ds> (see the
	// package documentation).
	ReportDelay time.Duration
	// ReportStatus is the TP-ST of the status reports (0x00, the zero
	// value: delivered). ReportFailRate is the probability (0..1) that a
	// report says 0x41 (permanent error) instead, ReportDropRate that the
	// network never reports; both draw from the generator of FailRate
	// (Seed), in the order of the sends.
	ReportStatus   byte
	ReportFailRate float64
	ReportDropRate float64
	// Report, if set, decides each status report (status, delay, or none)
	// instead of ReportDelay, ReportStatus, ReportFailRate and
	// ReportDropRate; SetReport changes it. It is called like OnSubmit, in
	// order on the callback goroutine, after the final result code of the
	// AT+CMGS line; it must not call Close.
	Report func(Submission) StatusReport
	// OnReport is called, like OnSubmit, for each status report the
	// network sent, once the modem routed it (Reports). It may be nil.
	OnReport func(SentReport)
	// AckTimeout is how long a "+CDS" routed with AT+CSMS=1 waits for
	// AT+CNMA; the modem routes no other +CDS meanwhile. When it passes,
	// the modem gives up: it sets AT+CNMI <mt> and <ds> to 0 (MissedAcks
	// counts these). Default 15 s.
	AckTimeout time.Duration
	// StoreReports makes a modem that only stores status reports: AT+CNMI
	// refuses <ds>=1 with +CMS ERROR: 303, so clients must use <ds>=2.
	StoreReports bool

	// HangRate is the probability (0..1) that an AT+CMGS, once its PDU is
	// accepted (and not failed by FailRate), makes the modem hang as
	// SetHung(true) does for HangFor (default 30 s), then recover: the
	// SMS still goes out, its answer is lost. URCRate is the probability
	// (0..1) per command that a stray `+CMTI: "SM",<n>` (n counting
	// 1..30; the memory stays empty) comes after the command's response,
	// before the final result code of the line. Both draw from the
	// generator of FailRate (Seed).
	HangRate float64
	HangFor  time.Duration
	URCRate  float64

	// FullStorageRefuses makes AT+CMGS answer +CMS ERROR: 322 (memory
	// full) while the "SM" memory is full, as some modems do: incoming
	// messages left unread stop the sending.
	FullStorageRefuses bool

	// USSD maps the USSD codes the network answers (AT+CUSD) to their
	// answer: {"*100#": "Your balance is 12.34 EUR"}. Others answer
	// `+CUSD: 4` (not supported).
	USSD map[string]string
	// USSDPacked makes the modem take a USSD request only as GSM 7-bit
	// septets packed in octets, in hexadecimal (a code as text is
	// answered ERROR), and answer in the same form with <dcs> 15, as
	// Huawei modems do (UCS-2 answers stay as they are).
	USSDPacked bool

	// OnSubmit is called for every accepted SMS-SUBMIT (each part of a
	// concatenated message), once the final result code of the command
	// line ("+CMGS: <mr>" then OK) has been written. It may be nil.
	// Callbacks run in order on a goroutine of their own: the simulator
	// never waits for them, except Close, which waits for the pending
	// ones. They must not call Close.
	OnSubmit func(Submission)
	// OnSending is called, like OnSubmit, when an AT+CMGS starts waiting
	// SendDelay for the network (not when SendDelay is zero): tests use it
	// to act while a send is in progress. It may be nil.
	OnSending func()
	// OnMessage is called when all the parts of a message have been
	// submitted (single-part messages too). It may be nil.
	OnMessage func(Message)
	// Logger receives the simulator's logs. Nil discards them.
	Logger *slog.Logger
}

// Submission is one SMS-SUBMIT PDU accepted by the simulated network.
type Submission struct {
	// Modem is Config.Name.
	Modem string
	// MR is the message reference answered in "+CMGS: <mr>": it starts at
	// Config.FirstMR, increments per SMS sent and wraps after 255.
	MR int
	// To is the TP-DA destination; international numbers start with "+".
	To string
	// Text is the decoded text of this part, without the user data header.
	// For 8-bit data it holds the raw octets.
	Text string
	// Encoding is "gsm7", "ucs2" or "8bit", from TP-DCS.
	Encoding string
	// Part, Parts and ConcatRef come from the concatenation information
	// element (8 or 16-bit reference): 1, 1, 0 for a single-part message.
	Part, Parts, ConcatRef int
	// SRR is the TP-SRR (status report requested) bit.
	SRR bool
	// PDU is the hex PDU exactly as received (in text mode: the PDU the
	// modem built, without service centre address).
	PDU string
	// At is when the network accepted the message.
	At time.Time
}

// Message is a complete message: all the parts of a concatenated message,
// or a single-part message.
type Message struct {
	// Modem is Config.Name.
	Modem string
	// To is the destination, as in Submission.To.
	To string
	// Text is the reassembled text.
	Text string
	// Encoding is the encoding of the first part.
	Encoding string
	// Parts is the number of parts.
	Parts int
	// MRs are the message references of the parts, in part order.
	MRs []int
	// SRR is true when any part requested a status report.
	SRR bool
}

// Modem is a simulated GSM modem serving AT commands on a pseudo-terminal.
// Its methods are safe for concurrent use.
type Modem struct {
	cfg       Config
	path      string
	ptmx      *os.File
	ip        *interpreter
	disp      *dispatcher
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Default identity of the simulated modem.
const (
	defaultManufacturer = "simgate"
	defaultModel        = "SIM-1"
	defaultRevision     = "1.0"
	defaultIMSI         = "001010123456789"
	defaultSCA          = "+4500000000"
	defaultSignal       = 20
	defaultRegistration = 1
)

// Timing of the pseudo-terminal I/O.
const (
	writeTimeout = time.Second          // then output is dropped: the DTE is not reading
	pollInterval = 5 * time.Millisecond // while no client has the port open
)

// luhn returns digits followed by their Luhn check digit.
func luhn(digits string) string {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return digits + string(rune('0'+(10-sum%10)%10))
}

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Manufacturer == "" {
		cfg.Manufacturer = defaultManufacturer
	}
	if cfg.Model == "" {
		cfg.Model = defaultModel
	}
	if cfg.Revision == "" {
		cfg.Revision = defaultRevision
	}
	if cfg.IMEI == "" {
		cfg.IMEI = luhn("35693803564380")
	}
	if cfg.IMSI == "" {
		cfg.IMSI = defaultIMSI
	}
	if cfg.SCA == "" {
		cfg.SCA = defaultSCA
	}
	if cfg.Signal == 0 {
		cfg.Signal = defaultSignal
	}
	if cfg.Registration == 0 {
		cfg.Registration = defaultRegistration
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FailRate > 0 && len(cfg.FailCodes) == 0 {
		cfg.FailCodes = []int{42}
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = defaultAckTimeout
	}
	if cfg.HangFor == 0 {
		cfg.HangFor = defaultHangFor
	}
	switch {
	case cfg.FailRate < 0 || cfg.FailRate > 1:
		return cfg, fmt.Errorf("modemsim: FailRate %g not in 0..1", cfg.FailRate)
	case cfg.ReportFailRate < 0 || cfg.ReportFailRate > 1:
		return cfg, fmt.Errorf("modemsim: ReportFailRate %g not in 0..1", cfg.ReportFailRate)
	case cfg.ReportDropRate < 0 || cfg.ReportDropRate > 1:
		return cfg, fmt.Errorf("modemsim: ReportDropRate %g not in 0..1", cfg.ReportDropRate)
	case cfg.HangRate < 0 || cfg.HangRate > 1:
		return cfg, fmt.Errorf("modemsim: HangRate %g not in 0..1", cfg.HangRate)
	case cfg.URCRate < 0 || cfg.URCRate > 1:
		return cfg, fmt.Errorf("modemsim: URCRate %g not in 0..1", cfg.URCRate)
	case cfg.HangFor < 0:
		return cfg, fmt.Errorf("modemsim: negative HangFor")
	case cfg.Signal < 0 || cfg.Signal > 31 && cfg.Signal != 99:
		return cfg, fmt.Errorf("modemsim: Signal %d not in 0..31 or 99", cfg.Signal)
	case cfg.Registration < 0 || cfg.Registration > 10:
		return cfg, fmt.Errorf("modemsim: Registration %d not in 0..10", cfg.Registration)
	case cfg.FirstMR < 0 || cfg.FirstMR > 255:
		return cfg, fmt.Errorf("modemsim: FirstMR %d not in 0..255", cfg.FirstMR)
	case !validNumber(cfg.SCA):
		return cfg, fmt.Errorf("modemsim: invalid SCA %q", cfg.SCA)
	case cfg.SendDelay < 0:
		return cfg, fmt.Errorf("modemsim: negative SendDelay")
	case cfg.ReportDelay < 0:
		return cfg, fmt.Errorf("modemsim: negative ReportDelay")
	case cfg.AckTimeout < 0:
		return cfg, fmt.Errorf("modemsim: negative AckTimeout")
	}
	for _, s := range []string{cfg.Manufacturer, cfg.Model, cfg.Revision, cfg.IMEI, cfg.IMSI} {
		if strings.ContainsAny(s, "\r\n") {
			return cfg, fmt.Errorf("modemsim: identity %q contains a line break", s)
		}
	}
	return cfg, nil
}

// Start opens a pseudo-terminal and serves AT commands on it until Close.
// When it returns, a client can open Path.
func Start(cfg Config) (*Modem, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("modemsim: open pty: %w", err)
	}
	// Fd puts the master in blocking mode: make it non-blocking again so
	// that Close interrupts a pending Read and hangs up the line.
	if err := syscall.SetNonblock(int(ptmx.Fd()), true); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("modemsim: set non-blocking: %w", err)
	}
	// Raw slave: no CR/LF translation, no echo from the line discipline.
	// The settings stay while the master is open; the simulator does not
	// keep the slave open, so that a client's close and reopen behave as
	// with a real port.
	err = makeRaw(int(tty.Fd()))
	path := tty.Name()
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("modemsim: raw mode: %w", err)
	}
	rc, err := ptmx.SyscallConn()
	if err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("modemsim: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = path
	}
	if cfg.Link != "" {
		if err := link(path, cfg.Link); err != nil {
			ptmx.Close()
			return nil, err
		}
	}
	m := &Modem{
		cfg:  cfg,
		path: path,
		ptmx: ptmx,
		disp: newDispatcher(),
		done: make(chan struct{}),
	}
	w := &ptyWriter{f: ptmx, rc: rc, log: cfg.Logger, name: cfg.Name}
	m.ip = newInterpreter(cfg, w, m.disp.post, m.done)
	m.wg.Add(1)
	go m.readLoop()
	cfg.Logger.Info("modemsim: started", "modem", cfg.Name, "path", path, "link", cfg.Link)
	return m, nil
}

// link makes a symbolic link at name to the pseudo-terminal.
func link(path, name string) error {
	if fi, err := os.Lstat(name); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("modemsim: link %s exists and is not a symbolic link", name)
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("modemsim: link: %w", err)
		}
	}
	if err := os.Symlink(path, name); err != nil {
		return fmt.Errorf("modemsim: link: %w", err)
	}
	return nil
}

// makeRaw puts a terminal in raw mode (like cfmakeraw).
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, ioctlSetTermios, t)
}

// readLoop feeds the interpreter with what clients write to the port.
func (m *Modem) readLoop() {
	defer m.wg.Done()
	buf := make([]byte, 4096)
	attached := true
	for {
		n, err := m.ptmx.Read(buf)
		if n > 0 {
			if !attached {
				m.cfg.Logger.Debug("modemsim: client attached", "modem", m.cfg.Name)
				attached = true
			}
			m.ip.feed(buf[:n])
		}
		if err == nil {
			continue
		}
		select {
		case <-m.done:
			return
		default:
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		// EIO: no client has the port open. Wait for one: the master
		// cannot signal that, so poll.
		if attached {
			m.cfg.Logger.Debug("modemsim: no client", "modem", m.cfg.Name, "err", err)
			attached = false
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-m.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Path returns the path of the pseudo-terminal slave, such as /dev/pts/7:
// the port a client opens.
func (m *Modem) Path() string { return m.path }

// Name returns Config.Name (by default the pseudo-terminal path).
func (m *Modem) Name() string { return m.cfg.Name }

// Close stops the modem: a send in progress is abandoned, status reports
// not yet sent are dropped, the line hangs up (a client reading the port
// gets an error, as when a USB modem is unplugged), pending callbacks are
// run and the link is removed. Close returns when all of this is done;
// later calls do nothing.
func (m *Modem) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.closeErr = m.ptmx.Close()
		m.wg.Wait()
		<-m.ip.reportsDone
		m.disp.close()
		if m.cfg.Link != "" {
			if target, err := os.Readlink(m.cfg.Link); err == nil && target == m.path {
				if err := os.Remove(m.cfg.Link); err != nil && m.closeErr == nil {
					m.closeErr = err
				}
			}
		}
		m.cfg.Logger.Info("modemsim: closed", "modem", m.cfg.Name)
	})
	return m.closeErr
}

// Submissions returns a copy of the SMS-SUBMITs accepted so far, in order.
// A submission is recorded before its "+CMGS: <mr>" answer is written.
func (m *Modem) Submissions() []Submission {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return append([]Submission(nil), m.ip.subs...)
}

// Messages returns a copy of the complete messages received so far, in the
// order they were completed.
func (m *Modem) Messages() []Message {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	out := make([]Message, len(m.ip.msgs))
	for i, msg := range m.ip.msgs {
		msg.MRs = append([]int(nil), msg.MRs...)
		out[i] = msg
	}
	return out
}

// Reports returns a copy of the status reports the network sent so far, in
// the order the modem routed them (Config.Report and Drop can make that
// differ from the order of the submissions). Reports the network dropped
// and reports pending at Close are not in it.
func (m *Modem) Reports() []SentReport {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return append([]SentReport(nil), m.ip.reports...)
}

// SetReport changes the function that decides status reports (nil: the
// defaults of Config.ReportDelay and ReportStatus). It applies to messages
// submitted after the call.
func (m *Modem) SetReport(f func(Submission) StatusReport) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.reportFn = f
}

// MissedAcks returns how many times a +CDS went unacknowledged for
// Config.AckTimeout, so that the modem disabled routing.
func (m *Modem) MissedAcks() int {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return m.ip.missedAcks
}

// SetSendDelay changes the network latency of AT+CMGS. It also applies to
// a send already waiting, whose delay counts from its Ctrl-Z: a long delay
// can be cut short with SetSendDelay(0).
func (m *Modem) SetSendDelay(d time.Duration) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.sendDelay = max(d, 0)
	close(m.ip.delayChanged)
	m.ip.delayChanged = make(chan struct{})
}

// FailNextSends makes the next len(codes) sends fail: each AT+CMGS whose
// PDU is otherwise acceptable answers "+CMS ERROR: <code>" (in the form
// AT+CMEE selects) at once instead of sending. Codes queue up across calls.
func (m *Modem) FailNextSends(codes ...int) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.failCodes = append(m.ip.failCodes, codes...)
}

// OmitNextCMGS makes the next n sends go out (they are submitted, with
// their status reports) but answer a bare "OK" without the
// "+CMGS: <mr>" line, as some firmware does now and then.
func (m *Modem) OmitNextCMGS(n int) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.omitCMGS += n
}

// SetHung makes the modem stop answering (true) or recover (false). While
// hung it reads and discards its input and writes nothing, not even
// unsolicited result codes; a partial command line is forgotten. A send
// already waiting for the network still completes (the SMS goes out) but
// its answer is lost. It also ends a hang of Config.HangRate, or makes
// one last until SetHung(false).
func (m *Modem) SetHung(hung bool) {
	m.ip.setHung(hung)
}

// Inject writes unsolicited result code lines now, framed like a modem
// frames a multi-line URC: "\r\n" + lines joined by "\r\n" + "\r\n" (so a
// single line is "\r\n<line>\r\n", and Inject("+CDS: 25", pdu) puts the PDU
// on the line after +CDS). A command being processed gets its final result
// code after them; while the DTE is entering a message after AT+CMGS they
// are held until the entry ends. Each injected "+CMT:" or "+CDS:" line owes
// one AT+CNMA. Nothing is written while the modem is hung.
func (m *Modem) Inject(lines ...string) {
	if len(lines) == 0 {
		return
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "+CMT:") || strings.HasPrefix(l, "+CDS:") {
			m.ip.cnmaOwed.Add(1)
		}
	}
	m.ip.out.urc([]byte("\r\n" + strings.Join(lines, "\r\n") + "\r\n"))
}

// CMTAcks returns the <n> of each AT+CNMA that acknowledged a routed
// +CMT (or an injected +CDS) so far, in order: 0 or 1 for RP-ACK, 2 for
// RP-ERROR (the network is to send the message again).
func (m *Modem) CMTAcks() []int {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return append([]int(nil), m.ip.cmtAcks...)
}

// USSDRequests returns the USSD codes the DTE sent to the network so far
// (AT+CUSD while registered), in order.
func (m *Modem) USSDRequests() []string {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return append([]string(nil), m.ip.ussdAsked...)
}

// SetUSSD makes the network answer USSD code with answer from now on; an
// empty answer makes the code unknown (`+CUSD: 4`).
func (m *Modem) SetUSSD(code, answer string) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	if answer == "" {
		delete(m.ip.ussd, code)
		return
	}
	if m.ip.ussd == nil {
		m.ip.ussd = map[string]string{}
	}
	m.ip.ussd[code] = answer
}

// SetSignal changes the <rssi> reported by AT+CSQ (not validated, so odd
// values can be simulated).
func (m *Modem) SetSignal(rssi int) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.signal = rssi
}

// SetRegistration changes the network registration <stat> (1 home,
// 5 roaming; 0, 2, 3, 4 not registered). The modem emits +CREG, +CGREG and
// +CEREG unsolicited result codes when the DTE enabled them.
func (m *Modem) SetRegistration(stat int) {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	m.ip.reg = stat
	m.ip.checkReg()
}

// ptyWriter writes to the pseudo-terminal master. Output written while no
// client has the port open is dropped, as is output the client does not
// read within writeTimeout: the simulator never blocks for long on it.
type ptyWriter struct {
	f    *os.File
	rc   syscall.RawConn
	log  *slog.Logger
	name string
}

func (w *ptyWriter) Write(p []byte) (int, error) {
	if !w.attached() {
		w.log.Debug("modemsim: output dropped: no client", "modem", w.name, "bytes", len(p))
		return len(p), nil
	}
	_ = w.f.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.f.Write(p); err != nil {
		w.log.Debug("modemsim: output dropped", "modem", w.name, "err", err)
	}
	return len(p), nil
}

// attached reports whether a client has the slave open: without one the
// master polls POLLHUP.
func (w *ptyWriter) attached() bool {
	attached := true
	err := w.rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(p, 0); err == nil && n > 0 && p[0].Revents&unix.POLLHUP != 0 {
			attached = false
		}
	})
	return err == nil && attached
}

// dispatcher runs callbacks in order on its own goroutine.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go d.loop()
	return d
}

func (d *dispatcher) post(f func()) {
	d.mu.Lock()
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) runQueued() bool {
	d.mu.Lock()
	q := d.queue
	d.queue = nil
	d.mu.Unlock()
	for _, f := range q {
		f()
	}
	return len(q) > 0
}

func (d *dispatcher) loop() {
	defer close(d.stopped)
	for {
		if d.runQueued() {
			continue
		}
		select {
		case <-d.wake:
		case <-d.stop:
			d.runQueued()
			return
		}
	}
}

// close runs the callbacks already posted and stops the dispatcher.
func (d *dispatcher) close() {
	close(d.stop)
	<-d.stopped
}
