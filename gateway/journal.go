package gateway

import (
	"context"
	"log/slog"

	"github.com/simgate/simgate/delivery"
)

// Journal keeps the messages the delivery tracker follows, so that a
// restarted daemon follows them on (queue.DeliveryJournal).
type Journal interface {
	Put(ctx context.Context, m delivery.Message) error
	Delete(ctx context.Context, id string) error
	Load(ctx context.Context) (msgs []delivery.Message, skipped int, err error)
}

// journal writes m to the journal, before its job is acknowledged: a
// crash at any point after loses no tracking. A message that could not be
// written is followed by this run only.
func (g *Gateway) journal(ctx context.Context, m delivery.Message) {
	if g.opts.Journal == nil {
		return
	}
	if err := g.opts.Journal.Put(context.WithoutCancel(ctx), m); err != nil {
		g.log.Warn("journal sent message; a restart forgets it", "id", m.ID, "err", err)
		return
	}
	g.journalled.Store(m.ID, struct{}{})
}

// unjournal forgets the message of job id, whose outcome is known.
func (g *Gateway) unjournal(ctx context.Context, id string, log *slog.Logger) {
	if _, ok := g.journalled.LoadAndDelete(id); !ok {
		return
	}
	if err := g.opts.Journal.Delete(ctx, id); err != nil {
		log.Warn("remove message from the delivery journal", "err", err)
	}
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
		m.Restored = true
		g.journalled.Store(m.ID, struct{}{})
		if g.told(ctx, m.ID, m.Seq, "") {
			// Its verdict was told before the crash.
			g.unjournal(ctx, m.ID, g.log)
			continue
		}
		g.tracker.Track(m)
	}
	g.opts.Metrics.DeliveryPending(g.tracker.Pending())
	if len(msgs) > 0 || skipped > 0 {
		g.log.Info("following sent messages from before the restart", "messages", len(msgs), "unreadable", skipped)
	}
	return nil
}
