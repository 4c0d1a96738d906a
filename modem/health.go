package modem

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/warthog618/modem/info"
)

// Registration is a network registration state, <stat> of +CREG/+CEREG
// (3GPP TS 27.007 7.2, 10.1.22).
type Registration int

// Registration states.
const (
	RegNotRegistered Registration = 0 // not registered, not searching
	RegHome          Registration = 1
	RegSearching     Registration = 2
	RegDenied        Registration = 3
	RegUnknown       Registration = 4
	RegRoaming       Registration = 5
	RegSMSOnlyHome   Registration = 6 // registered for SMS only (E-UTRAN)
	RegSMSOnlyRoam   Registration = 7
)

// String returns the state's name: home, roaming, searching, denied, ...
func (r Registration) String() string {
	switch r {
	case RegNotRegistered:
		return "not_registered"
	case RegHome:
		return "home"
	case RegSearching:
		return "searching"
	case RegDenied:
		return "denied"
	case RegUnknown:
		return "unknown"
	case RegRoaming:
		return "roaming"
	case RegSMSOnlyHome:
		return "sms_only_home"
	case RegSMSOnlyRoam:
		return "sms_only_roaming"
	}
	return "stat_" + strconv.Itoa(int(r))
}

// Registered reports whether the modem can send SMS in state r.
func (r Registration) Registered() bool {
	switch r {
	case RegHome, RegRoaming, RegSMSOnlyHome, RegSMSOnlyRoam:
		return true
	}
	return false
}

// Health is what a modem reports about its SIM, network and signal.
type Health struct {
	// SIM is the +CPIN? state: "READY", "SIM PIN", "SIM PUK", ...
	SIM string
	// Registration is the best of the circuit-switched (+CREG) and EPS
	// (+CEREG) registration states.
	Registration Registration
	// SignalDBm is the received signal strength from +CSQ, in dBm;
	// SignalKnown is false when the modem does not know it (rssi 99).
	SignalDBm   int
	SignalKnown bool
	// Operator is the network operator's name from +COPS?, if known.
	Operator string
	// Storage is how full the modem's message memories are (+CPMS?), one
	// entry per memory; empty when the modem does not say.
	Storage []Memory
}

// Memory is how full one message memory is: "SM" (the SIM), "ME", "MT",
// "SR" (status reports).
type Memory struct {
	Name       string
	Used, Size int
}

// Errors of Health.Ready.
var (
	ErrSIMNotReady   = errors.New("SIM not ready")
	ErrNotRegistered = errors.New("not registered to a network")
)

// Ready returns nil when the modem can send: SIM ready and registered.
func (h Health) Ready() error {
	if h.SIM != "READY" {
		return fmt.Errorf("%w: %s", ErrSIMNotReady, h.SIM)
	}
	if !h.Registration.Registered() {
		return fmt.Errorf("%w: %s", ErrNotRegistered, h.Registration)
	}
	return nil
}

// Health queries SIM state, registration and signal. An error means the
// modem did not answer as a modem must (it may be hung); a modem that
// answers but cannot send returns a Health whose Ready fails.
func (m *Modem) Health() (Health, error) {
	var h Health
	sim, err := m.simState()
	if err != nil {
		var se *SendError
		if errors.As(classify(err, 0), &se) && se.Broken {
			return h, err
		}
		// +CME ERROR: 10 (SIM not inserted), 13 (SIM failure), ...
		sim = "ERROR " + err.Error()
	}
	h.SIM = sim
	h.Registration = RegUnknown
	best := Registration(-1)
	for _, cmd := range []string{"+CREG", "+CEREG"} {
		lines, err := m.at.Command(cmd + "?")
		if err != nil {
			if se := classify(err, 0); se.Broken {
				return h, err
			}
			continue // not every modem has +CEREG
		}
		for _, l := range lines {
			if !info.HasPrefix(l, cmd) {
				continue
			}
			if r, ok := ParseRegistration(info.TrimPrefix(l, cmd)); ok && better(r, best) {
				best = r
			}
		}
	}
	if best >= 0 {
		h.Registration = best
	}
	lines, err := m.at.Command("+CSQ")
	if err != nil {
		if se := classify(err, 0); se.Broken {
			return h, err
		}
	}
	for _, l := range lines {
		if info.HasPrefix(l, "+CSQ") {
			h.SignalDBm, h.SignalKnown = ParseCSQ(info.TrimPrefix(l, "+CSQ"))
		}
	}
	if lines, err := m.at.Command("+COPS?"); err == nil {
		for _, l := range lines {
			if info.HasPrefix(l, "+COPS") {
				h.Operator = ParseOperator(info.TrimPrefix(l, "+COPS"))
			}
		}
	} else if se := classify(err, 0); se.Broken {
		return h, err
	}
	if lines, err := m.at.Command("+CPMS?"); err == nil {
		for _, l := range lines {
			if info.HasPrefix(l, "+CPMS") {
				h.Storage = ParseCPMS(info.TrimPrefix(l, "+CPMS"))
			}
		}
	} else if se := classify(err, 0); se.Broken {
		return h, err
	}
	if err := m.checkReports(); err != nil {
		if se := classify(err, 0); se.Broken {
			return h, err
		}
		m.log.Warn("check status report setting", "err", err)
	}
	return h, nil
}

// ParseCPMS reads the memories from the answer to AT+CPMS? (without the
// prefix): `"<mem1>",<used1>,<total1>,"<mem2>",...`, each memory once.
func ParseCPMS(s string) []Memory {
	f := strings.Split(strings.TrimSpace(s), ",")
	var out []Memory
	for i := 0; i+2 < len(f); i += 3 {
		name := strings.Trim(strings.TrimSpace(f[i]), `"`)
		used, err1 := strconv.Atoi(strings.TrimSpace(f[i+1]))
		size, err2 := strconv.Atoi(strings.TrimSpace(f[i+2]))
		if name == "" || err1 != nil || err2 != nil || used < 0 || size < 0 {
			return out
		}
		if !slices.ContainsFunc(out, func(m Memory) bool { return m.Name == name }) {
			out = append(out, Memory{Name: name, Used: used, Size: size})
		}
	}
	return out
}

// ParseOperator reads the operator name from the answer to AT+COPS?
// (without the prefix): "<mode>[,<format>,<oper>[,<AcT>]]"; "" when absent.
func ParseOperator(s string) string {
	fields := strings.SplitN(strings.TrimSpace(s), ",", 3)
	if len(fields) < 3 {
		return ""
	}
	oper := fields[2]
	if i := strings.LastIndex(oper, ","); i >= 0 && !strings.HasSuffix(oper, `"`) {
		oper = oper[:i] // drop <AcT>
	}
	oper = strings.TrimSpace(oper)
	if len(oper) >= 2 && oper[0] == '"' && oper[len(oper)-1] == '"' {
		return oper[1 : len(oper)-1]
	}
	return ""
}

// better reports whether registration a is more useful than b.
func better(a, b Registration) bool {
	rank := func(r Registration) int {
		switch {
		case r.Registered():
			return 3
		case r == RegSearching:
			return 2
		case r >= 0:
			return 1
		}
		return 0
	}
	return rank(a) > rank(b)
}

// ParseRegistration reads the <stat> of the answer to AT+CREG? or
// AT+CEREG? (without the prefix): "<n>,<stat>[,<lac>,<ci>[,<AcT>...]]".
// ok is false for anything else, including the unsolicited form "<stat>".
func ParseRegistration(s string) (Registration, bool) {
	fields := strings.Split(strings.TrimSpace(s), ",")
	if len(fields) < 2 {
		return 0, false
	}
	n, err1 := strconv.Atoi(strings.TrimSpace(fields[0]))
	stat, err2 := strconv.Atoi(strings.TrimSpace(fields[1]))
	if err1 != nil || err2 != nil || n < 0 || n > 5 || stat < 0 || stat > 11 {
		return 0, false
	}
	// In the read form with n=2, field 2 is <lac> in quotes; a bare number
	// there would mean a URC "<stat>,<lac>,..." (n=2 unsolicited), where
	// fields[0] is the stat and fields[1] a quoted lac: Atoi fails above.
	return Registration(stat), true
}

// ParseCSQ reads "<rssi>,<ber>" (without the prefix) into dBm: rssi 0 is
// -113 dBm or less, 1 is -111, 2..30 are -109..-53 in 2 dB steps, 31 is
// -51 or more, 99 unknown (TS 27.007 8.5).
func ParseCSQ(s string) (dbm int, known bool) {
	rssiStr, _, _ := strings.Cut(strings.TrimSpace(s), ",")
	rssi, err := strconv.Atoi(strings.TrimSpace(rssiStr))
	if err != nil || rssi < 0 || rssi > 31 {
		return 0, false
	}
	return -113 + 2*rssi, true
}
