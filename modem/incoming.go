package modem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/info"
	"github.com/warthog618/sms/encoding/tpdu"
)

// Incoming is one part of a message the modem received, read from where
// it stored it.
type Incoming struct {
	// TPDU is the SMS-DELIVER (see ParseDeliver).
	TPDU *tpdu.TPDU
	// PDU is the part as the modem gave it (hexadecimal), octet for octet
	// what the network sent: the same when the part is read again.
	PDU string
	// Memory and Index say where the modem kept it ("SM", 3); Index is 0
	// for a message routed without storing (+CMT).
	Memory string
	Index  int
}

// ErrHeld is what Config.OnMessage returns for a part it holds without
// having kept it yet (the first parts of a long message, until the last
// comes): the modem leaves it stored and goes on.
var ErrHeld = errors.New("part held until its message is whole")

// incomingMemory is where the modem is asked to keep received messages
// (AT+CNMI <mt>=1 stores them in the preferred memory, <mem3>).
const incomingMemory = "SM"

// enableIncoming sets up reading received messages: indication handlers,
// AT+CNMI when reports did not set it, then the messages stored while
// nobody listened.
func (m *Modem) enableIncoming() {
	if err := m.at.AddIndication("+CMTI:", m.onCMTI); err != nil {
		m.log.Warn("incoming messages off", "err", err)
		return
	}
	if err := m.at.AddIndication("+CMT:", m.onCMT, at.WithTrailingLines(1)); err != nil {
		m.log.Warn("incoming messages off", "err", err)
		return
	}
	// New messages go to the SIM's memory, which the sweeps read.
	if _, err := m.at.Command(`+CPMS="SM","SM","SM"`); err != nil {
		m.log.Warn(`modem refuses to store messages in "SM" (AT+CPMS); messages stored elsewhere are read only as indicated`, "err", err)
	} else {
		m.mem1 = "SM"
	}
	if m.reports == ReportsOff {
		if _, err := m.at.Command("+CNMI=2,1,0,0,0"); err != nil {
			m.log.Warn("modem refuses to indicate new messages (AT+CNMI); read at start and health checks only", "err", err)
		}
	}
	m.SweepIncoming()
}

// onCMTI reads a message the modem stored and says so.
func (m *Modem) onCMTI(lines []string) {
	mem, index, err := parseStoredIndication("+CMTI", lines[0])
	if err != nil {
		m.log.Warn("incoming message", "err", err)
		return
	}
	m.readMu.Lock()
	defer m.readMu.Unlock()
	pdu, n, err := m.readStored(mem, index)
	if err != nil {
		m.log.Warn("read incoming message", "mem", mem, "index", index, "err", err)
		return
	}
	m.handOver(mem, index, pdu, n)
}

// readStored reads the PDU at index of memory mem (AT+CPMS, AT+CMGR) and
// its TPDU length. The caller holds readMu.
func (m *Modem) readStored(mem string, index int) (pdu string, length int, err error) {
	if err := m.selectMemory(mem); err != nil {
		return "", 0, err
	}
	lines, err := m.at.Command("+CMGR=" + strconv.Itoa(index))
	if err != nil {
		return "", 0, fmt.Errorf("read %s %d: %w", mem, index, err)
	}
	return parseCMGRPDU(lines)
}

// listStored lists the PDUs in memory mem (AT+CPMS, AT+CMGL=4). The caller
// holds readMu.
func (m *Modem) listStored(mem string) ([]storedPDU, error) {
	if err := m.selectMemory(mem); err != nil {
		return nil, err
	}
	lines, err := m.at.Command("+CMGL=4")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", mem, err)
	}
	return parseCMGL(lines), nil
}

// onCMT hands on a message routed without storing. After AT+CSMS=1 the
// network takes it for delivered only once acknowledged (AT+CNMA): that
// comes once Config.OnMessage kept it, and a message not kept is refused
// (AT+CNMA=2, RP-ERROR), so that the network sends it again later. Before
// that (phase 2), the modem acknowledges by itself.
func (m *Modem) onCMT(lines []string) {
	// +CMT: [<alpha>],<length> and the PDU on the next line.
	f := strings.Split(info.TrimPrefix(lines[0], "+CMT"), ",")
	n, err := strconv.Atoi(strings.TrimSpace(f[len(f)-1]))
	if err != nil || len(lines) < 2 {
		// Acknowledged: sent again, it would not read better.
		m.ackCMT(true)
		m.log.Warn("incoming message: bad +CMT header") // its <alpha> may name the sender
		return
	}
	tp, err := ParseDeliver(lines[1], n)
	if err != nil {
		m.ackCMT(true)
		m.log.Warn("incoming message", "err", err)
		return
	}
	err = m.cfg.OnMessage(Incoming{TPDU: tp, PDU: strings.ToUpper(strings.TrimSpace(lines[1]))})
	kept := err == nil || errors.Is(err, ErrHeld)
	if !kept {
		m.log.Warn("incoming message not kept; the network is to send it again", "err", err)
	}
	m.ackCMT(kept)
}

// ackCMT acknowledges a routed +CMT, when the modem waits for that:
// RP-ACK when kept, else RP-ERROR.
func (m *Modem) ackCMT(kept bool) {
	if !m.cnma {
		return
	}
	cmd := "+CNMA"
	if !kept {
		cmd = "+CNMA=2"
	}
	if _, err := m.at.Command(cmd); err != nil {
		m.log.Warn("acknowledge incoming message (AT"+cmd+")", "err", err)
	}
}

// handOver decodes a stored message, hands it to Config.OnMessage and
// deletes it from the modem once that kept it, and reports whether it did.
// A message that does not decode is deleted too (it never will); the
// caller holds readMu with mem selected.
func (m *Modem) handOver(mem string, index int, pdu string, length int) (kept bool) {
	tp, err := ParseDeliver(pdu, length)
	switch {
	case errors.Is(err, ErrNotDeliver):
		return true // a message of another kind (a draft, a report): not ours
	case err != nil:
		m.log.Warn("incoming message unreadable; deleted", "mem", mem, "index", index, "err", err)
	default:
		err := m.cfg.OnMessage(Incoming{TPDU: tp, PDU: strings.ToUpper(strings.TrimSpace(pdu)), Memory: mem, Index: index})
		if errors.Is(err, ErrHeld) {
			return true // kept there until its message is whole
		}
		if err != nil {
			m.log.Warn("incoming message not kept; left on the modem", "mem", mem, "index", index, "err", err)
			return false
		}
	}
	if _, err := m.at.Command("+CMGD=" + strconv.Itoa(index)); err != nil {
		m.log.Warn("delete incoming message", "mem", mem, "index", index, "err", err)
	}
	return true
}

// SweepIncoming hands on, and deletes once kept, every message stored in
// the modem's incoming memory: those that came while nobody listened, and
// any an indication missed. Storage that fills takes no more messages.
func (m *Modem) SweepIncoming() {
	if m.cfg.OnMessage == nil {
		return
	}
	m.readMu.Lock()
	defer m.readMu.Unlock()
	stored, err := m.listStored(incomingMemory)
	if err != nil {
		m.log.Warn("sweep incoming messages", "err", err)
		return
	}
	for _, s := range stored {
		if !m.handOver(incomingMemory, s.index, s.pdu, s.length) {
			return // the others would not be kept either (NATS down): next time
		}
	}
}

// parseStoredIndication parses `<prefix>: "<mem>",<index>` (+CMTI, +CDSI):
// where the modem stored a message.
func parseStoredIndication(prefix, line string) (mem string, index int, err error) {
	mem, idx, ok := strings.Cut(info.TrimPrefix(line, prefix), ",")
	if !ok {
		return "", 0, fmt.Errorf("bad %s %q", prefix, line)
	}
	mem = strings.Trim(strings.TrimSpace(mem), `"`)
	index, err = strconv.Atoi(strings.TrimSpace(idx))
	if err != nil || index < 0 || mem == "" || strings.ContainsAny(mem, `",;`) {
		return "", 0, fmt.Errorf("bad %s %q", prefix, line)
	}
	return mem, index, nil
}

// parseCMGRPDU parses the answer of AT+CMGR in PDU mode:
// "+CMGR: <stat>,[<alpha>],<length>" and the PDU, with any stray URC lines
// that leaked into the answer skipped.
func parseCMGRPDU(lines []string) (pdu string, length int, err error) {
	for i, l := range lines {
		if !info.HasPrefix(l, "+CMGR") {
			continue
		}
		fields := strings.Split(info.TrimPrefix(l, "+CMGR"), ",")
		n, err := strconv.Atoi(strings.TrimSpace(fields[len(fields)-1]))
		if err != nil || len(fields) < 2 || i+1 >= len(lines) {
			// Not quoted: in text mode the line holds the sender.
			return "", 0, fmt.Errorf("bad +CMGR line (%d fields)", len(fields))
		}
		return lines[i+1], n, nil
	}
	return "", 0, fmt.Errorf("no +CMGR line in %d lines", len(lines))
}
