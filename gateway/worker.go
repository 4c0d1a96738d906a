package gateway

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
)

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
	// Balance, when its USSD code is set, asks the network for the SIM's
	// balance every BalanceInterval (6 h when zero) between jobs while
	// the modem can send (after a failed query: again at the next health
	// check, then twice as long each time), and reads it with
	// BalancePattern (its first group, or the whole match; a comma is a
	// decimal point) into simgate_sim_balance.
	BalanceUSSD     string
	BalanceInterval time.Duration
	BalancePattern  *regexp.Regexp
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
	g.noteModem(cfg.Name, func(s *modemState) { s.perMinute, s.perDay = wc.PerMinute, wc.PerDay })
	defer g.serveOffers(w)()
	cfg.OnReport = func(r modem.Report, err error) { g.report(cfg.Name, r, err) }
	cfg.OnMessage = g.newInbox(cfg.Name).receive
	backoff := newBackoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		m, err := modem.Open(ctx, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			g.setReady(cfg.Name, false)
			var pe *modem.PINError
			if errors.As(err, &pe) {
				g.opts.Metrics.PINTriesLeft(cfg.Name, pe.TriesLeft)
			}
			if errors.Is(err, modem.ErrWrongPIN) || errors.Is(err, modem.ErrSIMPUK) || errors.Is(err, modem.ErrPINLastTry) {
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
		g.noteModem(cfg.Name, func(s *modemState) { s.open = true })
		g.opts.Metrics.PINTriesLeft(cfg.Name, inf.PINTriesLeft)
		g.serveModem(ctx, m, w, wc, log)
		// Not ready first: nothing is handed to a modem whose inbox
		// was emptied.
		g.setReady(cfg.Name, false)
		g.drainInbox(w)
		g.opts.Metrics.ModemOpen(cfg.Name, false, 0)
		g.noteModem(cfg.Name, func(s *modemState) { s.open, s.checked = false, false })
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
	var nextCheck, nextBalance time.Time
	var balanceWait time.Duration // after a failed balance query
	for {
		if !time.Now().Before(nextCheck) {
			if !g.checkHealth(m, log) {
				g.setReady(m.Name(), false)
				return // no answer: reopen
			}
			nextCheck = time.Now().Add(interval)
			if wc.BalanceUSSD != "" && !time.Now().Before(nextBalance) && g.modemReady(m.Name()) {
				every := cmp.Or(wc.BalanceInterval, 6*time.Hour)
				if g.checkBalance(ctx, m, wc, log) {
					balanceWait = 0
				} else {
					// USSD fails now and then (a busy network): try
					// again soon, then less and less often.
					balanceWait = min(max(2*balanceWait, interval), every)
				}
				nextBalance = time.Now().Add(cmp.Or(balanceWait, every))
			}
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
			if broken := g.processHanded(context.WithoutCancel(ctx), m, h.msg, caps); broken {
				return
			}
			continue
		default:
		}
		wait = min(max(time.Until(nextCheck), 100*time.Millisecond), 2*time.Second)
		if len(w.routes) > 0 {
			wait = min(wait, routedFetchWait)
		}
		msg, err := g.opts.Jobs.Next(wait)
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
		if broken := g.process(context.WithoutCancel(ctx), m, msg, caps); broken {
			return
		}
	}
}

// checkBalance asks the network for the SIM's balance and records it,
// and reports whether it did.
func (g *Gateway) checkBalance(ctx context.Context, m *modem.Modem, wc Worker, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	answer, err := m.USSD(ctx, wc.BalanceUSSD)
	if err != nil {
		log.Warn("balance query", "err", err)
		return false
	}
	v, ok := balanceIn(answer, wc.BalancePattern)
	if !ok {
		log.Warn("balance query: no balance in the answer; check balance.pattern", "answer_length", len(answer))
		return false
	}
	g.opts.Metrics.SIMBalance(m.Name(), v)
	g.noteModem(m.Name(), func(s *modemState) { s.balance = &v })
	log.Info("sim balance", "balance", v)
	return true
}

// balanceIn reads the balance in answer with pattern: its first group, or
// its whole match; a comma is a decimal point.
func balanceIn(answer string, pattern *regexp.Regexp) (float64, bool) {
	m := pattern.FindStringSubmatch(answer)
	if m == nil {
		return 0, false
	}
	s := m[0]
	if len(m) > 1 {
		s = m[1]
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(s), ",", "."), 64)
	return v, err == nil
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
	g.noteModem(name, func(s *modemState) { s.health, s.checked = h, true })
	for _, s := range h.Storage {
		mt.ModemStorage(name, s.Name, s.Used, s.Size)
		if s.Name == "SM" && s.Used > 0 {
			// Messages an indication missed (or not kept when they
			// came): read them before the SIM fills.
			m.SweepIncoming()
		}
	}
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

// retry calls f until it reports done, sleeping b's delays between calls,
// or until ctx ends; it returns f's last error.
func retry(ctx context.Context, b *backoff, f func() (done bool, err error)) error {
	for {
		done, err := f()
		if done || ctx.Err() != nil {
			return err
		}
		sleep(ctx, b.next())
		if ctx.Err() != nil {
			return err
		}
	}
}
