package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/simgate/simgate/delivery"
)

// Journal keeps the messages the delivery tracker follows, so that a
// restarted daemon follows them on (queue.DeliveryJournal).
type Journal interface {
	Put(ctx context.Context, m delivery.Message) error
	Delete(ctx context.Context, id string) error
	Load(ctx context.Context) (msgs []delivery.Message, skipped int, err error)
}

// journalDelay is how long a sent message waits for its report before it
// is journalled: most reports come within seconds, and a message whose
// outcome is known by then costs the journal nothing. A crash within it
// forgets the message; a stop journals every message still waiting.
const journalDelay = 3 * time.Second

// journalEntry is the journal state of one tracked message.
type journalEntry struct {
	mu      sync.Mutex
	m       delivery.Message
	written bool // in the journal
	done    bool // outcome known: never write
}

// journal schedules m for the journal. Call it before Track.
func (g *Gateway) journal(m delivery.Message) {
	if g.opts.Journal == nil {
		return
	}
	e := &journalEntry{m: m}
	g.journalled.Store(m.ID, e)
	time.AfterFunc(journalDelay, func() { g.writeJournal(context.Background(), e) })
}

func (g *Gateway) writeJournal(ctx context.Context, e *journalEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done || e.written {
		return
	}
	if err := g.opts.Journal.Put(ctx, e.m); err != nil {
		g.log.Warn("journal sent message; a restart forgets it", "id", e.m.ID, "err", err)
		return
	}
	e.written = true
}

// unjournal forgets the message of job id, whose outcome is known.
func (g *Gateway) unjournal(ctx context.Context, id string, log *slog.Logger) {
	v, ok := g.journalled.LoadAndDelete(id)
	if !ok {
		return
	}
	e := v.(*journalEntry)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = true
	if e.written {
		if err := g.opts.Journal.Delete(ctx, id); err != nil {
			log.Warn("remove message from the delivery journal", "err", err)
		}
	}
}

// flushJournal writes every message still waiting, at stop; later timers
// write nothing.
func (g *Gateway) flushJournal(ctx context.Context) {
	g.journalled.Range(func(_, v any) bool {
		e := v.(*journalEntry)
		g.writeJournal(ctx, e)
		e.mu.Lock()
		e.done = true
		e.mu.Unlock()
		return true
	})
}

// Restore follows on the messages journalled before a restart. Call it
// before RunModem, so that reports a modem stored meanwhile find them.
func (g *Gateway) Restore(ctx context.Context) error {
	if g.opts.Journal == nil {
		return nil
	}
	msgs, skipped, err := g.opts.Journal.Load(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		g.journalled.Store(m.ID, &journalEntry{m: m, written: true})
		g.tracker.Track(m)
	}
	g.opts.Metrics.DeliveryPending(g.tracker.Pending())
	if len(msgs) > 0 || skipped > 0 {
		g.log.Info("following sent messages from before the restart", "messages", len(msgs), "unreadable", skipped)
	}
	return nil
}
