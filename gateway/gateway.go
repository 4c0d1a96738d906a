// Package gateway moves OTP jobs from NATS to modems: it answers
// otp.request (request.go), runs one worker per modem that pulls a job only
// when its modem is free (worker.go, caps.go, route.go), admits, sends and
// retries or ends each job (job.go), publishes its events (event.go) and
// follows its delivery by status report (delivery.go, journal.go).
//
// It depends on the domain packages only; package daemon builds it from
// the configuration.
package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/simgate/simgate/delivery"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
	"github.com/simgate/simgate/verify"
)

// Jobs hands out queued jobs one at a time.
type Jobs interface {
	// Next waits up to wait for a job; jetstream.ErrNoMessages when none
	// came.
	Next(wait time.Duration) (jetstream.Msg, error)
}

// Options configure a Gateway.
type Options struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Jobs hands the workers the queued jobs (queue.Puller).
	Jobs     Jobs
	Limits   otp.Limits
	Renderer *otp.Renderer
	// Policy decides duplicates and rate limits; every daemon of a cluster
	// must share its store.
	Policy  *policy.Policy
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Node names this daemon in events.
	Node string
	// Version is reported by the otp.request micro service.
	Version string
	// MaxAttempts bounds how often a job is handed to a modem; 5 when zero.
	MaxAttempts int
	// RetryDelay is the first delay before a failed job is tried again; it
	// doubles with each attempt up to 1 min. 2 s when zero.
	RetryDelay time.Duration
	// AckWait is the consumer's ack wait; progress is signalled at a third
	// of it while a modem sends. 30 s when zero.
	AckWait time.Duration
	// DeliveryTimeout is how long a sent message waits for its final
	// status report before it is delivery_unknown. 90 min when zero.
	DeliveryTimeout time.Duration
	// Journal, if set, keeps the messages waiting for a status report
	// across a restart (see Restore).
	Journal Journal
	// StoreFull, when set and true, says the store's disk is full:
	// otp.request answers error at once rather than try writes that fail.
	StoreFull func() bool
	// Fleet, when set, is the bucket (queue.OpenFleet) through which the
	// daemons of a cluster route jobs to each other's modems (see
	// StartFleet).
	Fleet jetstream.KeyValue
	// Routes maps a modem name to the destinations it is preferred for:
	// ISO regions ("DK") and E.164 prefixes ("+4530"); see otp.Route.
	Routes map[string][]otp.Route
	// Inbound configures what becomes of the messages the modems
	// receive (published on sms.received.<modem>).
	Inbound Inbound
	// Verifier, when set, keeps managed codes: the daemon serves
	// otp.verify and otp.check, and sends the jobs it queues for them
	// (their codes sealed, see otp.Job.Sealed).
	Verifier *verify.Verifier
	// QueueDepth, when set, returns the jobs waiting in the shared queue,
	// for the status (simgate.status).
	QueueDepth func(context.Context) (int64, error)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Gateway processes jobs. Create it with New.
type Gateway struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	// live holds the settings that may change while jobs flow (SetLive).
	live atomic.Pointer[Live]

	// tracker follows sent messages until their final status report.
	tracker *delivery.Tracker
	// journalled holds the ids of the tracked jobs in the journal.
	journalled sync.Map

	mu     sync.Mutex
	ready  map[string]bool // modem name -> open and initialised
	busy   map[string]bool // modem name -> sending
	capped map[string]bool // modem name -> resting at a send cap
	// settling counts sends from AT+CMGS until the message is tracked,
	// when its status report may already come
	settling map[string]int
	// settle waits for sent jobs' bookkeeping (record, ack, event, track)
	settle sync.WaitGroup
	// outcomes tells delivery outcomes in order.
	outcomes serial
	// fleet is what this daemon knows of the routed modems of others.
	fleet fleetView
	// refusals counts refusals for their aggregate log line.
	refusals refusalLog
	workers  map[string]*worker
	// modems holds what the status tells of each modem (status.go).
	modems map[string]*modemState
	// depth is the queue's depth as last read, at depthAt (status.go).
	depthMu sync.Mutex
	depth   int64
	depthAt time.Time
	svc     micro.Service
	// tasks hands requests to the answerers (see handler); answers
	// waits for the answers in progress, and stopped refuses new
	// requests, at StopRequests.
	tasks chan answerTask
	// refusing holds a token for each answer of a request a cached
	// block refuses (maxRefusing at once).
	refusing chan struct{}
	// statusSlots holds a token for each status answer (maxStatus).
	statusSlots chan struct{}
	answers     sync.WaitGroup
	stopped     bool
}

// New returns a Gateway.
func New(opts Options) *Gateway {
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 5
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 2 * time.Second
	}
	if opts.AckWait == 0 {
		opts.AckWait = 6 * time.Second
	}
	if opts.DeliveryTimeout == 0 {
		opts.DeliveryTimeout = 90 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{opts: opts, log: opts.Logger, now: now, ready: map[string]bool{}, busy: map[string]bool{}, capped: map[string]bool{}, settling: map[string]int{}, workers: map[string]*worker{}, modems: map[string]*modemState{},
		refusing:    make(chan struct{}, maxRefusing),
		statusSlots: make(chan struct{}, maxStatus)}
	g.live.Store(&Live{Limits: opts.Limits, Renderer: opts.Renderer, Policy: opts.Policy})
	g.tracker = delivery.New(delivery.Config{
		Timeout:  opts.DeliveryTimeout,
		Notify:   g.deliveryOutcome,
		Reported: g.reportMatched,
		Settling: g.isSettling,
		Now:      now,
	})
	return g
}

// Close waits for the bookkeeping of sent jobs, stops following their
// delivery (messages still waiting for a status report are in the journal
// for the next start, see Restore) and waits until the events published so
// far are stored; ctx bounds the waits.
func (g *Gateway) Close(ctx context.Context) {
	settled := make(chan struct{})
	go func() { g.settle.Wait(); close(settled) }()
	select {
	case <-settled:
	case <-ctx.Done():
		g.log.Warn("sent jobs' bookkeeping unfinished at stop")
	}
	g.tracker.Close()
	g.refusals.Flush(g.log, g.now())
	select {
	case <-g.opts.JS.PublishAsyncComplete():
	case <-ctx.Done():
		g.log.Warn("events not confirmed at stop", "pending", g.opts.JS.PublishAsyncPending())
	}
}

// Live are the settings a running gateway can swap at once (on a reload):
// number and ttl rules, templates, and duplicate and rate limits. A job in
// progress keeps using whichever it already read.
type Live struct {
	Limits   otp.Limits
	Renderer *otp.Renderer
	Policy   *policy.Policy
}

// SetLive replaces the live settings; jobs taken from now on use them.
func (g *Gateway) SetLive(l Live) { g.live.Store(&l) }

// Live returns the settings in use.
func (g *Gateway) Live() Live { return *g.live.Load() }

func (g *Gateway) limits() otp.Limits      { return g.live.Load().Limits }
func (g *Gateway) renderer() *otp.Renderer { return g.live.Load().Renderer }
func (g *Gateway) policy() *policy.Policy  { return g.live.Load().Policy }

// ModemsReady returns how many modems are open and initialised.
func (g *Gateway) ModemsReady() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, up := range g.ready {
		if up {
			n++
		}
	}
	return n
}

// setState records a per-modem flag (ready, busy, capped) and exports it
// with export, if any.
func (g *Gateway) setState(states map[string]bool, export func(name string, on bool), name string, on bool) {
	g.mu.Lock()
	states[name] = on
	g.mu.Unlock()
	if export != nil {
		export(name, on)
	}
}

func (g *Gateway) state(states map[string]bool, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return states[name]
}

func (g *Gateway) setReady(name string, up bool) {
	g.setState(g.ready, g.opts.Metrics.ModemReady, name, up)
}
