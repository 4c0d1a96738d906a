package gateway

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// Routing: a modem may be preferred for some destinations (its SIM's own
// country, an operator's number range). A worker that takes a job preferred
// for another modem of this daemon hands it over when that modem is ready
// and has room; otherwise it sends the job itself, so that routing never
// strands a job.

// worker is what other workers know of a modem's worker: where to hand a
// job.
type worker struct {
	name   string
	routes []otp.Route
	// inbox holds at most one job handed over by another worker.
	inbox chan handoff
}

type handoff struct {
	msg jetstream.Msg
	// stop ends the progress signals that keep the job while it waits.
	stop func()
}

// registerWorker makes a worker known; routes are its modem's.
func (g *Gateway) registerWorker(name string, routes []otp.Route) *worker {
	w := &worker{name: name, routes: routes, inbox: make(chan handoff, 1)}
	g.mu.Lock()
	g.workers[name] = w
	g.mu.Unlock()
	return w
}

// preferred returns the workers whose modems are preferred for n.
func (g *Gateway) preferred(n otp.Number) []*worker {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*worker
	for _, w := range g.workers {
		if routesMatch(w.routes, n) {
			out = append(out, w)
		}
	}
	return out
}

// routesMatch reports whether n is a destination of one of routes.
func routesMatch(routes []otp.Route, n otp.Number) bool {
	return slices.ContainsFunc(routes, func(r otp.Route) bool { return r.Match(n) })
}

// route hands msg to a ready modem preferred for n when self is not one,
// and reports whether it did: a modem of this daemon (an idle one first),
// else one of another daemon (see StartFleet).
func (g *Gateway) route(self string, n otp.Number, msg jetstream.Msg) bool {
	pref := g.preferred(n)
	if len(pref) == 0 {
		return g.offer(self, n, msg)
	}
	var ready []*worker
	for _, w := range pref {
		if w.name == self {
			return false
		}
		if g.modemReady(w.name) && !g.modemCapped(w.name) {
			ready = append(ready, w)
		}
	}
	// Idle ones first.
	for pass := range 2 {
		for _, w := range ready {
			if g.modemBusy(w.name) != (pass == 1) {
				continue
			}
			h := handoff{msg: msg, stop: g.keepInProgress(msg)}
			select {
			case w.inbox <- h:
				g.log.Debug("job handed to its preferred modem", "from", self, "to_modem", w.name)
				return true
			default:
				h.stop()
			}
		}
	}
	return g.offer(self, n, msg)
}

// drainInbox gives back the jobs handed to a worker that stops.
func (g *Gateway) drainInbox(w *worker) {
	for {
		select {
		case h := <-w.inbox:
			h.stop()
			if err := h.msg.Nak(); err != nil {
				g.log.Warn("hand back job", "modem", w.name, "err", err)
			}
		default:
			return
		}
	}
}

// routedFetchWait bounds a pull of a modem others may hand jobs to: a job
// handed over waits at most this long for a worker idle in its pull.
const routedFetchWait = 250 * time.Millisecond
