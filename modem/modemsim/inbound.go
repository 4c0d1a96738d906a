package modemsim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// Incoming is an SMS the network delivers to the modem (Modem.Receive).
type Incoming struct {
	// From is the sender: a number ("+4520000000") or an alphanumeric
	// name ("Telco").
	From string
	// Text is the message; longer than one SMS takes, it comes in
	// concatenated parts (8-bit references).
	Text string
	// UCS2 encodes it as UCS-2 even when GSM 7-bit would do.
	UCS2 bool
	// Ref16 numbers a long message's parts with a 16-bit reference (the
	// concatenation element 0x08) instead of an 8-bit one.
	Ref16 bool
	// Only, when set, delivers only these parts of a long message (from
	// 1): the others are lost, or come with another Receive of the same
	// message (its parts have the same reference).
	Only []int
	// Unannounced stores the message with no indication, whatever
	// AT+CNMI says: a +CMTI the line lost.
	Unannounced bool
	// Routed hands the message on with +CMT, without storing it,
	// whatever AT+CNMI says, as modems do with a class 0 message or when
	// set to route (<mt>=2). After AT+CSMS=1 each owes an AT+CNMA (see
	// Modem.CMTAcks).
	Routed bool
	// At is the service centre's time stamp; now when zero.
	At time.Time
}

// Delivery is what became of one part of an incoming SMS.
type Delivery struct {
	// Route: RouteCMTI stored and indicated (`+CMTI: "SM",<index>`,
	// AT+CNMI <mt>=1), RouteCMT routed (`+CMT: ,<length>` and the PDU,
	// <mt>=2 or 3), RouteStored stored with no indication (<mt>=0), or
	// RouteLost (the memory is full, or the modem hangs).
	Route Route
	// Index is where it was stored, from 1; 0 when it was not.
	Index int
}

// Routes of incoming messages (beside those of status reports).
const (
	RouteCMTI   Route = "cmti"
	RouteCMT    Route = "cmt"
	RouteStored Route = "stored"
)

// ErrIncoming is Receive's error for a message it cannot encode.
var ErrIncoming = errors.New("modemsim: cannot encode the incoming message")

// Receive delivers an incoming SMS to the modem as the network would, part
// by part, as AT+CNMI says, into the "SM" memory (also read as "MT"), which
// holds 30 messages: one that does not fit is lost. It returns what became
// of each part.
func (m *Modem) Receive(in Incoming) ([]Delivery, error) {
	oa := tpdu.NewAddress(tpdu.FromNumber(in.From))
	if strings.TrimLeft(strings.TrimPrefix(in.From, "+"), "0123456789") != "" {
		// A name, as operators send from ("Telco"): 7-bit packed.
		oa = tpdu.Address{Addr: in.From, TOA: 0x80}
		oa.SetTypeOfNumber(tpdu.TonAlphanumeric)
	}
	opts := []sms.EncoderOption{sms.AsDeliver}
	msg := []byte(in.Text)
	if in.UCS2 {
		opts = append(opts, sms.AsUCS2)
		msg = ucs2.Encode([]rune(in.Text))
	}
	tps, err := sms.Encode(msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIncoming, err)
	}
	if in.Ref16 && len(tps) > 1 {
		// The same parts, cut again with a 16-bit reference.
		t := tps[0]
		t.UDH = nil
		var ud []byte
		for _, p := range tps {
			ud = append(ud, p.UD...)
		}
		ref := tpdu.Counter(refCounter{0x1234})
		tps = t.Segment(ud, tpdu.With16BitConcatRef, tpdu.WithConcatRef(ref))
	}
	at := in.At
	if at.IsZero() {
		at = time.Now().Truncate(time.Second)
	}
	ip := m.ip
	ip.mu.Lock()
	defer ip.mu.Unlock()
	out := make([]Delivery, 0, len(tps))
	for i := range tps {
		if len(in.Only) > 0 && !slices.Contains(in.Only, i+1) {
			continue
		}
		tps[i].OA = oa
		tps[i].SCTS = tpdu.Timestamp{Time: at}
		out = append(out, ip.deliver(&tps[i], in.Unannounced, in.Routed))
	}
	return out, nil
}

// deliver hands one SMS-DELIVER to the client as AT+CNMI <mt> says, or
// only stores it when quiet, or routes it (+CMT) when routed. The caller
// holds ip.mu.
func (ip *interpreter) deliver(t *tpdu.TPDU, quiet, routed bool) Delivery {
	b, err := t.MarshalBinary()
	if err != nil {
		return Delivery{Route: RouteLost}
	}
	smsc := pdumode.SMSCAddress{}
	smsc.SetNumber(ip.sca)
	hexs, err := (&pdumode.PDU{SMSC: smsc, TPDU: b}).MarshalHexString()
	if err != nil {
		return Delivery{Route: RouteLost}
	}
	hexs = strings.ToUpper(hexs)
	var d Delivery
	mt := ip.set.cnmi[1]
	switch {
	case quiet:
		mt = 0
	case routed:
		mt = 2
	}
	switch {
	case ip.hung.Load():
		d.Route = RouteLost
	case mt == 2 || mt == 3:
		if !ip.out.clientAttached() {
			d.Route = RouteLost
			break
		}
		if ip.set.cmgf == 1 {
			ip.out.urc([]byte("\r\n+CMT: " + deliverHeader(t, ip.set.cscs) + "\r\n" + deliverText(t) + "\r\n"))
		} else {
			ip.out.urc([]byte("\r\n+CMT: ," + strconv.Itoa(len(b)) + "\r\n" + hexs + "\r\n"))
		}
		d.Route = RouteCMT
		ip.cnmaOwed.Add(1)
	default:
		i := ip.store(ip.sm[:], &storedReport{tp: t, n: len(b), hex: hexs})
		if i == 0 {
			ip.log.Warn("modemsim: SM memory full: incoming message lost", "modem", ip.cfg.Name)
			d.Route = RouteLost
			break
		}
		d.Route, d.Index = RouteStored, i
		if mt == 1 {
			d.Route = RouteCMTI
			ip.out.urc([]byte("\r\n+CMTI: \"SM\"," + strconv.Itoa(i) + "\r\n"))
		}
	}
	ip.log.Info("modemsim: incoming message", "modem", ip.cfg.Name, "from", mask(t.OA.Number()), "route", d.Route, "index", d.Index)
	return d
}

// store puts r in the first free slot of mem and returns its index (from
// 1), or 0 when mem is full.
func (ip *interpreter) store(mem []*storedReport, r *storedReport) int {
	for i, s := range mem {
		if s == nil {
			mem[i] = r
			return i + 1
		}
	}
	return 0
}

// deliverHeader formats the fields text mode shows before an SMS-DELIVER's
// text (+CMT, +CMGR): "<oa>",,"<scts>".
func deliverHeader(t *tpdu.TPDU, cscs string) string {
	return fmt.Sprintf("%q,,%q", encodeCSCS(t.OA.Number(), cscs), textTime(t.SCTS.Time))
}

// deliverText returns the text of an SMS-DELIVER part, as text mode shows
// it (this part only).
func deliverText(t *tpdu.TPDU) string {
	msg, err := sms.Decode([]*tpdu.TPDU{t})
	if err != nil {
		return ""
	}
	return string(msg)
}

// Stored returns how many messages memory mem ("SM", "SR", ...) holds.
func (m *Modem) Stored(mem string) int {
	m.ip.mu.Lock()
	defer m.ip.mu.Unlock()
	return m.ip.memUsed(mem)
}

// refCounter is a tpdu.Counter that always gives its reference.
type refCounter struct{ ref int }

// Count implements tpdu.Counter.
func (c refCounter) Count() int { return c.ref }
