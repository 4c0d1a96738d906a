package gateway

import (
	"context"
	"encoding/json"

	"github.com/simgate/simgate/otp"
)

// rejected records a rejected job: metric, log and event (none for
// id_conflict).
func (g *Gateway) rejected(ctx context.Context, id string, re *otp.RejectError, attempt int) {
	g.opts.Metrics.Rejected(re)
	g.log.Info("job rejected", "id", id, "reason", re.Reason, "scope", re.Scope, "field", re.Field)
	if re.Reason == otp.ReasonIDConflict {
		// The id's events belong to the job that holds it: a conflicting
		// submission must not write into them.
		return
	}
	ev := otp.Event{Type: otp.StateRejected, ID: id, Reason: re.Reason, Scope: re.Scope, Field: re.Field, Detail: re.Detail,
		RetryAfter: re.RetryAfter.Seconds(), Attempt: attempt}
	if !otp.ValidID(id) {
		ev.ID = ""
	}
	g.publish(ctx, ev)
}

// publish sends an event to otp.events.<id> (or the no-id subject) without
// waiting for the stream's acknowledgement: events are best effort, a
// failure is logged (see the daemon's error handler), the job goes on.
// Events published by one goroutine, one after another, are stored in
// that order.
func (g *Gateway) publish(ctx context.Context, ev otp.Event) {
	ev.Time = g.now().UTC()
	ev.Node = g.opts.Node
	subject := otp.SubjectRejectedNoID
	if ev.ID != "" {
		subject = otp.EventSubject(ev.ID)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		g.log.Error("encode event", "type", ev.Type, "id", ev.ID, "err", err)
		return
	}
	if _, err := g.opts.JS.PublishAsync(subject, b); err != nil {
		g.log.Warn("publish event", "type", ev.Type, "id", ev.ID, "err", err)
	}
}
