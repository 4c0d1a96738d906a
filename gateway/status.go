package gateway

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
)

// modemState is what the status tells of a modem beyond ready, busy and
// capped: its last health check, balance, sends today and last failure.
type modemState struct {
	open              bool
	health            modem.Health
	checked           bool
	balance           *float64
	perMinute, perDay int
	day               string // of sentToday, the daemon's date
	sentToday         int
	lastError         string
	lastAt            time.Time
}

// modemStateLocked returns the state of modem name, made on first use.
// The caller holds g.mu.
func (g *Gateway) modemStateLocked(name string) *modemState {
	s, ok := g.modems[name]
	if !ok {
		s = &modemState{}
		g.modems[name] = s
	}
	return s
}

// noteModem changes the state of modem name with f.
func (g *Gateway) noteModem(name string, f func(*modemState)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g.modemStateLocked(name))
}

// noteSent counts a message modem name sent.
func (g *Gateway) noteSent(name string) {
	day := g.now().Format(time.DateOnly)
	g.noteModem(name, func(s *modemState) {
		if s.day != day {
			s.day, s.sentToday = day, 0
		}
		s.sentToday++
	})
}

// answerStatus answers simgate.status: every daemon does.
func (g *Gateway) answerStatus(ctx context.Context, _ []byte) (any, func(context.Context)) {
	return g.Status(ctx), nil
}

// Status returns the daemon's status: its modems as it sees them, and the
// queue's depth.
func (g *Gateway) Status(ctx context.Context) otp.Status {
	st := otp.Status{Node: g.opts.Node, Version: g.opts.Version, Time: g.now().UTC(), QueuePending: g.queueDepth(ctx)}
	day := g.now().Format(time.DateOnly)
	g.mu.Lock()
	defer g.mu.Unlock()
	for name := range g.workers {
		s := g.modemStateLocked(name)
		ms := otp.ModemStatus{Name: name, PerMinute: s.perMinute, PerDay: s.perDay,
			LastError: s.lastError, LastAt: s.lastAt, Balance: s.balance}
		if s.day == day {
			ms.SentToday = s.sentToday
		}
		switch {
		case !s.open:
			ms.State = "down"
		case g.busy[name]:
			ms.State = "busy"
		case g.capped[name]:
			ms.State = "capped"
		case g.ready[name]:
			ms.State = "ready"
		default:
			ms.State = "not_ready"
		}
		if s.checked && s.open {
			h := s.health
			ms.SIM, ms.Registration, ms.Operator = h.SIM, h.Registration.String(), h.Operator
			if h.SignalKnown {
				ms.SignalDBm = &h.SignalDBm
			}
			if i := slices.IndexFunc(h.Storage, func(m modem.Memory) bool { return m.Name == "SM" }); i >= 0 {
				ms.StorageUsed, ms.StorageSize = h.Storage[i].Used, h.Storage[i].Size
			}
		}
		st.Modems = append(st.Modems, ms)
	}
	slices.SortFunc(st.Modems, func(a, b otp.ModemStatus) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// queueDepth returns the jobs waiting in the shared queue, read at most
// once a second however often the status is asked (-1 when unknown).
func (g *Gateway) queueDepth(ctx context.Context) int64 {
	g.depthMu.Lock()
	defer g.depthMu.Unlock()
	if g.opts.QueueDepth == nil {
		return -1
	}
	if now := g.now(); now.Sub(g.depthAt) >= time.Second {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		g.depth = -1
		if n, err := g.opts.QueueDepth(ctx); err == nil {
			g.depth = n
		}
		g.depthAt = now
	}
	return g.depth
}
