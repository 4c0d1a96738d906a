package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate/delivery"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
)

// report takes a status report, or the error decoding one, from a modem.
func (g *Gateway) report(modemName string, r modem.Report, err error) {
	if err != nil {
		// The error never holds the PDU: it encodes the number.
		g.log.Warn("malformed status report", "modem", modemName, "err", err)
		g.opts.Metrics.Report(modemName, metrics.ReportMalformed)
		return
	}
	g.tracker.Report(modemName, r)
}

// reportMatched counts a report once the tracker knows whether it matched
// a message.
func (g *Gateway) reportMatched(modemName string, r modem.Report, matched bool) {
	if matched {
		g.opts.Metrics.Report(modemName, metrics.ReportMatched)
		return
	}
	g.opts.Metrics.Report(modemName, metrics.ReportUnmatched)
	g.log.Info("status report matches no message", "modem", modemName, "mr", r.MR,
		"to", maskRecipient(r.Recipient), "status", r.TPStatus)
}

// maskRecipient masks a report's recipient like any number in logs.
func maskRecipient(ra string) string {
	if n, err := otp.ParseNumber(ra, ""); err == nil {
		return n.Masked()
	}
	return otp.MaskRaw(ra)
}

// deliveryOutcome publishes a change of a sent message's delivery state,
// records a final one as the job's state and counts it.
func (g *Gateway) deliveryOutcome(o delivery.Outcome) {
	// Off the modem's reader (a publish may wait out an election), one
	// after another (a message's pending comes before its verdict).
	g.outcomes.do(&g.settle, func() { g.tellOutcome(o) })
}

func (g *Gateway) tellOutcome(o delivery.Outcome) {
	ctx := context.Background()
	m := o.Message
	ev := otp.Event{Type: o.State, ID: m.ID, To: m.Masked, Modem: m.Modem, Parts: len(m.Refs), Discharge: o.Discharge}
	log := g.log.With("id", m.ID, "to", m.Masked, "modem", m.Modem)
	if o.TPStatus >= 0 {
		st := o.TPStatus
		ev.TPStatus = &st
		log = log.With("status", st)
	}
	if o.State == otp.StateDelivered {
		latency := o.At.Sub(m.Accepted)
		ev.Latency = latency.Seconds()
		log = log.With("latency", latency.Round(time.Millisecond))
	}
	switch o.State {
	case otp.StateDelivered:
		log.Info("sms delivered")
	case otp.StateDeliveryPending:
		log.Info("sms delivery delayed; the network keeps trying")
	case otp.StateDeliveryUnknown:
		log.Warn("sms delivery unknown: no final status report in time", "timeout", g.opts.DeliveryTimeout)
	default:
		log.Warn("sms not delivered", "delivery", strings.TrimPrefix(string(o.State), "delivery_"))
	}
	final := o.State.DeliveryFinal()
	if final {
		g.opts.Metrics.Delivery(m.Modem, o.State, o.At.Sub(m.Accepted))
		g.opts.Metrics.DeliveryPending(g.tracker.Pending())
	}
	if m.Restored {
		if final && g.told(ctx, m.ID, m.Seq, "") {
			// Another holder of the job sent it again and told its
			// verdict: one per job.
			g.unjournal(ctx, m.ID, log)
			return
		}
		// Its daemon may have died before the sent event was stored.
		g.tellSent(ctx, m, log)
	}
	// Told (and stored) before the message leaves the journal: a crash
	// in between has the next start find the verdict and not follow the
	// message again (Restore). A verdict that could not be told keeps the
	// message in the journal: the next start follows it again.
	ev = g.stamp(ev)
	if err := g.tell(ctx, ev, eventID(m.ID, m.Seq, o.State, 0)); err != nil {
		return
	}
	if final {
		g.record(ctx, otp.Prepared{Job: otp.Job{ID: m.ID}}, 0, ev)
		g.unjournal(ctx, m.ID, log)
	}
}

// tellSent makes sure the sent event of a message followed from the
// journal is stored before its delivery verdict: its daemon journalled it,
// then may have died before it recorded the job's end or told it. The
// recorded sent event is told again unless the stream has it; with no
// record of the end, one is made from the journal and recorded.
func (g *Gateway) tellSent(ctx context.Context, m delivery.Message, log *slog.Logger) {
	msgID := eventID(m.ID, m.Seq, otp.StateSent, 0)
	if g.told(ctx, m.ID, m.Seq, msgID) {
		return
	}
	raw, err := g.policy().FinalEvent(ctx, m.ID)
	if err != nil {
		log.Warn("read the job's end", "err", err)
		return
	}
	var ev otp.Event
	if raw != nil && json.Unmarshal(raw, &ev) == nil {
		if ev.Type == otp.StateSent {
			g.tellRaw(ctx, ev, raw, msgID)
		}
		return // another end (sent elsewhere, failed): not this message's to tell
	}
	ev = g.stamp(otp.Event{Type: otp.StateSent, ID: m.ID, To: m.Masked, Modem: m.Modem, Refs: m.Refs,
		Parts: len(m.Refs), Report: true})
	if err := g.record(ctx, otp.Prepared{Job: otp.Job{ID: m.ID}}, m.Seq, ev); err != nil {
		return // another message holds the job, or the store is away
	}
	g.tell(ctx, ev, msgID)
}

// serial runs functions one after another, in the order given, on a
// goroutine of its own while there are any.
type serial struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// do runs f after the functions given before it; wg waits for it.
func (s *serial) do(wg *sync.WaitGroup, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, f)
	if s.running {
		return
	}
	s.running = true
	wg.Go(func() {
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.running = false
				s.mu.Unlock()
				return
			}
			f := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			f()
		}
	})
}
