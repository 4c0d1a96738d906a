package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/simgate/simgate/otp"
)

// refused counts a refused job: a metric and, at most every
// refusalLogEvery, one log line per reason (a flood must not cost a line
// per request).
func (g *Gateway) refused(re *otp.RejectError) {
	g.opts.Metrics.Rejected(re)
	g.refusals.add(g.log, re.Reason, g.now())
}

// rejected records a job refused from the queue: counted (refused) and told
// in an event, its publisher's only answer (none for id_conflict).
// Refusals of otp.request are answered by the reply alone.
func (g *Gateway) rejected(ctx context.Context, id string, re *otp.RejectError, attempt int) {
	g.refused(re)
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

// stamp sets the time and node of ev.
func (g *Gateway) stamp(ev otp.Event) otp.Event {
	ev.Time = g.now().UTC()
	ev.Node = g.opts.Node
	return ev
}

// eventSubject is the subject of ev.
func eventSubject(ev otp.Event) string {
	if ev.ID == "" {
		return otp.SubjectRejectedNoID
	}
	return otp.EventSubject(ev.ID)
}

// publish sends an event of a job that was never admitted (a rejection)
// without waiting for the stream's acknowledgement: a failure is logged
// (see the daemon's error handler). The events of admitted jobs are told
// with tell.
func (g *Gateway) publish(_ context.Context, ev otp.Event) {
	ev = g.stamp(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		g.log.Error("encode event", "type", ev.Type, "id", ev.ID, "err", err)
		return
	}
	if _, err := g.opts.JS.PublishAsync(eventSubject(ev), b); err != nil {
		g.log.Warn("publish event", "type", ev.Type, "id", ev.ID, "err", err)
	}
}

// tellTimeout bounds how long tell tries: past the stream's duplicate
// window a late copy would be stored twice.
const tellTimeout = time.Minute

// tell publishes an event of an admitted job (stamped already, see stamp)
// and waits until the stream has stored it, trying again through a node
// lost or a leader election. Its message id is msgID, the same each time
// the event is told: a copy told again (a retry, or a redelivered job's
// final event after a crash) is dropped by the stream's deduplication.
// The job's next step waits for it, so a job's events are stored in
// order.
func (g *Gateway) tell(ctx context.Context, ev otp.Event, msgID string) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return g.tellRaw(ctx, ev, b, msgID)
}

// tellRaw is tell for an event encoded already (b).
func (g *Gateway) tellRaw(ctx context.Context, ev otp.Event, b []byte, msgID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tellTimeout)
	defer cancel()
	subject := eventSubject(ev)
	err := retry(ctx, newBackoff(50*time.Millisecond, 2*time.Second), func() (bool, error) {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		if _, err := g.opts.JS.Publish(pctx, subject, b, jetstream.WithMsgID(msgID)); err != nil {
			g.log.Warn("publish event; trying again", "type", ev.Type, "id", ev.ID, "err", err)
			g.opts.Metrics.EventRetried()
			return false, err
		}
		return true, nil
	})
	if err != nil {
		g.opts.Metrics.EventLost()
		g.log.Error("event lost", "type", ev.Type, "id", ev.ID, "err", err)
		return fmt.Errorf("publish event %s of %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// eventID is the message id of event type of the job carried at stream
// sequence seq: the same whenever it is told.
func eventID(id string, seq uint64, typ otp.State, attempt int) string {
	if attempt > 0 {
		return fmt.Sprintf("%s.%d.%s.%d", id, seq, typ, attempt)
	}
	return fmt.Sprintf("%s.%d.%s", id, seq, typ)
}

// told reports whether the stream holds the event msgID of the job id
// carried at stream sequence seq, or a delivery verdict of that job (which
// only follows its sent event): the last event stored for the job says.
// Past the stream's duplicate window, an event told again after a crash
// would otherwise be stored twice.
func (g *Gateway) told(ctx context.Context, id string, seq uint64, msgID string) bool {
	s, err := g.opts.JS.Stream(ctx, otp.StreamEvents)
	if err != nil {
		return false
	}
	m, err := s.GetLastMsgForSubject(ctx, otp.EventSubject(id))
	if err != nil {
		return false
	}
	last := m.Header.Get(jetstream.MsgIDHeader)
	if msgID != "" && last == msgID {
		return true
	}
	typ, ok := strings.CutPrefix(last, fmt.Sprintf("%s.%d.", id, seq))
	return ok && otp.State(typ).DeliveryFinal()
}

// refusalLogEvery is how often refusals are logged, counted by reason.
const refusalLogEvery = 10 * time.Second

// refusalLog counts refusals between two log lines.
type refusalLog struct {
	mu     sync.Mutex
	counts map[otp.Reason]int
	since  time.Time
}

// add counts a refusal for reason and logs the counts when refusalLogEvery
// has passed since the last line.
func (l *refusalLog) add(log *slog.Logger, reason otp.Reason, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts, l.since = map[otp.Reason]int{}, now
	}
	l.counts[reason]++
	if now.Sub(l.since) >= refusalLogEvery {
		l.flush(log, now)
	}
}

// flush logs the counts so far, if any (l.mu held).
func (l *refusalLog) flush(log *slog.Logger, now time.Time) {
	if len(l.counts) == 0 {
		return
	}
	attrs := []any{"since", l.since.UTC().Format(time.RFC3339)}
	for _, r := range slices.Sorted(maps.Keys(l.counts)) {
		attrs = append(attrs, string(r), l.counts[r])
	}
	log.Info("jobs refused", attrs...)
	clear(l.counts)
	l.since = now
}

// Flush logs the refusals not logged yet (at stop).
func (l *refusalLog) Flush(log *slog.Logger, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flush(log, now)
}
