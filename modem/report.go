package modem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/info"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

// Report is an SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2.3): the service
// centre's word on the fate of a message the modem sent.
type Report struct {
	// MR is the TP-MR of the message reported on: the reference +CMGS
	// answered. It is one byte and wraps, so it identifies a message only
	// together with the modem, the recipient and the time.
	MR int
	// Recipient is TP-RA, the number the message went to: "+4526227921"
	// when the service centre gives it in international format, otherwise
	// its digits as given.
	Recipient string
	// SCTS is when the service centre received the message (its clock);
	// zero when its time stamp could not be read.
	SCTS time.Time
	// Discharge is TP-DT: when the message was delivered, or when the
	// service centre last tried or gave up; zero when its time stamp could
	// not be read.
	Discharge time.Time
	// TPStatus is TP-ST (§9.2.3.15).
	TPStatus byte
}

// Delivery classifies a TP-Status.
type Delivery int

// Delivery classes of a TP-Status.
const (
	// Delivered: the transaction completed (0x00-0x1F): received by the
	// phone (0x00), forwarded without confirmation (0x01) or replaced
	// (0x02).
	Delivered Delivery = iota
	// Pending: a temporary error; the service centre still tries
	// (0x20-0x3F). Another report follows.
	Pending
	// Undeliverable: a permanent error, or a temporary one the service
	// centre stopped trying (0x40-0x7F but 0x46; reserved values).
	Undeliverable
	// ValidityExpired: the message's validity period passed before it
	// could be delivered (0x46).
	ValidityExpired
)

var deliveryNames = [...]string{"delivered", "pending", "failed", "expired"}

// String returns "delivered", "pending", "failed" or "expired".
func (d Delivery) String() string {
	if d < 0 || int(d) >= len(deliveryNames) {
		return "Delivery(" + strconv.Itoa(int(d)) + ")"
	}
	return deliveryNames[d]
}

// Final reports whether no other report will follow.
func (d Delivery) Final() bool { return d != Pending }

// Classify maps a TP-Status to its class. Values the standard reserves
// are treated as "service rejected" (0x63), which 23.040 prescribes for
// values a receiver does not know: a final failure.
func Classify(st byte) Delivery {
	switch {
	case st <= 0x1f:
		return Delivered
	case st <= 0x3f:
		return Pending
	case st == 0x46:
		return ValidityExpired
	default:
		return Undeliverable
	}
}

// Delivery returns the class of the report's status.
func (r Report) Delivery() Delivery { return Classify(r.TPStatus) }

// ErrNotStatusReport is returned for a PDU that decodes but is another kind
// of message (an SMS-DELIVER read from the wrong memory, say).
var ErrNotStatusReport = errors.New("not an SMS-STATUS-REPORT")

// ParseStatusReport decodes the hexadecimal PDU of a +CDS indication or a
// +CMGR answer. length is the TPDU length the modem announced with it
// (+CDS: <length>): the octets beyond it at the front are the service
// centre address, which 27.005 puts there but some modems leave out. With
// length < 0 the address is assumed present.
func ParseStatusReport(pdu string, length int) (Report, error) {
	t, err := tpduOf(pdu, length)
	if err != nil {
		return Report{}, fmt.Errorf("status report: %w", err)
	}
	if len(t) == 0 || tpdu.FirstOctet(t[0]).MTI() != tpdu.MtCommand {
		return Report{}, ErrNotStatusReport
	}
	tp, err := sms.Unmarshal(t, sms.AsMT)
	if err != nil {
		// Service centres in the wild send time stamps that are not BCD
		// (a time-zone octet 0xA0, say): the report is still the
		// message's fate.
		if r, lerr := parseStatusReportLoose(t); lerr == nil {
			return r, nil
		}
		return Report{}, fmt.Errorf("status report: %w", err)
	}
	return Report{
		MR:        int(tp.MR),
		Recipient: tp.RA.Number(),
		SCTS:      tp.SCTS.Time,
		Discharge: tp.DT.Time,
		TPStatus:  tp.ST,
	}, nil
}

// parseStatusReportLoose decodes an SMS-STATUS-REPORT TPDU field by field
// (23.040 §9.2.2.3: first octet, TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST, and
// optional parameters it ignores), reading a time stamp that is not valid
// as unknown (zero) rather than failing.
func parseStatusReportLoose(t []byte) (Report, error) {
	if len(t) < 2 {
		return Report{}, errors.New("status report: too short")
	}
	var ra tpdu.Address
	n, err := ra.UnmarshalBinary(t[2:])
	if err != nil {
		return Report{}, fmt.Errorf("status report: recipient: %w", err)
	}
	rest := t[2+n:]
	if len(rest) < 15 {
		return Report{}, errors.New("status report: too short for its time stamps and status")
	}
	return Report{
		MR:        int(t[1]),
		Recipient: ra.Number(),
		SCTS:      looseTimestamp(rest[:7]),
		Discharge: looseTimestamp(rest[7:14]),
		TPStatus:  rest[14],
	}, nil
}

// looseTimestamp decodes a TP-SCTS/TP-DT time stamp (7 octets of swapped
// BCD semi-octets, the last the time zone in quarter hours, its bit 3 the
// sign), or returns the zero time when any of it is not valid.
func looseTimestamp(b []byte) time.Time {
	var f [7]int
	for i, o := range b {
		lo, hi := int(o&0x0f), int(o>>4)
		if i == 6 {
			lo &^= 0x08 // the sign
		}
		if lo > 9 || hi > 9 {
			return time.Time{}
		}
		f[i] = lo*10 + hi
	}
	quarters := f[6]
	if b[6]&0x08 != 0 {
		quarters = -quarters
	}
	if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59 || quarters > 56 || quarters < -48 {
		return time.Time{}
	}
	loc := time.FixedZone("", quarters*15*60)
	return time.Date(2000+f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, loc)
}

// parseCDS parses the two lines of a routed status report:
// "+CDS: <length>" and the PDU.
func parseCDS(lines []string) (Report, error) {
	if len(lines) != 2 {
		return Report{}, fmt.Errorf("+CDS: %d lines", len(lines))
	}
	n, err := strconv.Atoi(strings.TrimSpace(info.TrimPrefix(lines[0], "+CDS")))
	if err != nil || n <= 0 || n > 255 {
		return Report{}, fmt.Errorf("+CDS: bad length %q", lines[0])
	}
	return ParseStatusReport(lines[1], n)
}

// ReportMode is how a modem passes status reports on (AT+CNMI <ds>).
type ReportMode int

// Report modes.
const (
	// ReportsOff: no status reports are requested, because none were
	// asked for (Config.OnReport is nil) or the modem refuses them.
	ReportsOff ReportMode = iota
	// ReportsRouted: each report arrives as a +CDS indication (<ds>=1).
	ReportsRouted
	// ReportsStored: the modem stores each report and says where with
	// +CDSI; it is read with AT+CMGR and then deleted (<ds>=2).
	ReportsStored
)

// String returns "off", "routed" or "stored".
func (r ReportMode) String() string {
	switch r {
	case ReportsOff:
		return "off"
	case ReportsRouted:
		return "routed"
	case ReportsStored:
		return "stored"
	}
	return "ReportMode(" + strconv.Itoa(int(r)) + ")"
}

// cnmiSettings are tried in order: routed reports first, buffered in the
// modem while the line is busy (<mode>=2); stored reports for modems that
// only store them; then <mode>=1 for modems without a buffer. New SMS
// stay in storage (<mt>=1): simgate does not read them.
var cnmiSettings = []struct {
	set  string
	ds   int
	mode ReportMode
}{
	{"+CNMI=2,1,0,1,0", 1, ReportsRouted},
	{"+CNMI=2,1,0,2,0", 2, ReportsStored},
	{"+CNMI=1,1,0,1,0", 1, ReportsRouted},
	{"+CNMI=1,1,0,2,0", 2, ReportsStored},
}

// Reports returns how the modem passes status reports on.
func (m *Modem) Reports() ReportMode { return m.reports }

// enableReports sets up status reports: indication handlers, then AT+CNMI.
// A modem that refuses every setting still sends SMS, untracked.
func (m *Modem) enableReports() {
	// Phase 2 message service: the modem acknowledges routed reports to
	// the network itself. A modem that insists on phase 2+ wants an
	// AT+CNMA for each.
	if _, err := m.at.Command("+CSMS=0"); err != nil {
		m.cnma = csmsService(m.lines("+CSMS?")) == 1
	}
	// Handlers before AT+CNMI: a report may come at once.
	if err := m.at.AddIndication("+CDS:", m.onCDS, at.WithTrailingLines(1)); err != nil {
		m.log.Warn("status reports off", "err", err)
		return
	}
	if err := m.at.AddIndication("+CDSI:", m.onCDSI); err != nil {
		m.log.Warn("status reports off", "err", err)
		return
	}
	for i, s := range cnmiSettings {
		if _, err := m.at.Command(s.set); err == nil {
			m.reports, m.cnmi = s.mode, i
			break
		}
	}
	switch m.reports {
	case ReportsOff:
		m.log.Warn("modem refuses status reports (AT+CNMI); deliveries will not be tracked")
	case ReportsStored:
		m.sweepStored()
	}
	m.log.Debug("status reports", "mode", m.reports, "cnma", m.cnma)
}

// lines returns the answer to cmd, nil on error.
func (m *Modem) lines(cmd string) []string {
	l, _ := m.at.Command(cmd)
	return l
}

// csmsService returns <service> from the answer to AT+CSMS?, or -1.
func csmsService(lines []string) int {
	for _, l := range lines {
		if info.HasPrefix(l, "+CSMS") {
			s, _, _ := strings.Cut(info.TrimPrefix(l, "+CSMS"), ",")
			if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
				return n
			}
		}
	}
	return -1
}

// checkReports restores the report setting when the modem dropped it (a
// missed AT+CNMA, a reset behind our back): AT+CNMI? must show our <ds>.
func (m *Modem) checkReports() error {
	if m.reports == ReportsOff {
		return nil
	}
	lines, err := m.at.Command("+CNMI?")
	if err != nil {
		return err
	}
	want := cnmiSettings[m.cnmi]
	for _, l := range lines {
		if !info.HasPrefix(l, "+CNMI") {
			continue
		}
		f := strings.Split(info.TrimPrefix(l, "+CNMI"), ",")
		if len(f) >= 4 && strings.TrimSpace(f[3]) == strconv.Itoa(want.ds) {
			return nil
		}
	}
	m.log.Warn("modem dropped its status report setting; restoring", "cnmi", lines)
	_, err = m.at.Command(want.set)
	return err
}

// onCDS handles a routed status report.
func (m *Modem) onCDS(lines []string) {
	r, err := parseCDS(lines)
	if m.cnma {
		// Acknowledge even a report we cannot read: the network would
		// only send it again.
		if _, err := m.at.Command("+CNMA"); err != nil {
			m.log.Warn("acknowledge status report (AT+CNMA)", "err", err)
		}
	}
	m.cfg.OnReport(r, err)
}

// onCDSI reads a stored status report and deletes it.
func (m *Modem) onCDSI(lines []string) {
	mem, index, err := parseStoredIndication("+CDSI", lines[0])
	if err != nil {
		m.cfg.OnReport(Report{}, err)
		return
	}
	m.readMu.Lock()
	defer m.readMu.Unlock()
	pdu, n, err := m.readStored(mem, index)
	if err != nil {
		m.cfg.OnReport(Report{}, fmt.Errorf("stored report: %w", err))
		return
	}
	r, err := ParseStatusReport(pdu, n)
	if errors.Is(err, ErrNotStatusReport) {
		// Not a report (the memory was not the one we thought): an
		// incoming message, maybe, which only its handler deletes.
		m.mem1 = ""
		m.cfg.OnReport(r, err)
		return
	}
	if _, derr := m.at.Command("+CMGD=" + strconv.Itoa(index)); derr != nil {
		m.log.Warn("delete stored report", "mem", mem, "index", index, "err", derr)
	}
	m.cfg.OnReport(r, err)
}

// selectMemory makes mem the memory AT+CMGR reads and AT+CMGD deletes from.
func (m *Modem) selectMemory(mem string) error {
	if mem == m.mem1 {
		return nil
	}
	if _, err := m.at.Command(`+CPMS="` + mem + `"`); err != nil {
		return fmt.Errorf("select memory %s: %w", mem, err)
	}
	m.mem1 = mem
	return nil
}

// sweepStored hands on and deletes the reports a modem stored while nobody
// listened: a full report memory takes no more.
func (m *Modem) sweepStored() {
	m.readMu.Lock()
	defer m.readMu.Unlock()
	stored, err := m.listStored("SR")
	if err != nil {
		m.log.Debug("no stored reports to sweep", "err", err)
		return
	}
	for _, s := range stored {
		r, err := ParseStatusReport(s.pdu, s.length)
		m.cfg.OnReport(r, err)
		if _, err := m.at.Command("+CMGD=" + strconv.Itoa(s.index)); err != nil {
			m.log.Warn("delete stored report", "index", s.index, "err", err)
		}
	}
}

type storedPDU struct {
	index, length int
	pdu           string
}

// parseCMGL parses the answer of AT+CMGL in PDU mode: pairs of
// "+CMGL: <index>,<stat>,[<alpha>],<length>" and the PDU.
func parseCMGL(lines []string) []storedPDU {
	var out []storedPDU
	for i := 0; i+1 < len(lines); i++ {
		if !info.HasPrefix(lines[i], "+CMGL") {
			continue
		}
		f := strings.Split(info.TrimPrefix(lines[i], "+CMGL"), ",")
		if len(f) < 3 {
			continue
		}
		index, err1 := strconv.Atoi(strings.TrimSpace(f[0]))
		length, err2 := strconv.Atoi(strings.TrimSpace(f[len(f)-1]))
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, storedPDU{index: index, length: length, pdu: lines[i+1]})
		i++
	}
	return out
}
