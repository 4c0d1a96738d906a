// Package modem drives GSM modems over a serial port with AT commands in PDU
// mode (3GPP TS 27.007 and 27.005): it opens and initialises a modem, unlocks
// its SIM and sends SMS, telling apart failures that may be retried, that
// never will succeed, and whose outcome is unknown.
package modem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/gsm"
	"github.com/warthog618/modem/info"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

// Config describes one modem.
type Config struct {
	// Name identifies the modem in logs, events and metric labels.
	Name string
	// Device is the serial port, best a stable path such as
	// /dev/serial/by-id/usb-...-if02-port0. When empty, USB finds it.
	Device string
	// USB finds the port by USB identity at every open (see Resolve).
	USB USBMatch
	// Baud is the port speed; 115200 when zero.
	Baud int
	// PIN unlocks the SIM when it asks for one. It is never logged.
	PIN string
	// CommandTimeout bounds ordinary AT commands; 5 s when zero.
	CommandTimeout time.Duration
	// SendTimeout bounds one AT+CMGS; 120 s when zero (the maximum response
	// time module manuals give; the network decides).
	SendTimeout time.Duration
	// OnReport, when set, asks for a status report with every SMS and
	// receives each report the modem passes on, or the error decoding one.
	// It is called from a goroutine of the modem's, possibly concurrently
	// with Send and with itself, and must not block for long.
	OnReport func(Report, error)
	// OnMessage, when set, receives every part of every message the modem
	// receives (+CMTI, +CMT, and those stored before, see SweepIncoming);
	// a stored one is deleted from the modem once OnMessage returns nil
	// (kept), and left there otherwise: for the next sweep, or, with
	// ErrHeld, until its message is whole. A routed one (+CMT) is
	// acknowledged to the network, where the modem leaves that to us
	// (AT+CSMS=1), only once kept or held, and refused otherwise, for the
	// network to send it again. It is called from goroutines of
	// the modem's, possibly concurrently (a routed +CMT). Nothing of a
	// message's text is logged.
	OnMessage func(Incoming) error
	// Logger receives the modem's logs; nil discards them.
	Logger *slog.Logger
	// Trace logs the AT conversation at debug level on Logger: every
	// command line sent and every line received, redacted (package
	// redact): PINs and phone numbers masked, PDUs and message texts
	// withheld, only their length shown.
	Trace bool
}

func (c *Config) setDefaults() {
	if c.Baud == 0 {
		c.Baud = 115200
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 5 * time.Second
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 120 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Config returns the modem's configuration, defaults applied.
func (m *Modem) Config() Config { return m.cfg }

// Info is what a modem says about itself.
type Info struct {
	Manufacturer string
	Model        string
	Revision     string
	// IMEI identifies the modem hardware (+CGSN).
	IMEI string
	// PINTriesLeft is how many SIM PIN tries are left (AT+CPINR or
	// AT^CPIN?), -1 when the modem does not tell.
	PINTriesLeft int
}

// Modem is an open, initialised modem. Send must not be called
// concurrently: a modem sends one SMS at a time.
type Modem struct {
	cfg  Config
	log  *slog.Logger
	port io.ReadWriteCloser
	at   *at.AT
	gsm  *gsm.GSM
	// enc is kept for the modem's life so that concatenated messages get
	// distinct reference numbers (sms.Encode would restart at 1 each call).
	enc  *sms.Encoder
	info Info

	// reports is how status reports reach us; cnma is set when the
	// modem wants each routed one acknowledged (AT+CSMS=1).
	reports ReportMode
	cnmi    int // index in cnmiSettings
	cnma    bool
	// readMu orders the reading of stored reports (memory selection,
	// AT+CMGR, AT+CMGD) so that two +CDSI never interleave.
	readMu sync.Mutex
	mem1   string
	// ussdMu orders USSD requests; ussd carries the +CUSD answer.
	// ussdPacked says the last request the network answered went packed
	// (see USSD).
	ussdMu     sync.Mutex
	ussd       chan string
	ussdPacked bool

	closeOnce sync.Once
	closeErr  error
}

// Open opens the serial port and initialises the modem: echo off, numeric
// errors, SIM unlocked (entering the configured PIN once), PDU mode. ctx
// bounds the whole initialisation.
func Open(ctx context.Context, cfg Config) (*Modem, error) {
	cfg.setDefaults()
	dev, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	// No read timeout on the port: at's line scanner treats a (0, nil) read
	// as no progress and would close itself. Whatever the modem said
	// before we came is dropped.
	port, err := openPort(dev, cfg.Baud)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dev, err)
	}
	m, err := newModem(ctx, port, cfg)
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("init %s: %w", dev, err)
	}
	return m, nil
}

func newModem(ctx context.Context, port io.ReadWriteCloser, cfg Config) (*Modem, error) {
	log := cfg.Logger.With("modem", cfg.Name)
	var rw io.ReadWriter = port
	if cfg.Trace {
		rw = newTracer(port, log)
	}
	a := at.New(rw, at.WithTimeout(cfg.CommandTimeout), at.WithCmds("Z", "E0"))
	m := &Modem{
		cfg:  cfg,
		log:  log,
		port: port,
		at:   a,
		gsm:  gsm.New(a),
		enc:  sms.NewEncoder(sms.AsSubmit),
	}
	// Close the port if ctx ends during initialisation: that unblocks any
	// command in progress.
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	if err := m.init(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return m, nil
}

func (m *Modem) init() error {
	// Escape any half-entered SMS, reset (ATZ also resets +CNMI, so
	// indications must be configured after this), echo off.
	if err := m.at.Init(); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	// Numeric +CME/+CMS errors make failures classifiable. A modem that
	// refuses still works: its errors are then retryable.
	if _, err := m.at.Command("+CMEE=1"); err != nil {
		m.log.Warn("modem refuses numeric errors (AT+CMEE=1)", "err", err)
	}
	if err := m.unlockSIM(); err != nil {
		return err
	}
	if _, err := m.at.Command("+CMGF=0"); err != nil {
		return fmt.Errorf("PDU mode (AT+CMGF=0): %w", err)
	}
	if m.cfg.OnReport != nil {
		m.enableReports()
	}
	if m.cfg.OnMessage != nil {
		m.enableIncoming()
	}
	m.info = Info{
		Manufacturer: m.query("+CGMI"),
		Model:        m.query("+CGMM"),
		Revision:     m.query("+CGMR"),
		IMEI:         m.query("+CGSN"),
		PINTriesLeft: m.pinTriesLeft(),
	}
	return nil
}

// simState returns the value of +CPIN?: "READY", "SIM PIN", "SIM PUK", ...
func (m *Modem) simState() (string, error) {
	lines, err := m.at.Command("+CPIN?")
	if err != nil {
		return "", fmt.Errorf("SIM state (AT+CPIN?): %w", err)
	}
	for _, l := range lines {
		if info.HasPrefix(l, "+CPIN") {
			return strings.Trim(info.TrimPrefix(l, "+CPIN"), `" `), nil
		}
	}
	return "", fmt.Errorf("SIM state (AT+CPIN?): no +CPIN line in %q", lines)
}

func (m *Modem) unlockSIM() error {
	state, err := m.simState()
	if err != nil {
		return err
	}
	switch state {
	case "READY":
		return nil
	case "SIM PIN":
		if m.cfg.PIN == "" {
			return ErrSIMPINRequired
		}
	case "SIM PUK", "SIM PUK2":
		return ErrSIMPUK
	default:
		return fmt.Errorf("SIM not ready: %s", state)
	}
	left := m.pinTriesLeft()
	if left == 1 {
		m.log.Error("SIM PIN not entered: one try left", "tries_left", left)
		return &PINError{TriesLeft: left, Err: ErrPINLastTry}
	}
	m.log.Info("entering SIM PIN", "tries_left", left)
	if _, err := m.at.Command(`+CPIN="` + m.cfg.PIN + `"`); err != nil {
		// Refused (+CME ERROR: 16), or a plain ERROR or a timeout: any of
		// them may have cost a try, so none is retried. The error names
		// no command: it would hold the PIN.
		cause := "refused"
		var cme at.CMEError
		switch {
		case errors.As(err, &cme):
			cause = "+CME ERROR: " + string(cme)
		case errors.Is(err, at.ErrDeadlineExceeded):
			cause = "no answer"
		case errors.Is(err, at.ErrError):
			cause = "ERROR"
		}
		return &PINError{TriesLeft: m.pinTriesLeft(), Err: fmt.Errorf("%w: %s", ErrWrongPIN, cause)}
	}
	// Some SIMs take a moment after the PIN before they answer READY.
	deadline := time.Now().Add(10 * m.cfg.CommandTimeout)
	for {
		state, err := m.simState()
		if err == nil && state == "READY" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SIM not ready after PIN: %s %v", state, err)
		}
		select {
		case <-m.at.Closed():
			return at.ErrClosed
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// query returns the first information line of a command, or "" when the
// modem does not answer it.
func (m *Modem) query(cmd string) string {
	lines, err := m.at.Command(cmd)
	if err != nil {
		return ""
	}
	for _, l := range lines {
		if l = strings.TrimSpace(info.TrimPrefix(l, cmd)); l != "" && !isURC(l) {
			return l
		}
	}
	return ""
}

// isURC reports whether a line is an unsolicited result code that may leak
// into a command's response (at v0.4.0 passes the first line of an
// indication on to the command in progress).
func isURC(line string) bool {
	for _, p := range []string{"+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CBM:", "+CREG:", "+CEREG:", "+CGREG:", "RING", "+CLIP:", "+CUSD:", "^", "+CIEV:"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// Name returns the configured name of the modem.
func (m *Modem) Name() string { return m.cfg.Name }

// Info returns what the modem said about itself at initialisation.
func (m *Modem) Info() Info { return m.info }

// Closed is closed when the connection to the modem is lost.
func (m *Modem) Closed() <-chan struct{} { return m.at.Closed() }

// Close closes the serial port. It is safe to call more than once.
func (m *Modem) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.port.Close() })
	return m.closeErr
}

// Result describes a sent message.
type Result struct {
	// Refs are the message references (TP-MR) the modem returned, one per
	// part.
	Refs []int
	// Duration is the total time spent in AT+CMGS.
	Duration time.Duration
	// Report is set when a status report was requested for every part.
	Report bool
}

// SendOption changes how a message is sent.
type SendOption func(*sendConfig)

type sendConfig struct {
	validity time.Duration
}

// WithValidity sets the message's validity period (TP-VP, relative): the
// service centre gives up delivering it after d, rounded down to the
// format's steps (5 min up to 12 h; at least 5 min). An OTP is worth
// nothing after its ttl, so there is no point in the network trying
// longer. Zero leaves the service centre's default.
func WithValidity(d time.Duration) SendOption {
	return func(c *sendConfig) { c.validity = d }
}

// tpduFunc adapts a function to tpdu.Option.
type tpduFunc func(*tpdu.TPDU)

func (f tpduFunc) ApplyTPDUOption(t *tpdu.TPDU) error { f(t); return nil }

// Send sends text to number (E.164, "+4526227921") as one or more
// concatenated SMS, choosing GSM 7-bit or UCS-2, with a status report
// requested for each part when the modem passes reports on. It returns when
// every part was confirmed (+CMGS), or with a *SendError. ctx is checked
// between parts; an AT+CMGS in progress is not interrupted, since
// abandoning it would leave its outcome unknown.
func (m *Modem) Send(ctx context.Context, number, text string, opts ...SendOption) (Result, error) {
	var res Result
	var sc sendConfig
	for _, o := range opts {
		o(&sc)
	}
	eopts := []sms.EncoderOption{sms.To(number)}
	if sc.validity > 0 {
		var vp tpdu.ValidityPeriod
		vp.SetRelative(sc.validity)
		eopts = append(eopts, sms.WithTemplateOption(tpduFunc(func(t *tpdu.TPDU) { t.SetVP(vp) })))
	}
	if m.reports != ReportsOff {
		res.Report = true
		eopts = append(eopts, sms.WithTemplateOption(tpduFunc(func(t *tpdu.TPDU) { t.FirstOctet |= tpdu.FoSRR })))
	}
	pdus, err := m.enc.Encode([]byte(text), eopts...)
	if err != nil {
		return res, &SendError{Class: Permanent, Err: fmt.Errorf("encode: %w", err)}
	}
	for _, p := range pdus {
		if err := ctx.Err(); err != nil {
			return res, &SendError{Class: Retryable, Sent: len(res.Refs), Err: err}
		}
		select {
		case <-m.at.Closed():
			// Gone before this part was handed over: certainly not sent.
			return res, &SendError{Class: Retryable, Sent: len(res.Refs), Broken: true, Err: at.ErrClosed}
		default:
		}
		tp, err := p.MarshalBinary()
		if err != nil {
			return res, &SendError{Class: Permanent, Err: fmt.Errorf("encode: %w", err)}
		}
		start := time.Now()
		mr, err := m.gsm.SendPDU(tp, at.WithTimeout(m.cfg.SendTimeout))
		res.Duration += time.Since(start)
		if err != nil {
			return res, classify(err, len(res.Refs))
		}
		// +CMGS: <mr>[,<scts>|<ackpdu>]
		mr, _, _ = strings.Cut(mr, ",")
		ref, err := strconv.Atoi(strings.TrimSpace(mr))
		if err != nil {
			// The modem said +CMGS but not a number: the part went out.
			m.log.Warn("unparsable message reference", "cmgs", mr)
			ref = -1
		}
		res.Refs = append(res.Refs, ref)
	}
	return res, nil
}
