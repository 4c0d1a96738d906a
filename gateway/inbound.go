package gateway

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
)

// Inbound configures what becomes of the messages the modems receive.
type Inbound struct {
	// FullSender publishes a sender's number in full; it is masked
	// otherwise.
	FullSender bool
	// ReassemblyTimeout is how long the parts of a concatenated message
	// are waited for (10 min when zero); those that came are then
	// published as they are.
	ReassemblyTimeout time.Duration
	// Key keys the message ids of received messages (the policy hash key):
	// an id must not let anyone test a guess of a masked sender.
	Key []byte
	// OptOut, when set, is the opt-out list: a received message that is
	// one of StopWords puts its sender on it, one of StartWords takes
	// it off (case and surrounding punctuation aside), and jobs to a
	// number on it are refused (opted_out).
	OptOut                OptOut
	StopWords, StartWords []string
}

// OptOut is the opt-out list (optout.List), by numbers' policy keys.
type OptOut interface {
	Has(number string) bool
	Set(ctx context.Context, number string, out bool, at time.Time) error
}

// inbox reassembles and publishes the messages one modem receives. A part
// stays on the modem until its message is in the stream: the first parts
// of a long message are held there (modem.ErrHeld), read again at each
// sweep, and deleted once the whole message is published.
type inbox struct {
	g       *Gateway
	modem   string
	timeout time.Duration

	mu   sync.Mutex
	sets map[string]*partSet
	// done holds, for a day, the parts published (keyed hashes of their
	// PDUs): read again, they are only deleted.
	done map[string]time.Time
}

// partSet is a long message being reassembled.
type partSet struct {
	parts []*modem.Incoming
	timer *time.Timer
}

func (g *Gateway) newInbox(modemName string) *inbox {
	return &inbox{g: g, modem: modemName, timeout: cmp.Or(g.opts.Inbound.ReassemblyTimeout, 10*time.Minute),
		sets: map[string]*partSet{}, done: map[string]time.Time{}}
}

// receive takes one part of a message the modem received
// (modem.Config.OnMessage): nil once the part is in the stream (the modem
// deletes it), modem.ErrHeld while its message waits for other parts.
func (in *inbox) receive(m modem.Incoming) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := in.hash(m.PDU)
	if _, ok := in.done[h]; ok {
		return nil // published already: delete it
	}
	total, seq, ref, ok := m.TPDU.ConcatInfo()
	if !ok || total < 2 {
		return in.publish([]*modem.Incoming{&m})
	}
	if seq < 1 || seq > total {
		in.g.log.Warn("incoming part with a bad sequence number dropped", "modem", in.modem)
		return nil
	}
	key := fmt.Sprintf("%02x:%s:%d:%d", m.TPDU.OA.TOA, m.TPDU.OA.Addr, ref, total)
	s, ok := in.sets[key]
	if !ok {
		s = &partSet{parts: make([]*modem.Incoming, total)}
		s.timer = time.AfterFunc(in.timeout, func() { in.expire(key, s) })
		in.sets[key] = s
	}
	if s.parts[seq-1] != nil {
		return modem.ErrHeld // read again, or another message under its reference: held
	}
	s.parts[seq-1] = &m
	if slices.Contains(s.parts, nil) {
		return modem.ErrHeld
	}
	s.timer.Stop()
	delete(in.sets, key)
	return in.publish(s.parts)
}

// expire publishes a long message whose missing parts did not come in
// time, as it is; its parts stay on the modem until then (and again, when
// the publish fails, for the next try).
func (in *inbox) expire(key string, s *partSet) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sets[key] != s {
		return
	}
	delete(in.sets, key)
	if err := in.publish(s.parts); err != nil {
		in.g.log.Warn("incomplete incoming message not published; its parts stay on the modem", "modem", in.modem, "err", err)
	}
}

// publish puts the message of parts (nil where one is missing) on the
// opt-out list when it says so, publishes it on sms.received.<modem> and
// waits until the stream has it, then remembers its parts as done. The
// caller holds in.mu.
func (in *inbox) publish(parts []*modem.Incoming) error {
	r, id := in.received(parts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The list first: a STOP is honoured before its message may be
	// deleted, and again (harmlessly, see OptOut.Set) when read again.
	if err := in.optOut(ctx, parts, r); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode received message: %w", err)
	}
	ack, err := in.g.opts.JS.Publish(ctx, otp.ReceivedSubject(in.modem), b, jetstream.WithMsgID(id))
	if err != nil {
		return fmt.Errorf("publish received message: %w", err)
	}
	now := in.g.now()
	for _, p := range parts {
		if p != nil {
			in.done[in.hash(p.PDU)] = now
		}
	}
	for h, at := range in.done {
		if now.Sub(at) > 24*time.Hour {
			delete(in.done, h)
		}
	}
	if ack.Duplicate {
		return nil // read again after it was published: nothing new
	}
	in.g.log.Info("sms received", "modem", in.modem, "from", otp.MaskSender(r.From), "parts", r.Parts, "missing", r.Missing)
	in.g.opts.Metrics.SMSReceived(in.modem) // last: the message has done all it does
	return nil
}

// hash is a keyed hash of a part's PDU.
func (in *inbox) hash(pdu string) string {
	m := hmac.New(sha256.New, in.g.opts.Inbound.Key)
	m.Write([]byte(in.modem))
	m.Write([]byte{0})
	m.Write([]byte(pdu))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// received returns the message of parts and its message id: the same for
// the same parts read again. The id is keyed: it tells nothing of the
// sender a masked From hides.
func (in *inbox) received(parts []*modem.Incoming) (otp.Received, string) {
	r := otp.Received{Modem: in.modem, Parts: len(parts), Time: in.g.now().UTC(), Node: in.g.opts.Node}
	var present []*tpdu.TPDU
	id := hmac.New(sha256.New, in.g.opts.Inbound.Key)
	id.Write([]byte(in.modem))
	for _, p := range parts {
		if p == nil {
			r.Missing++
			continue
		}
		if r.From == "" {
			r.From, r.Sent, r.Encoding = p.TPDU.OA.Number(), p.TPDU.SCTS.Time, encodingOf(p.TPDU)
		}
		present = append(present, p.TPDU)
		id.Write([]byte{0})
		id.Write([]byte(p.PDU))
	}
	if msg, err := sms.Decode(present); err == nil && r.Missing == 0 {
		r.Text = string(msg) // whole: a character across two parts too
	} else {
		var text strings.Builder
		for _, p := range present {
			if msg, err := sms.Decode([]*tpdu.TPDU{p}); err == nil {
				text.Write(msg)
			} else {
				text.WriteString("\uFFFD") // an undecodable part, marked
			}
		}
		r.Text = text.String()
	}
	if !in.g.opts.Inbound.FullSender {
		r.From = otp.MaskSender(r.From)
	}
	return r, in.modem + "." + strconv.FormatInt(r.Sent.Unix(), 10) + "." + hex.EncodeToString(id.Sum(nil)[:12])
}

// optOut puts the sender of r on the opt-out list, or takes it off, when
// its text is a stop or start word.
func (in *inbox) optOut(ctx context.Context, parts []*modem.Incoming, r otp.Received) error {
	o := in.g.opts.Inbound
	if o.OptOut == nil {
		return nil
	}
	word := strings.TrimFunc(r.Text, func(c rune) bool { return !unicode.IsLetter(c) })
	stop := slices.ContainsFunc(o.StopWords, func(w string) bool { return strings.EqualFold(w, word) })
	start := slices.ContainsFunc(o.StartWords, func(w string) bool { return strings.EqualFold(w, word) })
	if !stop && !start {
		return nil
	}
	i := slices.IndexFunc(parts, func(p *modem.Incoming) bool { return p != nil })
	n, err := otp.ParseNumber(parts[i].TPDU.OA.Number(), in.g.limits().Region)
	if err != nil {
		in.g.log.Warn("stop or start word from a sender that is no number", "modem", in.modem, "from", otp.MaskSender(parts[i].TPDU.OA.Number()))
		return nil
	}
	at := r.Sent
	if at.IsZero() {
		at = r.Time
	}
	if err := o.OptOut.Set(ctx, in.g.policy().NumberKey(n.E164), stop, at); err != nil {
		return fmt.Errorf("opt-out list: %w", err)
	}
	in.g.log.Info("opt-out list", "to", n.Masked(), "opted_out", stop)
	return nil
}

// encodingOf names the alphabet of a part: gsm7, ucs2 or 8bit.
func encodingOf(p *tpdu.TPDU) string {
	a, err := p.Alphabet()
	switch {
	case err != nil:
		return "8bit"
	case a == tpdu.Alpha7Bit:
		return "gsm7"
	case a == tpdu.AlphaUCS2:
		return "ucs2"
	}
	return "8bit"
}
