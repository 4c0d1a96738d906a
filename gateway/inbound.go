package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	Add(ctx context.Context, number string) error
	Remove(ctx context.Context, number string) error
}

// inbox reassembles and publishes the messages one modem receives.
type inbox struct {
	g         *Gateway
	modem     string
	collector *sms.Collector
	// mu orders the publishes of one modem's messages.
	mu sync.Mutex
}

func (g *Gateway) newInbox(modemName string) *inbox {
	in := &inbox{g: g, modem: modemName}
	timeout := g.opts.Inbound.ReassemblyTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	in.collector = sms.NewCollector(sms.WithReassemblyTimeout(timeout, in.expired))
	return in
}

// receive takes one part of a message the modem received
// (modem.Config.OnMessage): a whole message is published, and the modem
// deletes its last part once the stream has it. The earlier parts of a
// concatenated message are held here meanwhile (lost if the daemon stops
// before the last comes).
func (in *inbox) receive(m modem.Incoming) error {
	parts, err := in.collector.Collect(*m.TPDU)
	if err != nil {
		if errors.Is(err, sms.ErrDuplicateSegment) {
			return nil // read again: the first copy counts
		}
		in.g.log.Warn("incoming part dropped", "modem", in.modem, "err", err)
		return nil
	}
	if parts == nil {
		return nil // more parts to come
	}
	return in.publish(parts)
}

// expired publishes a message whose missing parts did not come in time.
func (in *inbox) expired(parts []*tpdu.TPDU) {
	if err := in.publish(parts); err != nil {
		in.g.log.Error("incomplete incoming message lost", "modem", in.modem, "err", err)
	}
}

// publish publishes the message of parts (nil where one is missing) on
// sms.received.<modem> and waits until the stream has it.
func (in *inbox) publish(parts []*tpdu.TPDU) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	r, id := in.received(parts)
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode received message: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := in.g.opts.JS.Publish(ctx, otp.ReceivedSubject(in.modem), b, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish received message: %w", err)
	}
	in.g.log.Info("sms received", "modem", in.modem, "from", otp.MaskSender(r.From), "parts", r.Parts, "missing", r.Missing)
	in.optOut(ctx, parts, r.Text)
	in.g.opts.Metrics.SMSReceived(in.modem) // last: the message has done all it does
	return nil
}

// optOut puts the sender of text on the opt-out list, or takes it off,
// when text is a stop or start word.
func (in *inbox) optOut(ctx context.Context, parts []*tpdu.TPDU, text string) {
	o := in.g.opts.Inbound
	if o.OptOut == nil || parts[0] == nil {
		return
	}
	word := strings.TrimFunc(text, func(r rune) bool { return !unicode.IsLetter(r) })
	stop := slices.ContainsFunc(o.StopWords, func(w string) bool { return strings.EqualFold(w, word) })
	start := slices.ContainsFunc(o.StartWords, func(w string) bool { return strings.EqualFold(w, word) })
	if !stop && !start {
		return
	}
	n, err := otp.ParseNumber(parts[0].OA.Number(), in.g.limits().Region)
	if err != nil {
		in.g.log.Warn("stop or start word from a sender that is no number", "modem", in.modem, "from", otp.MaskSender(parts[0].OA.Number()))
		return
	}
	key := in.g.policy().NumberKey(n.E164)
	if stop {
		err = o.OptOut.Add(ctx, key)
	} else {
		err = o.OptOut.Remove(ctx, key)
	}
	if err != nil {
		in.g.log.Error("opt-out list", "to", n.Masked(), "err", err)
		return
	}
	in.g.log.Info("opt-out list", "to", n.Masked(), "opted_out", stop)
}

// received returns the message of parts and its message id: the same for
// the same parts read again (a modem that still held the last part when
// its daemon stopped).
func (in *inbox) received(parts []*tpdu.TPDU) (otp.Received, string) {
	r := otp.Received{Modem: in.modem, Parts: len(parts), Time: in.g.now().UTC(), Node: in.g.opts.Node}
	var text strings.Builder
	h := sha256.New()
	h.Write([]byte(in.modem))
	for _, p := range parts {
		if p == nil {
			r.Missing++
			continue
		}
		if r.From == "" {
			r.From, r.Sent, r.Encoding = p.OA.Number(), p.SCTS.Time, encodingOf(p)
		}
		if msg, err := sms.Decode([]*tpdu.TPDU{p}); err == nil {
			text.Write(msg)
		}
		b, _ := p.MarshalBinary()
		h.Write(b)
	}
	r.Text = text.String()
	if !in.g.opts.Inbound.FullSender {
		r.From = otp.MaskSender(r.From)
	}
	return r, in.modem + "." + strconv.FormatInt(r.Sent.Unix(), 10) + "." + hex.EncodeToString(h.Sum(nil)[:12])
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
