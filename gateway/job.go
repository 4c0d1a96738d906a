package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/delivery"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// prepare decodes a queued job and checks and renders it (prepareJob).
// On error the returned job carries whatever was decoded, and the error
// is a *otp.RejectError.
func (g *Gateway) prepare(data []byte) (otp.Job, otp.Prepared, string, error) {
	job, err := otp.DecodeJob(data)
	if err != nil {
		return job, otp.Prepared{}, "", err
	}
	p, text, err := g.prepareJob(job)
	return job, p, text, err
}

// prepareJob checks a decoded job (checkJob), renders it and counts its
// SMS parts (renderJob). It serves otp.request, otp.verify and the queue
// worker alike. The error is a *otp.RejectError.
func (g *Gateway) prepareJob(job otp.Job) (otp.Prepared, string, error) {
	p, err := g.checkJob(job)
	if err != nil {
		return p, "", err
	}
	return g.renderJob(p)
}

// checkJob checks a decoded job against the limits (its number read and
// typed) and the opt-out list, and opens its sealed code if it has one (a
// managed verification's, sealed for its id and number). The error is a
// *otp.RejectError.
func (g *Gateway) checkJob(job otp.Job) (otp.Prepared, error) {
	p, err := g.limits().Prepare(job)
	if err != nil {
		return p, err
	}
	if o := g.opts.Inbound.OptOut; o != nil && o.Has(g.policy().NumberKey(p.Number.E164)) {
		return p, &otp.RejectError{Reason: otp.ReasonOptedOut, Field: "to", Detail: "the number replied STOP: it gets no messages until it replies START"}
	}
	if p.Sealed != "" && p.Code == "" {
		if g.opts.Verifier == nil {
			return p, &otp.RejectError{Reason: otp.ReasonInvalidCode, Field: "sealed", Detail: "this daemon keeps no managed codes"}
		}
		code, err := g.opts.Verifier.OpenJob(p.ID, p.Number.E164, p.Sealed)
		if err != nil {
			// A publisher's forgery, or, when simgate queued it, a
			// daemon of the cluster with another policy hash key. No
			// line of its own: a publisher could write one per job;
			// refusals are counted (simgate_jobs_rejected_total) and
			// logged together.
			return p, &otp.RejectError{Reason: otp.ReasonInvalidCode, Field: "sealed",
				Detail: err.Error() + " (forged, or sealed by a daemon with another policy hash key)"}
		}
		p.Code = code
	}
	return p, nil
}

// renderJob renders checked job p and counts its SMS parts, refusing a
// message of more than the configured maximum. The error is a
// *otp.RejectError.
func (g *Gateway) renderJob(p otp.Prepared) (otp.Prepared, string, error) {
	text, err := g.renderer().Render(p)
	if err != nil {
		if _, ok := otp.AsReject(err); !ok {
			err = &otp.RejectError{Reason: otp.ReasonUnknownTemplate, Field: "template", Detail: err.Error()}
		}
		return p, "", err
	}
	if p, err = g.limits().Fit(p, text); err != nil {
		return p, "", err
	}
	return p, text, nil
}

// sender is what a worker needs of its modem to send a job: *modem.Modem,
// or a stand-in in tests.
type sender interface {
	Name() string
	Send(ctx context.Context, number, text string, opts ...modem.SendOption) (modem.Result, error)
}

// task is a queued job checked for sending: everything the admission, the
// send and its bookkeeping need.
type task struct {
	msg       jetstream.Msg
	p         otp.Prepared
	text      string
	attempt   int       // this attempt to send: failed ones recorded before, plus one
	delivered uint64    // the server's deliveries of the message, this one included
	seq       uint64    // the message's stream sequence
	accepted  time.Time // when the stream stored the job
	deadline  time.Time // accepted + ttl: the code is worthless after it
	log       *slog.Logger
	// done stops telling the server the job is in progress (see
	// keepInProgress): once it is acknowledged, or back in the queue.
	done func()
}

// process handles a job this worker took from the queue and reports
// whether the modem must be reopened: check it, hand it to the modem
// preferred for its destination if that is another one (see route), else
// admit and send it.
func (g *Gateway) process(ctx context.Context, m sender, msg jetstream.Msg, caps *sendCaps) (broken bool) {
	g.opts.Metrics.Received(metrics.SourceQueue)
	done := g.keepInProgress(msg)
	t, ok := g.check(ctx, m.Name(), msg)
	if !ok {
		done()
		return false
	}
	if g.route(m.Name(), t.p.Number, msg) {
		done() // the modem it was handed to keeps it now
		return false
	}
	t.done = done
	return g.admitAndSend(ctx, m, t, caps)
}

// processHanded handles a job another worker took from the queue and
// handed to this one (it was counted and routed there).
func (g *Gateway) processHanded(ctx context.Context, m sender, msg jetstream.Msg, caps *sendCaps) (broken bool) {
	done := g.keepInProgress(msg)
	t, ok := g.check(ctx, m.Name(), msg)
	if !ok {
		done()
		return false
	}
	t.done = done
	return g.admitAndSend(ctx, m, t, caps)
}

// admitAndSend admits a checked job and sends it.
//
// From taking a job until it leaves this daemon's hands (acknowledged after
// its bookkeeping, or put back) the server is told it is in progress
// (process), so a short ack wait hands the jobs of a daemon that died to
// another at once and never those of a live one, however slow its modem
// or store.
func (g *Gateway) admitAndSend(ctx context.Context, m sender, t task, caps *sendCaps) (broken bool) {
	t, ok := g.admitQueued(ctx, t)
	if !ok {
		t.done()
		return false
	}
	return g.send(ctx, m, t, caps)
}

// check decodes, validates and renders a job taken from the queue, and
// drops it if its ttl has passed (before it can count against any limit).
// A job it does not return (ok false) is ended: rejected or expired.
func (g *Gateway) check(ctx context.Context, modemName string, msg jetstream.Msg) (task, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: cannot happen on a pull consumer.
		g.log.Error("job without metadata", "err", err)
		msg.Term()
		return task{}, false
	}
	delivered := meta.NumDelivered
	job, p, text, err := g.prepare(msg.Data())
	if err != nil {
		re, _ := otp.AsReject(err)
		if job.ID == "" || !otp.ValidID(job.ID) {
			job.ID = msg.Headers().Get(jetstream.MsgIDHeader)
		}
		if st, err := g.policy().State(ctx, job.ID); err != nil || st != "" {
			// The id names an admitted job (or may): this message is not
			// it, and must not write into its events.
			g.refused(re)
			g.term(msg, string(re.Reason))
			return task{}, false
		}
		g.rejected(ctx, job.ID, re, 0)
		g.term(msg, string(re.Reason))
		return task{}, false
	}
	t := task{msg: msg, p: p, text: text, attempt: 1, delivered: delivered, seq: meta.Sequence.Stream,
		accepted: meta.Timestamp, deadline: meta.Timestamp.Add(p.TTL),
		log: g.log.With("id", job.ID, "to", p.Number.Masked(), "modem", modemName, "delivery", delivered)}
	if !g.now().Before(t.deadline) {
		t.log.Info("job expired before a modem could send it", "late", g.now().Sub(t.deadline).Round(time.Millisecond))
		if st, err := g.policy().State(ctx, p.ID); err == nil && st == otp.StateAccepted {
			// Admitted through otp.request and never taken: its accepted
			// event (told by the worker that takes a job) comes first.
			g.tellAccepted(ctx, t, false)
		}
		g.end(ctx, t, otp.StateExpired, otp.Event{})
		return task{}, false
	}
	return t, true
}

// maxDeliveries bounds how often the server may hand out one job beyond
// its attempts: deliveries that were no attempt (a daemon that died
// holding it, a job handed back, the policy store away) do not count, but
// a job that kills every daemon that takes it must end.
const maxDeliveries = 20

// admitQueued applies the policy to a checked job (once per job: a
// redelivery finds its own admission), tells its accepted event, then
// checks whether a newer code superseded it and whether it has attempts
// left. A job it refuses (false) is ended, or put back while the policy
// store is away. It returns the task with its attempt number.
func (g *Gateway) admitQueued(ctx context.Context, t task) (task, bool) {
	p, msg := t.p, t.msg
	// Fail closed: without the store no limit can be checked. The job
	// waits here, in progress, until the store answers or its code
	// expires, rather than go back: a delivery is not an attempt, but the
	// server counts it.
	var v policy.Verdict
	wctx, cancel := context.WithDeadline(ctx, t.deadline)
	err := retry(wctx, newBackoff(time.Second, 5*time.Second), func() (bool, error) {
		var err error
		v, err = g.policy().AdmitQueued(ctx, p, t.seq)
		if _, rejected := otp.AsReject(err); err == nil || rejected {
			return true, err
		}
		t.log.Error("policy store unavailable; job waits", "err", err)
		return false, err
	})
	cancel()
	switch re, isReject := otp.AsReject(err); {
	case isReject:
		g.rejected(ctx, p.ID, re, 0)
		g.term(msg, string(re.Reason))
		return t, false
	case err != nil:
		// Stopping, or the code expired while the store was away: back
		// to the queue (a later check ends an expired one).
		msg.Nak()
		return t, false
	case v.Ended:
		// Ended by a daemon that died before acknowledging it.
		g.retell(ctx, t, v.State, v.Final)
		return t, false
	case v.Earlier:
		// Admitted before: through otp.request, or by an earlier delivery.
		t.attempt = v.Attempts + 1
	case v.Duplicate:
		// Another copy of a job queued already, or one that ended.
		g.duplicate(p, v)
		g.term(msg, "duplicate")
		return t, false
	default:
		g.accepted(p, v, metrics.SourceQueue)
	}
	t.log = t.log.With("attempt", t.attempt)
	if v.Attempts == 0 {
		// Told by the worker, for both paths, before anything else of the
		// job: so it comes first. Told again on a redelivery that follows
		// a crash; the stream keeps one.
		if err := g.tellAccepted(ctx, t, v.Resend); err != nil {
			msg.NakWithDelay(time.Second)
			return t, false
		}
	}
	// Only a job admitted earlier can have been superseded since: one
	// admitted just now is its number's newest.
	if v.Earlier {
		if by, err := g.policy().Superseded(ctx, p); err != nil {
			t.log.Warn("supersede check", "err", err)
		} else if by != "" {
			t.log.Info("job superseded by a newer code", "superseded_by", by)
			g.end(ctx, t, otp.StateSuperseded, otp.Event{SupersededBy: by})
			return t, false
		}
	}
	if t.attempt > g.opts.MaxAttempts || t.delivered > uint64(g.opts.MaxAttempts+maxDeliveries) {
		// Attempts recorded as failed, yet here again (a crash after the
		// last one was recorded), or handed out far too often.
		g.fail(ctx, t, otp.ReasonAttemptsExhausted, "no attempt completed")
		return t, false
	}
	return t, true
}

// tellAccepted tells the accepted event of the job t holds.
func (g *Gateway) tellAccepted(ctx context.Context, t task, resend bool) error {
	ev := g.stamp(otp.Event{Type: otp.StateAccepted, ID: t.p.ID, To: t.p.Number.Masked(), Resend: resend})
	return g.tell(ctx, ev, eventID(t.p.ID, t.seq, otp.StateAccepted, 0))
}

// retell tells again the final event of a job that ended (state) but whose
// message was not acknowledged, unless the stream has it, and takes the
// message off the queue. final is empty for a job ended by a version that
// kept no final event.
func (g *Gateway) retell(ctx context.Context, t task, state otp.State, final []byte) {
	t.log.Info("job ended before its daemon stopped; telling its end again", "state", state)
	if len(final) > 0 {
		msgID := eventID(t.p.ID, t.seq, state, 0)
		if !g.told(ctx, t.p.ID, t.seq, msgID) {
			if err := g.tellRaw(ctx, otp.Event{Type: state, ID: t.p.ID}, final, msgID); err != nil {
				t.msg.NakWithDelay(time.Second)
				return
			}
		}
	}
	if state == otp.StateSent || state.DeliveryFinal() {
		if err := g.ack(ctx, t.msg); err != nil {
			t.log.Warn("ack ended job", "err", err)
		}
		return
	}
	g.term(t.msg, string(state))
}

// end ends a job unsent in state (expired, superseded): counted, recorded,
// told in an event (ev adds its fields) and taken off the queue.
func (g *Gateway) end(ctx context.Context, t task, state otp.State, ev otp.Event) {
	ev.Type, ev.ID, ev.To, ev.Attempt = state, t.p.ID, t.p.Number.Masked(), t.attempt
	if !g.finish(ctx, t, &ev) {
		return
	}
	g.opts.Metrics.Ended(state)
	if err := g.tell(ctx, ev, eventID(t.p.ID, t.seq, state, 0)); err != nil {
		g.stopProgress(t)
		t.msg.NakWithDelay(time.Second) // told again by the next delivery
		return
	}
	g.term(t.msg, string(state))
}

// send sends an admitted job through m. A confirmed message's bookkeeping
// (record, ack, event, tracking) goes on beside the worker's next job; a
// failure is retried or ends the job. It reports whether the modem must be
// reopened.
func (g *Gateway) send(ctx context.Context, m sender, t task, caps *sendCaps) (broken bool) {
	g.setBusy(m.Name(), true)
	g.beginSettling(m.Name())
	settled := false
	defer func() {
		if !settled {
			g.endSettling(m.Name())
		}
	}()
	// The network stops trying once the code is worthless.
	res, err := m.Send(ctx, t.p.Number.E164, t.text, modem.WithValidity(t.deadline.Sub(g.now())))
	g.setBusy(m.Name(), false)

	caps.record(time.Now(), len(res.Refs))
	if err != nil {
		defer t.done()
		return g.sendFailed(ctx, m.Name(), t, err)
	}
	g.opts.Metrics.Sent(m.Name(), len(res.Refs), res.Duration, g.now().Sub(t.accepted))
	// The modem is free: its worker takes the next job while the
	// bookkeeping of this one goes on.
	settled = true
	g.settle.Add(1)
	go func() {
		defer g.settle.Done()
		defer g.endSettling(m.Name())
		g.sent(ctx, sentJob{task: t, modem: m.Name(), res: res, at: g.now()})
	}()
	return false
}

// sendFailed retries a job whose send failed while it has attempts and
// time left, and fails it otherwise. It reports whether the modem must be
// reopened.
func (g *Gateway) sendFailed(ctx context.Context, modemName string, t task, err error) (broken bool) {
	var se *modem.SendError
	if !errors.As(err, &se) {
		se = &modem.SendError{Class: modem.Retryable, Err: err}
	}
	g.opts.Metrics.SendFailed(modemName, se.Class.String())
	g.noteModem(modemName, func(s *modemState) { s.lastError, s.lastAt = modemDetail(se), g.now().UTC() })
	t.log = t.log.With("class", se.Class, "cms_error", se.Code)
	if se.Account != "" {
		g.opts.Metrics.SIMRefused(modemName, se.Account)
		t.log.Error("the network refuses the SIM's messages: check its credit and subscription", "cause", se.Account)
	}
	attempts, err := g.policy().Attempted(ctx, t.p, t.seq)
	var ended *policy.EndedError
	switch {
	case errors.As(err, &ended):
		// Another holder of the message ended the job meanwhile.
		g.retell(ctx, t, ended.State, ended.Final)
		return se.Broken
	case errors.Is(err, policy.ErrOtherJob):
		attempts = t.attempt // a job without a record: never admitted here
	case err != nil:
		// Counted by the server's deliveries (maxDeliveries) instead.
		t.log.Warn("record attempt", "err", err)
		attempts = t.attempt
	}
	t.attempt = attempts
	switch {
	case se.Class == modem.Permanent:
		g.fail(ctx, t, otp.ReasonModemRejected, modemDetail(se))
	case t.attempt >= g.opts.MaxAttempts:
		reason := otp.ReasonAttemptsExhausted
		if se.Class == modem.Unknown {
			reason = otp.ReasonUnknownOutcome
		}
		g.fail(ctx, t, reason, modemDetail(se))
	default:
		// Retry the same job (so the same code) while it is valid: a code
		// sent twice is harmless, a different code never goes out.
		delay := min(g.retryDelay(t.attempt), max(t.deadline.Sub(g.now()), 0))
		resend, reason := metrics.ResendRetry, otp.ReasonRetryable
		if se.Class == modem.Unknown {
			resend, reason = metrics.ResendUnknownOutcome, otp.ReasonUnknownOutcome
		}
		g.opts.Metrics.Resent(resend)
		t.log.Warn("send failed; will retry", "err", se.Error(), "retry_in", delay)
		ev := g.stamp(otp.Event{Type: otp.StateRetrying, ID: t.p.ID, To: t.p.Number.Masked(),
			Reason: reason, Detail: modemDetail(se),
			RetryAfter: delay.Seconds(), Modem: modemName, Attempt: t.attempt})
		// Told before the job goes back: no event of the next attempt
		// can come before it.
		g.tell(ctx, ev, eventID(t.p.ID, t.seq, otp.StateRetrying, t.attempt))
		g.stopProgress(t)
		if err := t.msg.NakWithDelay(delay); err != nil {
			t.log.Warn("nak job", "err", err)
		}
	}
	return se.Broken
}

// sentJob is a job whose message a modem confirmed.
type sentJob struct {
	task
	modem string
	res   modem.Result
	at    time.Time // when the last part was confirmed
}

// sent records a job whose message every part of was confirmed, each step
// durable before the next, so that a crash anywhere loses nothing: the
// tracking of its delivery (journalled), its final state with its sent
// event (the job record, which a redelivery tells again), the event, and
// only then the ack.
func (g *Gateway) sent(ctx context.Context, j sentJob) {
	p, res, log := j.p, j.res, j.log
	log.Info("sms sent", "parts", len(res.Refs), "cmgs", res.Duration.Round(time.Millisecond))
	g.noteSent(j.modem)
	var dm delivery.Message
	if res.Report {
		dm = delivery.Message{ID: p.ID, Modem: j.modem, To: p.Number.E164, Masked: p.Number.Masked(),
			Seq: j.seq, Refs: res.Refs, Accepted: j.accepted, Sent: j.at}
		g.journal(ctx, dm)
	}
	ev := otp.Event{Type: otp.StateSent, ID: p.ID, To: p.Number.Masked(),
		Modem: j.modem, Refs: res.Refs, Parts: len(res.Refs), Attempt: j.attempt, Report: res.Report}
	if !g.finish(ctx, j.task, &ev) {
		// Another holder of the message ended the job (sent it too, or
		// gave it up): its end and its delivery are that one's to tell.
		g.stopProgress(j.task)
		g.unjournal(ctx, p.ID, log)
		return
	}
	if p.Sealed != "" {
		g.opts.Metrics.Verified(p.Number.Region, metrics.VerificationSent)
	}
	if err := g.tell(ctx, ev, eventID(p.ID, j.seq, otp.StateSent, 0)); err != nil {
		// The record holds the end: the next delivery tells it.
		g.stopProgress(j.task)
		j.msg.NakWithDelay(time.Second)
	} else {
		g.stopProgress(j.task)
		if err := g.ack(ctx, j.msg); err != nil {
			// The server will hand the job out again after AckWait; its
			// record (when it could be written) tells it was sent.
			log.Error("ack sent job", "err", err)
		}
	}
	if res.Report {
		// After the sent event: a report that came first is held
		// for it, so that delivered never precedes sent.
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

func (g *Gateway) fail(ctx context.Context, t task, reason otp.Reason, detail string) {
	ev := otp.Event{Type: otp.StateFailed, ID: t.p.ID, To: t.p.Number.Masked(),
		Reason: reason, Detail: detail, Attempt: t.attempt}
	if !g.finish(ctx, t, &ev) {
		return
	}
	t.log.Warn("job failed", "reason", reason, "detail", detail)
	g.opts.Metrics.Ended(otp.StateFailed)
	if reason == otp.ReasonAttemptsExhausted || reason == otp.ReasonUnknownOutcome {
		// Dead-lettered: ended with its reason, out of the queue; the
		// job itself is not kept (its code is a secret, and worthless
		// after its ttl).
		g.opts.Metrics.DeadLettered(reason)
	}
	if err := g.tell(ctx, ev, eventID(t.p.ID, t.seq, otp.StateFailed, 0)); err != nil {
		g.stopProgress(t)
		t.msg.NakWithDelay(time.Second) // told again by the next delivery
		return
	}
	g.term(t.msg, string(reason))
}

// finish records the end of the job t holds with its final event *ev
// (stamped here), for later submissions of its id and for a redelivery
// after a crash. It reports whether the end is news to tell: not for a
// message that does not hold the job (a copy: taken off the queue here),
// nor for a job that had ended already (its end told again here).
func (g *Gateway) finish(ctx context.Context, t task, ev *otp.Event) bool {
	*ev = g.stamp(*ev)
	err := g.record(ctx, t.p, t.seq, *ev)
	var ended *policy.EndedError
	switch {
	case errors.Is(err, policy.ErrOtherJob):
		// A copy, or another job under a held id: its end is not news.
		g.term(t.msg, string(ev.Type))
		return false
	case errors.As(err, &ended):
		g.retell(ctx, t, ended.State, ended.Final)
		return false
	}
	return true
}

// record records the end of job p held by the message at stream sequence
// seq (0: held for sure), with its final event ev. A store that fails (a
// leader election) is tried again for a while: without the record, a
// redelivery of a sent job would send it again.
func (g *Gateway) record(ctx context.Context, p otp.Prepared, seq uint64, ev otp.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tellTimeout)
	defer cancel()
	return retry(ctx, newBackoff(50*time.Millisecond, 2*time.Second), func() (bool, error) {
		err := g.policy().Finish(ctx, p, seq, ev)
		var ended *policy.EndedError
		if err == nil || errors.Is(err, policy.ErrOtherJob) || errors.As(err, &ended) {
			return true, err
		}
		g.log.Warn("record job state; trying again", "id", p.ID, "state", ev.Type, "err", err)
		return false, err
	})
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

// stopProgress ends t's progress signals, if any.
func (g *Gateway) stopProgress(t task) {
	if t.done != nil {
		t.done()
	}
}

// keepInProgress tells the server the job is being worked on until stop is
// called, so that a long AT+CMGS does not get the job redelivered. stop
// may be called more than once.
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
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

func (g *Gateway) retryDelay(attempt int) time.Duration {
	d := g.opts.RetryDelay << min(attempt-1, 10)
	return min(d, time.Minute)
}
