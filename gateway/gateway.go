// Package gateway moves OTP jobs from NATS to modems: it answers
// otp.request, runs one worker per modem that pulls a job only when its modem
// is free, checks and renders the job, sends it, and ends it with an ack and
// an event.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/simgate/simgate/delivery"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// Options configure a Gateway.
type Options struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Consumer jetstream.Consumer
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
	// Routes maps a modem name to the destinations it is preferred for:
	// ISO regions ("DK") and E.164 prefixes ("+4530"); see otp.Route.
	Routes map[string][]otp.Route
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
	// journalled holds the journal state of each tracked job id.
	journalled sync.Map

	mu     sync.Mutex
	ready  map[string]bool // modem name -> open and initialised
	busy   map[string]bool // modem name -> sending
	capped map[string]bool // modem name -> resting at a send cap
	// settling counts sends from AT+CMGS until the message is tracked,
	// when its status report may already come
	settling map[string]int
	// settle waits for sent jobs' bookkeeping (record, ack, event, track)
	settle  sync.WaitGroup
	workers map[string]*worker
	svc     micro.Service
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
		opts.AckWait = 30 * time.Second
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
	g := &Gateway{opts: opts, log: opts.Logger, now: now, ready: map[string]bool{}, busy: map[string]bool{}, capped: map[string]bool{}, settling: map[string]int{}, workers: map[string]*worker{}}
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
// delivery (messages still waiting for a status report are journalled for
// the next start, see Restore) and waits until the events published so far
// are stored; ctx bounds the waits.
func (g *Gateway) Close(ctx context.Context) {
	settled := make(chan struct{})
	go func() { g.settle.Wait(); close(settled) }()
	select {
	case <-settled:
	case <-ctx.Done():
		g.log.Warn("sent jobs' bookkeeping unfinished at stop")
	}
	g.tracker.Close()
	g.flushJournal(ctx)
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

// StartRequests serves otp.request (as a NATS micro service, so every
// daemon answers in one queue group) until StopRequests.
func (g *Gateway) StartRequests() error {
	svc, err := micro.AddService(g.opts.NC, micro.Config{
		Name:        "simgate",
		Version:     serviceVersion(g.opts.Version),
		Description: "OTP over SMS: validates a job, queues it and answers at once",
		Endpoint: &micro.EndpointConfig{
			Subject: otp.SubjectRequest,
			Handler: micro.HandlerFunc(g.handleRequest),
		},
	})
	if err != nil {
		return fmt.Errorf("serve %s: %w", otp.SubjectRequest, err)
	}
	// Make sure the server knows the subscription before callers are told
	// the daemon is up.
	if err := g.opts.NC.Flush(); err != nil {
		return fmt.Errorf("serve %s: %w", otp.SubjectRequest, err)
	}
	g.mu.Lock()
	g.svc = svc
	g.mu.Unlock()
	return nil
}

// StopRequests stops answering otp.request.
func (g *Gateway) StopRequests() error {
	g.mu.Lock()
	svc := g.svc
	g.svc = nil
	g.mu.Unlock()
	if svc == nil {
		return nil
	}
	return svc.Stop()
}

var semver = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$`)

// serviceVersion returns version in the SemVer form the micro service
// protocol requires ("v1.2.3" -> "1.2.3"; "devel" -> "0.0.0-devel").
func serviceVersion(version string) string {
	if m := semver.FindStringSubmatch(version); m != nil {
		return m[1]
	}
	return "0.0.0-dev"
}

func (g *Gateway) handleRequest(req micro.Request) {
	g.opts.Metrics.Received(metrics.SourceRequest)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply := g.request(ctx, req.Data())
	b, _ := json.Marshal(reply)
	if err := req.Respond(b); err != nil {
		g.log.Warn("answer otp.request", "id", reply.ID, "err", err)
	}
}

func (g *Gateway) request(ctx context.Context, data []byte) otp.Reply {
	job, p, _, err := g.prepare(data)
	if err != nil {
		re, _ := otp.AsReject(err)
		g.rejected(ctx, job.ID, re, 0)
		return otp.RejectReply(job.ID, re)
	}
	masked := p.Number.Masked()
	v, err := g.policy().Admit(ctx, p)
	if re, ok := otp.AsReject(err); ok {
		g.rejected(ctx, job.ID, re, 0)
		return otp.RejectReply(job.ID, re)
	}
	if err != nil {
		g.log.Error("policy", "id", job.ID, "err", err)
		return otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: "policy store unavailable; try again"}
	}
	if v.Duplicate {
		return g.duplicate(ctx, p, v)
	}
	ack, err := g.opts.JS.Publish(ctx, otp.SubjectSend, data, jetstream.WithMsgID(job.ID))
	if err != nil {
		g.log.Error("queue job", "id", job.ID, "err", err)
		if err := g.policy().Withdraw(ctx, p); err != nil {
			g.log.Warn("withdraw job", "id", job.ID, "err", err)
		}
		return otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: "could not queue the job; try again"}
	}
	if ack.Duplicate {
		// The stream knew the id although the policy store did not (a
		// store reset): the first copy is queued.
		g.opts.Metrics.Suppressed(metrics.DuplicateID)
		return otp.Reply{Status: otp.ReplyAccepted, ID: job.ID, To: masked, Duplicate: true, State: otp.StateAccepted}
	}
	g.accepted(ctx, p, v, "request")
	return otp.Reply{Status: otp.ReplyAccepted, ID: job.ID, To: masked, Resend: v.Resend}
}

// accepted records a newly admitted job: log, metrics, event.
func (g *Gateway) accepted(ctx context.Context, p otp.Prepared, v policy.Verdict, source string) {
	g.log.Info("job accepted", "id", p.ID, "to", p.Number.Masked(), "source", source, "resend", v.Resend)
	if v.Resend {
		g.opts.Metrics.Resent(metrics.ResendUser)
	}
	g.publish(ctx, otp.Event{Type: otp.StateAccepted, ID: p.ID, To: p.Number.Masked(), Resend: v.Resend})
}

// duplicate answers a job that must not send anything new, and tells its
// subscribers when it is a new id standing for an earlier job.
func (g *Gateway) duplicate(ctx context.Context, p otp.Prepared, v policy.Verdict) otp.Reply {
	reply := otp.Reply{Status: otp.ReplyAccepted, ID: p.ID, To: p.Number.Masked(), Duplicate: true, State: v.State}
	if v.Of == p.ID {
		g.opts.Metrics.Suppressed(metrics.DuplicateID)
		g.log.Info("duplicate job id", "id", p.ID, "state", v.State)
		return reply
	}
	g.opts.Metrics.Suppressed(metrics.DuplicateCode)
	g.opts.Metrics.Ended(otp.StateDuplicate)
	reply.DuplicateOf = v.Of
	if st, err := g.policy().State(ctx, v.Of); err == nil {
		reply.State = st
	}
	g.log.Info("same code to the same number: not sent again", "id", p.ID, "to", p.Number.Masked(), "duplicate_of", v.Of)
	g.publish(ctx, otp.Event{Type: otp.StateDuplicate, ID: p.ID, To: p.Number.Masked(), DuplicateOf: v.Of})
	return reply
}

// prepare decodes, checks and renders a job. On error the returned job
// carries whatever was decoded, and the error is a *otp.RejectError.
func (g *Gateway) prepare(data []byte) (otp.Job, otp.Prepared, string, error) {
	job, err := otp.DecodeJob(data)
	if err != nil {
		return job, otp.Prepared{}, "", err
	}
	p, err := g.limits().Prepare(job)
	if err != nil {
		return job, p, "", err
	}
	text, err := g.renderer().Render(p)
	if err != nil {
		if _, ok := otp.AsReject(err); !ok {
			err = &otp.RejectError{Reason: otp.ReasonUnknownTemplate, Field: "template", Detail: err.Error()}
		}
		return job, p, "", err
	}
	return job, p, text, nil
}

// rejected records a rejected job: metric, log and event.
func (g *Gateway) rejected(ctx context.Context, id string, re *otp.RejectError, attempt int) {
	g.opts.Metrics.Rejected(re)
	g.log.Info("job rejected", "id", id, "reason", re.Reason, "scope", re.Scope, "field", re.Field)
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

// Worker configures the worker of one modem: the modem itself, and how
// the worker paces it.
type Worker struct {
	Modem modem.Config
	// HealthInterval is how often the worker checks SIM, registration and
	// signal; 30 s when zero.
	HealthInterval time.Duration
	// PerMinute and PerDay cap the modem's sends (0: no cap): the worker
	// takes no job while its modem is at a cap.
	PerMinute, PerDay int
}

// RunModem runs the worker of one modem until ctx ends: it opens the modem
// (again, with backoff, after every fault), then takes jobs one at a time
// while the modem is up.
func (g *Gateway) RunModem(ctx context.Context, wc Worker) {
	if wc.HealthInterval == 0 {
		wc.HealthInterval = 30 * time.Second
	}
	cfg := wc.Modem
	log := g.log.With("modem", cfg.Name)
	cfg.Logger = g.log
	w := g.registerWorker(cfg.Name, g.opts.Routes[cfg.Name])
	cfg.OnReport = func(r modem.Report, err error) { g.report(cfg.Name, r, err) }
	backoff := newBackoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		m, err := modem.Open(ctx, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			g.setReady(cfg.Name, false)
			if errors.Is(err, modem.ErrWrongPIN) || errors.Is(err, modem.ErrSIMPUK) {
				// Another try could lock the SIM for good.
				log.Error("modem disabled until restart: SIM needs a person", "err", err)
				<-ctx.Done()
				return
			}
			d := backoff.next()
			log.Warn("modem not available", "err", err, "retry_in", d)
			sleep(ctx, d)
			continue
		}
		backoff.reset()
		inf := m.Info()
		log.Info("modem open", "manufacturer", inf.Manufacturer, "model", inf.Model, "revision", inf.Revision,
			"status_reports", m.Reports())
		g.opts.Metrics.ModemOpen(cfg.Name, true, int(m.Reports()))
		g.serveModem(ctx, m, w, wc, log)
		g.drainInbox(w)
		g.opts.Metrics.ModemOpen(cfg.Name, false, 0)
		g.setReady(cfg.Name, false)
		m.Close()
		if ctx.Err() == nil {
			log.Warn("modem lost; reopening")
		}
	}
}

// serveModem takes jobs for m until m breaks or ctx ends. It checks the
// modem's health at once and every HealthInterval, and takes no job while
// the modem cannot send (SIM not ready, not registered).
func (g *Gateway) serveModem(ctx context.Context, m *modem.Modem, w *worker, wc Worker, log *slog.Logger) {
	// Stop waiting for a job as soon as the modem goes away.
	fetchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.Closed():
			cancel()
		case <-fetchCtx.Done():
		}
	}()
	interval := wc.HealthInterval
	caps := &sendCaps{perMinute: wc.PerMinute, perDay: wc.PerDay}
	var nextCheck time.Time
	for {
		if !time.Now().Before(nextCheck) {
			if !g.checkHealth(m, log) {
				g.setReady(m.Name(), false)
				return // no answer: reopen
			}
			nextCheck = time.Now().Add(interval)
			if !g.modemReady(m.Name()) {
				g.drainInbox(w)
				// Look again soon: a modem comes back by itself.
				nextCheck = time.Now().Add(min(interval, 5*time.Second))
				sleep(fetchCtx, time.Until(nextCheck))
				if fetchCtx.Err() != nil {
					return
				}
				continue
			}
		}
		wait := caps.wait(time.Now())
		g.setCapped(m.Name(), wait > 0)
		if wait > 0 {
			// At its SIM plan's cap: leave the jobs to other modems.
			g.drainInbox(w)
			log.Info("modem at its send cap; resting", "for", wait.Round(time.Second))
			sleep(fetchCtx, min(wait, time.Until(nextCheck)))
			if fetchCtx.Err() != nil {
				return
			}
			continue
		}
		// The pull request expires on the server (FetchMaxWait), never by
		// cancelling it here: a job the server hands over just as a
		// client-side context ends would be dropped, and come back only
		// after the ack wait. A short expiry bounds how late a stop or an
		// unplug is noticed.
		select {
		case h := <-w.inbox:
			// A job another worker took for this modem.
			h.stop()
			if broken := g.process(context.WithoutCancel(ctx), m, h.msg, caps, true); broken {
				return
			}
			continue
		default:
		}
		wait = min(max(time.Until(nextCheck), 100*time.Millisecond), 2*time.Second)
		if len(w.routes) > 0 {
			wait = min(wait, routedFetchWait)
		}
		msg, err := g.opts.Consumer.Next(jetstream.FetchMaxWait(wait))
		if fetchCtx.Err() != nil {
			if err == nil {
				// Stopping, or the modem went away: a job fetched but not
				// started goes back at once, for another worker.
				if err := msg.Nak(); err != nil {
					log.Warn("hand back job", "err", err)
				}
			}
			return
		}
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			continue // nothing to do yet; maybe time for a health check
		}
		if err != nil {
			log.Warn("fetch job", "err", err)
			sleep(fetchCtx, time.Second)
			continue
		}
		// A job once started is finished (its AT+CMGS, ack and event) even
		// when ctx ends meanwhile; the daemon's Stop bounds the wait.
		if broken := g.process(context.WithoutCancel(ctx), m, msg, caps, false); broken {
			return
		}
	}
}

// checkHealth queries m, records the result in metrics and readiness, logs
// changes, and reports whether the modem answered at all.
func (g *Gateway) checkHealth(m *modem.Modem, log *slog.Logger) bool {
	name := m.Name()
	mt := g.opts.Metrics
	h, err := m.Health()
	if err != nil {
		log.Warn("modem does not answer its health check", "err", err)
		mt.HealthFailed(name, metrics.HealthNoAnswer)
		return false
	}
	mt.ModemHealth(name, h.SIM == "READY", int(h.Registration), h.SignalDBm, h.SignalKnown)
	err = h.Ready()
	switch {
	case errors.Is(err, modem.ErrSIMNotReady):
		mt.HealthFailed(name, metrics.HealthSIM)
	case errors.Is(err, modem.ErrNotRegistered):
		mt.HealthFailed(name, metrics.HealthRegistration)
	}
	was := g.modemReady(name)
	switch {
	case err != nil && was:
		log.Warn("modem cannot send; taking no jobs", "reason", err, "signal_dbm", h.SignalDBm)
	case err == nil && !was:
		log.Info("modem ready", "registration", h.Registration, "signal_dbm", h.SignalDBm)
	}
	g.setReady(name, err == nil)
	return true
}

func (g *Gateway) setBusy(name string, busy bool) {
	g.setState(g.busy, g.opts.Metrics.ModemBusy, name, busy)
}

func (g *Gateway) setCapped(name string, capped bool) { g.setState(g.capped, nil, name, capped) }

func (g *Gateway) beginSettling(name string) {
	g.mu.Lock()
	g.settling[name]++
	g.mu.Unlock()
}

// endSettling ends one send's settling; when none is left, reports held for
// the modem that match nothing are given up.
func (g *Gateway) endSettling(name string) {
	g.mu.Lock()
	g.settling[name]--
	n := g.settling[name]
	g.mu.Unlock()
	if n == 0 {
		g.tracker.Settled(name)
	}
}

func (g *Gateway) isSettling(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.settling[name] > 0
}

func (g *Gateway) modemReady(name string) bool  { return g.state(g.ready, name) }
func (g *Gateway) modemBusy(name string) bool   { return g.state(g.busy, name) }
func (g *Gateway) modemCapped(name string) bool { return g.state(g.capped, name) }

// process handles one delivery of a job and reports whether the modem must
// be reopened. handed is set for a job another worker handed to this one.
func (g *Gateway) process(ctx context.Context, m *modem.Modem, msg jetstream.Msg, caps *sendCaps, handed bool) (broken bool) {
	if !handed {
		g.opts.Metrics.Received(metrics.SourceQueue)
	}
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: cannot happen on a pull consumer.
		g.log.Error("job without metadata", "err", err)
		msg.Term()
		return false
	}
	attempt := int(meta.NumDelivered)
	job, p, text, err := g.prepare(msg.Data())
	if err != nil {
		re, _ := otp.AsReject(err)
		if job.ID == "" || !otp.ValidID(job.ID) {
			job.ID = msg.Headers().Get(jetstream.MsgIDHeader)
		}
		g.rejected(ctx, job.ID, re, attempt)
		g.term(msg, string(re.Reason))
		return false
	}
	log := g.log.With("id", job.ID, "to", p.Number.Masked(), "modem", m.Name(), "attempt", attempt)
	// Expiry first: a code that waited too long is dropped before it can
	// count against any limit.
	accepted := meta.Timestamp
	deadline := accepted.Add(p.TTL)
	if !g.now().Before(deadline) {
		log.Info("job expired before a modem could send it", "late", g.now().Sub(deadline).Round(time.Millisecond))
		g.opts.Metrics.Ended(otp.StateExpired)
		g.finish(ctx, job.ID, otp.StateExpired, "")
		g.publish(ctx, otp.Event{Type: otp.StateExpired, ID: job.ID, To: p.Number.Masked(), Attempt: attempt})
		g.term(msg, "expired")
		return false
	}
	if !handed && g.route(m.Name(), p.Number, msg) {
		return false
	}
	v, err := g.policy().Admit(ctx, p)
	switch re, ok := otp.AsReject(err); {
	case ok:
		g.rejected(ctx, job.ID, re, attempt)
		g.term(msg, string(re.Reason))
		return false
	case err != nil:
		// Fail closed: without the store no limit can be checked.
		log.Error("policy store unavailable; job waits", "err", err)
		msg.NakWithDelay(5 * time.Second)
		return false
	case v.Duplicate && v.Of == job.ID && v.State == otp.StateAccepted:
		// Admitted before: through otp.request, or by an earlier delivery.
	case v.Duplicate:
		g.duplicate(ctx, p, v)
		g.term(msg, "duplicate")
		return false
	default:
		g.accepted(ctx, p, v, "queue")
	}
	// Only a job admitted earlier can have been superseded since: one
	// admitted just now is its number's newest.
	fresh := !v.Duplicate
	if by, err := g.supersededBy(ctx, p, fresh); err != nil {
		log.Warn("supersede check", "err", err)
	} else if by != "" {
		log.Info("job superseded by a newer code", "superseded_by", by)
		g.opts.Metrics.Ended(otp.StateSuperseded)
		g.finish(ctx, job.ID, otp.StateSuperseded, "")
		g.publish(ctx, otp.Event{Type: otp.StateSuperseded, ID: job.ID, To: p.Number.Masked(), SupersededBy: by, Attempt: attempt})
		g.term(msg, "superseded")
		return false
	}
	if attempt > g.opts.MaxAttempts {
		// Only reached when earlier attempts died with their daemon.
		g.fail(ctx, msg, log, p, attempt, otp.ReasonAttemptsExhausted, "no attempt completed")
		return false
	}

	g.setBusy(m.Name(), true)
	g.beginSettling(m.Name())
	settled := false
	defer func() {
		if !settled {
			g.endSettling(m.Name())
		}
	}()
	stop := g.keepInProgress(msg)
	// The network stops trying once the code is worthless.
	res, err := m.Send(ctx, p.Number.E164, text, modem.WithValidity(deadline.Sub(g.now())))
	stop()
	g.setBusy(m.Name(), false)

	caps.record(time.Now(), len(res.Refs))
	if err == nil {
		g.opts.Metrics.Sent(m.Name(), len(res.Refs), res.Duration, g.now().Sub(accepted))
		// The modem is free: its worker takes the next job while the
		// bookkeeping of this one goes on.
		settled = true
		g.settle.Add(1)
		go func() {
			defer g.settle.Done()
			defer g.endSettling(m.Name())
			g.sent(ctx, sentJob{msg: msg, log: log, p: p, modem: m.Name(), res: res,
				attempt: attempt, accepted: accepted, at: g.now()})
		}()
		return false
	}

	var se *modem.SendError
	if !errors.As(err, &se) {
		se = &modem.SendError{Class: modem.Retryable, Err: err}
	}
	g.opts.Metrics.SendFailed(m.Name(), se.Class.String())
	log = log.With("class", se.Class, "cms_error", se.Code)
	switch {
	case se.Class == modem.Permanent:
		g.fail(ctx, msg, log, p, attempt, otp.ReasonModemRejected, modemDetail(se))
	case attempt >= g.opts.MaxAttempts:
		reason := otp.ReasonAttemptsExhausted
		if se.Class == modem.Unknown {
			reason = otp.ReasonUnknownOutcome
		}
		g.fail(ctx, msg, log, p, attempt, reason, modemDetail(se))
	default:
		// Retry the same job (so the same code) while it is valid: a code
		// sent twice is harmless, a different code never goes out.
		delay := min(g.retryDelay(attempt), max(deadline.Sub(g.now()), 0))
		reason := metrics.ResendRetry
		if se.Class == modem.Unknown {
			reason = metrics.ResendUnknownOutcome
		}
		g.opts.Metrics.Resent(reason)
		log.Warn("send failed; will retry", "err", se.Error(), "retry_in", delay)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak job", "err", err)
		}
		g.publish(ctx, otp.Event{Type: otp.StateRetrying, ID: job.ID, To: p.Number.Masked(),
			Reason: otp.Reason(se.Class.String()), Detail: modemDetail(se),
			RetryAfter: delay.Seconds(), Modem: m.Name(), Attempt: attempt})
	}
	return se.Broken
}

// sentJob is a job whose message a modem confirmed.
type sentJob struct {
	msg          jetstream.Msg
	log          *slog.Logger
	p            otp.Prepared
	modem        string
	res          modem.Result
	attempt      int
	accepted, at time.Time
}

// sent records a job whose message every part of was confirmed: its state,
// the ack, the sent event, and the tracking of its delivery.
func (g *Gateway) sent(ctx context.Context, j sentJob) {
	p, res, log := j.p, j.res, j.log
	g.finish(ctx, p.ID, otp.StateSent, "")
	if err := g.ack(ctx, j.msg); err != nil {
		// The server will hand the job out again after AckWait.
		log.Error("ack sent job; it may be sent again", "err", err)
	}
	log.Info("sms sent", "parts", len(res.Refs), "cmgs", res.Duration.Round(time.Millisecond))
	g.publish(ctx, otp.Event{Type: otp.StateSent, ID: p.ID, To: p.Number.Masked(),
		Modem: j.modem, Refs: res.Refs, Parts: len(res.Refs), Attempt: j.attempt, Report: res.Report})
	if res.Report {
		// After the sent event: a report that came first is held
		// for it, so that delivered never precedes sent.
		dm := delivery.Message{ID: p.ID, Modem: j.modem, To: p.Number.E164, Masked: p.Number.Masked(),
			Refs: res.Refs, Accepted: j.accepted, Sent: j.at}
		g.journal(dm)
		g.tracker.Track(dm)
		g.opts.Metrics.DeliveryPending(g.tracker.Pending())
	}
}

func modemDetail(se *modem.SendError) string {
	if se.Code != "" {
		return "+CMS ERROR: " + se.Code
	}
	return se.Err.Error()
}

func (g *Gateway) fail(ctx context.Context, msg jetstream.Msg, log *slog.Logger, p otp.Prepared, attempt int, reason otp.Reason, detail string) {
	log.Warn("job failed", "reason", reason, "detail", detail)
	g.opts.Metrics.Ended(otp.StateFailed)
	if reason == otp.ReasonAttemptsExhausted || reason == otp.ReasonUnknownOutcome {
		// Dead-lettered: ended with its reason, out of the queue; the
		// job itself is not kept (its code is a secret, and worthless
		// after its ttl).
		g.opts.Metrics.DeadLettered(reason)
	}
	g.finish(ctx, p.ID, otp.StateFailed, string(reason))
	g.publish(ctx, otp.Event{Type: otp.StateFailed, ID: p.ID, To: p.Number.Masked(),
		Reason: reason, Detail: detail, Attempt: attempt})
	g.term(msg, string(reason))
}

// supersededBy returns the newer job that replaced p, if p was admitted
// earlier (fresh is false).
func (g *Gateway) supersededBy(ctx context.Context, p otp.Prepared, fresh bool) (string, error) {
	if fresh {
		return "", nil
	}
	return g.policy().Superseded(ctx, p)
}

// finish records a job's final state for later duplicates of its id.
func (g *Gateway) finish(ctx context.Context, id string, state otp.State, reason string) {
	if err := g.policy().Finish(context.WithoutCancel(ctx), id, state, reason); err != nil {
		g.log.Warn("record job state", "id", id, "state", state, "err", err)
	}
}

func (g *Gateway) term(msg jetstream.Msg, reason string) {
	if err := msg.TermWithReason(reason); err != nil {
		g.log.Warn("terminate job", "err", err)
	}
}

// ack acknowledges a sent job and waits for the server to confirm, trying a
// few times: a lost ack means the SMS goes out again.
func (g *Gateway) ack(ctx context.Context, msg jetstream.Msg) error {
	var err error
	for i := range 3 {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err = msg.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Millisecond)
	}
	return err
}

// keepInProgress tells the server the job is being worked on until stop is
// called, so that a long AT+CMGS does not get the job redelivered.
func (g *Gateway) keepInProgress(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(g.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (g *Gateway) retryDelay(attempt int) time.Duration {
	d := g.opts.RetryDelay << min(attempt-1, 10)
	return min(d, time.Minute)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// backoff doubles a delay up to a maximum.
type backoff struct{ first, max, cur time.Duration }

func newBackoff(first, max time.Duration) *backoff { return &backoff{first: first, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
