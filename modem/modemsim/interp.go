package modemsim

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simgate/simgate/modem/redact"
)

// Limits of the input state machine.
const (
	maxLineLen  = 1024 // characters after "AT" on one command line
	maxEntryLen = 1024 // characters of PDU hex or text after AT+CMGS
	maxQueued   = 64 << 10
	maxPartials = 256 // incomplete concatenated messages kept for reassembly
)

// settings are the per-session settings that ATZ, AT&F and AT+CFUN=1,1
// restore to their defaults.
type settings struct {
	echo, verbose, quiet  bool
	sreg                  [13]int
	cmee                  int
	cregN, cgregN, ceregN int
	cmgf                  int
	cnmi                  [5]int
	csms                  int
	cscs                  string
	csmp                  [4]int
	copsFormat            int
	cmms                  int
}

func defaultSettings() settings {
	s := settings{
		echo:    true,
		verbose: true,
		cscs:    "GSM",
		csmp:    [4]int{17, 167, 0, 0},
	}
	s.sreg[2] = 43
	s.sreg[3] = '\r'
	s.sreg[4] = '\n'
	s.sreg[5] = '\b'
	s.sreg[6] = 2
	s.sreg[7] = 50
	s.sreg[8] = 2
	s.sreg[10] = 15
	s.sreg[12] = 50
	return s
}

// interpreter is the simulated modem without its pseudo-terminal: it is fed
// bytes received from the DTE and writes its answers to an output. All its
// I/O-free behaviour (AT command parsing, SIM, network, SMS submission) lives
// here so that it can be tested and fuzzed in-process.
type interpreter struct {
	cfg  Config // defaults applied; read-only
	log  *slog.Logger
	out  *output
	post func(func())    // runs callbacks in order, off the interpreter
	done <-chan struct{} // closed when the modem closes

	hung     atomic.Bool
	cnmaOwed atomic.Int32 // routed +CMT/+CDS indications not yet acknowledged
	cmtAcks  []int        // the <n> of each AT+CNMA that answered a +CMT (Modem.CMTAcks)
	hangMu   sync.Mutex   // orders SetHung and the random hangs' recovery
	hangGen  uint64       // counts hangs and recoveries; guarded by hangMu

	// Input state: only used by the goroutine calling feed.
	st       inputState
	line     []byte
	overflow bool
	lastLine string
	echoBuf  []byte
	entry    []byte
	entryBad bool
	entryLen int    // <length> of AT+CMGS in PDU mode
	entryDA  string // <da> of AT+CMGS in text mode
	entryTA  int    // <toda> of AT+CMGS in text mode
	rest     string // rest of the command line after AT+CMGS
	lostSync bool
	// afterFinal are callbacks to post once the final result code of the
	// command line is written.
	afterFinal []func()

	mu           sync.Mutex // guards the fields below; held while feeding
	set          settings
	sim          simState
	pin          string
	pinTries     int
	pukTries     int
	cfun         int
	copsMode     int
	sca          string
	tosca        int
	cpms         [3]string
	signal       int
	ussd         map[string]string // the USSD answers (Config.USSD, SetUSSD)
	ussdAsked    []string          // the USSD codes asked, in order
	reg          int
	regReported  int
	sendDelay    time.Duration
	delayChanged chan struct{}
	failCodes    []int
	omitCMGS     int        // sends still to answer with a bare OK
	rng          *rand.Rand // for FailRate and the other random faults
	strayIndex   int        // <index> of the last stray +CMTI
	cusd         int        // AT+CUSD <n>
	nextMR       int
	subs         []Submission
	msgs         []Message
	partials     map[concatKey]*partial
	partialSeq   uint64

	// Status reports (reports.go).
	reportFn    func(Submission) StatusReport
	pending     reportQueue      // not yet due
	held        []*pendingReport // due, waiting for an AT+CNMA
	reportSeq   uint64
	ackWait     bool // a routed +CDS waits for AT+CNMA (AT+CSMS=1)
	ackDeadline time.Time
	missedAcks  int
	reports     []SentReport
	sr          [memCapacity]*storedReport // the "SR" memory; index i+1
	sm          [memCapacity]*storedReport // the "SM" (and "MT") memory: incoming messages (inbound.go)
	reportWake  chan struct{}
	reportsDone chan struct{} // closed when reportLoop returns
}

// newInterpreter returns an interpreter for cfg (defaults already applied)
// writing to w. post runs callbacks; done aborts waits when closed, and
// stops the goroutine that sends status reports (reportsDone is closed when
// it has returned).
func newInterpreter(cfg Config, w io.Writer, post func(func()), done <-chan struct{}) *interpreter {
	ip := &interpreter{
		cfg:          cfg,
		log:          cfg.Logger,
		post:         post,
		done:         done,
		set:          defaultSettings(),
		pin:          cfg.PIN,
		cfun:         1,
		sca:          cfg.SCA,
		tosca:        toa(cfg.SCA),
		cpms:         [3]string{"SM", "SM", "SM"},
		signal:       cfg.Signal,
		ussd:         maps.Clone(cfg.USSD),
		reg:          cfg.Registration,
		sendDelay:    cfg.SendDelay,
		delayChanged: make(chan struct{}),
		rng:          rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		nextMR:       cfg.FirstMR,
		partials:     make(map[concatKey]*partial),
		reportFn:     cfg.Report,
		reportWake:   make(chan struct{}, 1),
		reportsDone:  make(chan struct{}),
	}
	ip.out = &output{w: w, hung: &ip.hung}
	if cfg.PIN != "" {
		ip.sim = simPIN
	}
	ip.pinTries = cfg.PINTriesUsed
	if cfg.PIN != "" && ip.pinTries >= 3 {
		ip.sim = simPUK
	}
	ip.regReported = ip.effReg()
	go ip.reportLoop()
	return ip
}

// toa returns the type of address for a number: 145 (international) when it
// starts with "+", else 129.
func toa(number string) int {
	if len(number) > 0 && number[0] == '+' {
		return 145
	}
	return 129
}

func (ip *interpreter) closing() bool {
	select {
	case <-ip.done:
		return true
	default:
		return false
	}
}

// execute runs one command line (the characters after "AT").
func (ip *interpreter) execute(line string) {
	ip.flushEcho()
	ip.log.Debug("modemsim: command", "modem", ip.cfg.Name, "line", redact.Command(line))
	ip.run(redact.Normalize(line))
}

// run executes the commands of a normalised command line in order, stopping
// at the first error, and writes the final result code. It returns early
// when a command waits for more input (AT+CMGS): endEntry resumes it.
func (ip *interpreter) run(body string) {
	for {
		for len(body) > 0 && body[0] == ';' {
			body = body[1:]
		}
		if body == "" {
			ip.final(nil)
			return
		}
		c, rest, err := nextCommand(body)
		if err == nil {
			err = ip.exec(c)
		}
		if errors.Is(err, errSuspend) {
			ip.rest = rest
			return
		}
		ip.strayURC()
		if err != nil {
			ip.final(err)
			return
		}
		body = rest
	}
}

// strayURC writes, with probability Config.URCRate, an unsolicited
// `+CMTI: "SM",<n>` after a command, before the final result code of its
// line: an SMS arriving mid-command. <n> counts 1..30.
func (ip *interpreter) strayURC() {
	if ip.cfg.URCRate == 0 || ip.rng.Float64() >= ip.cfg.URCRate {
		return
	}
	ip.strayIndex = ip.strayIndex%memCapacity + 1
	ip.out.urc([]byte("\r\n+CMTI: \"SM\"," + strconv.Itoa(ip.strayIndex) + "\r\n"))
}

// setHung makes the modem hang or recover (Modem.SetHung).
func (ip *interpreter) setHung(hung bool) {
	ip.hangMu.Lock()
	defer ip.hangMu.Unlock()
	ip.hangGen++
	ip.swapHung(hung)
}

// hangFor makes the modem hang and recover after d, unless SetHung was
// called meanwhile.
func (ip *interpreter) hangFor(d time.Duration) {
	ip.hangMu.Lock()
	defer ip.hangMu.Unlock()
	ip.hangGen++
	gen := ip.hangGen
	ip.swapHung(true)
	time.AfterFunc(d, func() {
		ip.hangMu.Lock()
		defer ip.hangMu.Unlock()
		if ip.hangGen == gen && !ip.closing() {
			ip.hangGen++
			ip.swapHung(false)
		}
	})
}

func (ip *interpreter) swapHung(hung bool) {
	if ip.hung.Swap(hung) != hung {
		ip.log.Info("modemsim: hung", "modem", ip.cfg.Name, "hung", hung)
	}
}
