package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// Routing across daemons: each daemon announces its modems that have
// routes in the fleet bucket (Options.Fleet): the destinations each is
// preferred for, and whether it takes jobs now. A worker that takes a job
// preferred for a modem of another daemon offers it to that modem, by a
// request on simgate.handoff.<modem> (a subject of the daemons' account).
// The modem's daemon takes the job when the modem is ready, not at a cap
// and its inbox free, and from then on acknowledges it itself, through the
// job's ack subject, which reaches the server from any daemon. A job
// refused, or not answered within handoffWait, is sent by the worker that
// took it.
//
// A reply lost after the other daemon took the job (a node lost at that
// moment) has both send it: the same code twice, which is harmless.

const (
	// fleetInterval is how often a daemon announces its routed modems.
	fleetInterval = 3 * time.Second
	// fleetFresh is how old an announcement may be: its daemon is gone.
	fleetFresh = 3 * fleetInterval
	// handoffWait bounds an offer of a job to another daemon's modem.
	handoffWait = 500 * time.Millisecond
	// handoffPrefix and the modem's name are the subject of offers.
	handoffPrefix = "simgate.handoff."
	// ackHeader carries an offered job's ack subject.
	ackHeader = "Simgate-Ack"
)

// fleetEntry is what a daemon announces of one of its modems.
type fleetEntry struct {
	Node   string      `json:"node"`
	Routes []otp.Route `json:"routes"`
	Ready  bool        `json:"ready"`
}

// remoteModem is a modem of the fleet as last announced.
type remoteModem struct {
	fleetEntry
	name string
	at   time.Time
}

// fleetView is what this daemon knows of the fleet's modems.
type fleetView struct {
	mu     sync.Mutex
	modems map[string]remoteModem
}

// StartFleet announces this daemon's routed modems and follows the
// others' until ctx ends. Without Options.Fleet it does nothing.
func (g *Gateway) StartFleet(ctx context.Context) error {
	kv := g.opts.Fleet
	if kv == nil {
		return nil
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		w.Stop()
	}()
	go func() {
		for e := range w.Updates() {
			if e != nil {
				g.fleetUpdate(e)
			}
		}
	}()
	go func() {
		t := time.NewTicker(fleetInterval)
		defer t.Stop()
		for {
			g.announce(ctx, kv)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (g *Gateway) fleetUpdate(e jetstream.KeyValueEntry) {
	g.fleet.mu.Lock()
	defer g.fleet.mu.Unlock()
	if g.fleet.modems == nil {
		g.fleet.modems = map[string]remoteModem{}
	}
	var fe fleetEntry
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &fe) != nil {
		delete(g.fleet.modems, e.Key())
		return
	}
	// Freshness by this daemon's clock: the server's time stamps may be
	// off from it.
	g.fleet.modems[e.Key()] = remoteModem{fleetEntry: fe, name: e.Key(), at: time.Now()}
}

// announce puts the state of this daemon's routed modems in kv.
func (g *Gateway) announce(ctx context.Context, kv jetstream.KeyValue) {
	g.mu.Lock()
	var ws []*worker
	for _, w := range g.workers {
		if len(w.routes) > 0 {
			ws = append(ws, w)
		}
	}
	g.mu.Unlock()
	for _, w := range ws {
		b, _ := json.Marshal(fleetEntry{Node: g.opts.Node, Routes: w.routes,
			Ready: g.modemReady(w.name) && !g.modemCapped(w.name)})
		if _, err := kv.Put(ctx, w.name, b); err != nil && ctx.Err() == nil {
			g.log.Debug("announce modem", "modem", w.name, "err", err)
		}
	}
}

// remotePreferred returns the modems of other daemons preferred for n that
// said lately they take jobs.
func (g *Gateway) remotePreferred(n otp.Number) []remoteModem {
	g.fleet.mu.Lock()
	defer g.fleet.mu.Unlock()
	var out []remoteModem
	for _, m := range g.fleet.modems {
		if m.Node != g.opts.Node && m.Ready && time.Since(m.at) <= fleetFresh && routesMatch(m.Routes, n) {
			out = append(out, m)
		}
	}
	return out
}

// offer offers msg to the modems of other daemons preferred for n, and
// reports whether one took it.
func (g *Gateway) offer(self string, n otp.Number, msg jetstream.Msg) bool {
	for _, m := range g.remotePreferred(n) {
		req := nats.NewMsg(handoffPrefix + m.name)
		req.Data = msg.Data()
		for k, v := range msg.Headers() {
			req.Header[k] = v
		}
		req.Header.Set(ackHeader, msg.Reply())
		resp, err := g.opts.NC.RequestMsg(req, handoffWait)
		if err == nil && string(resp.Data) == "ok" {
			g.log.Debug("job handed to its preferred modem", "from", self, "to_modem", m.name, "node", m.Node)
			return true
		}
	}
	return false
}

// serveOffers takes the jobs other daemons offer to w's modem, until stop
// is called.
func (g *Gateway) serveOffers(w *worker) (stop func()) {
	if g.opts.Fleet == nil || len(w.routes) == 0 {
		return func() {}
	}
	sub, err := g.opts.NC.Subscribe(handoffPrefix+w.name, func(m *nats.Msg) {
		m.Respond([]byte(g.takeOffer(w, m)))
	})
	if err != nil {
		g.log.Warn("take jobs from other daemons", "modem", w.name, "err", err)
		return func() {}
	}
	return func() { sub.Unsubscribe() }
}

// takeOffer puts a job offered by another daemon in w's inbox if its modem
// takes jobs now, and answers "ok" or why not.
func (g *Gateway) takeOffer(w *worker, m *nats.Msg) string {
	ack := m.Header.Get(ackHeader)
	if !strings.HasPrefix(ack, "$JS.ACK.") {
		return "no ack subject"
	}
	if !g.modemReady(w.name) || g.modemCapped(w.name) {
		return "busy"
	}
	h := nats.Header{}
	for k, v := range m.Header {
		if k != ackHeader {
			h[k] = v
		}
	}
	msg := queue.Job(g.opts.NC, &nats.Msg{Subject: otp.SubjectSend, Reply: ack, Header: h, Data: m.Data})
	hand := handoff{msg: msg, stop: g.keepInProgress(msg)}
	select {
	case w.inbox <- hand:
		return "ok"
	default:
		hand.stop()
		return "busy"
	}
}
