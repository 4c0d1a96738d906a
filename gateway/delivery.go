package gateway

import (
	"context"
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
		g.opts.Metrics.Reports.WithLabelValues(modemName, metrics.ReportMalformed).Inc()
		return
	}
	g.tracker.Report(modemName, r)
}

// reportMatched counts a report once the tracker knows whether it matched
// a message.
func (g *Gateway) reportMatched(modemName string, r modem.Report, matched bool) {
	if matched {
		g.opts.Metrics.Reports.WithLabelValues(modemName, metrics.ReportMatched).Inc()
		return
	}
	g.opts.Metrics.Reports.WithLabelValues(modemName, metrics.ReportUnmatched).Inc()
	g.log.Info("status report matches no message", "modem", modemName, "mr", r.MR,
		"to", maskRecipient(r.Recipient), "status", r.Status)
}

// maskRecipient masks a report's recipient like any number in logs.
func maskRecipient(ra string) string {
	if n, err := otp.ParseNumber(ra, ""); err == nil {
		return n.Masked()
	}
	return otp.MaskRaw(ra)
}

// deliveryEvents maps delivery states to events and recorded job states.
var deliveryEvents = map[delivery.Status]otp.EventType{
	delivery.Delivered: otp.EventDelivered,
	delivery.Pending:   otp.EventDeliveryPending,
	delivery.Failed:    otp.EventDeliveryFailed,
	delivery.Expired:   otp.EventDeliveryExpired,
	delivery.Unknown:   otp.EventDeliveryUnknown,
}

// deliveryOutcome publishes a change of a sent message's delivery state,
// records a final one as the job's state and counts it.
func (g *Gateway) deliveryOutcome(o delivery.Outcome) {
	ctx := context.Background()
	m := o.Message
	typ := deliveryEvents[o.Status]
	ev := otp.Event{Type: typ, ID: m.ID, To: m.Masked, Modem: m.Modem, Parts: len(m.Refs), Discharge: o.Discharge}
	log := g.log.With("id", m.ID, "to", m.Masked, "modem", m.Modem)
	if o.TPStatus >= 0 {
		st := o.TPStatus
		ev.Status = &st
		log = log.With("status", st)
	}
	if o.Status == delivery.Delivered {
		latency := o.At.Sub(m.Accepted)
		ev.Latency = latency.Seconds()
		log = log.With("latency", latency.Round(time.Millisecond))
		g.opts.Metrics.DeliveryLatency.Observe(latency.Seconds())
	}
	if o.Status.Final() {
		g.opts.Metrics.Deliveries.WithLabelValues(m.Modem, o.Status.String()).Inc()
		g.opts.Metrics.DeliveryPending.Set(float64(g.tracker.Pending()))
		g.finish(ctx, m.ID, string(typ), "")
		g.unjournal(ctx, m.ID, log)
	}
	switch o.Status {
	case delivery.Delivered:
		log.Info("sms delivered")
	case delivery.Pending:
		log.Info("sms delivery delayed; the network keeps trying")
	case delivery.Unknown:
		log.Warn("sms delivery unknown: no final status report in time", "timeout", g.opts.DeliveryTimeout)
	default:
		log.Warn("sms not delivered", "delivery", o.Status)
	}
	g.publish(ctx, ev)
}
