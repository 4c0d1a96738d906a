package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// StartRequests serves otp.request, and with Options.Verifier otp.verify
// and otp.check (as endpoints of a NATS micro service, so every daemon
// answers in one queue group), until StopRequests.
func (g *Gateway) StartRequests() error {
	tasks := make(chan answerTask)
	for range maxAnswering {
		go g.answerer(tasks)
	}
	g.mu.Lock()
	g.tasks = tasks
	g.mu.Unlock()
	svc, err := micro.AddService(g.opts.NC, micro.Config{
		Name:        "simgate",
		Version:     serviceVersion(g.opts.Version),
		Description: "OTP over SMS: validates a job, queues it and answers at once",
		Endpoint: &micro.EndpointConfig{
			Subject: otp.SubjectRequest,
			Handler: g.handler(g.answerRequest, stoppingReply),
		},
	})
	if err != nil {
		g.abortRequests(nil, tasks)
		return fmt.Errorf("serve %s: %w", otp.SubjectRequest, err)
	}
	// Every daemon answers the status: no queue group.
	if err := svc.AddEndpoint("status", g.shedHandler(g.statusSlots, g.answerStatus, otp.Status{Node: g.opts.Node, QueuePending: -1}),
		micro.WithEndpointSubject(otp.SubjectStatus), micro.WithEndpointQueueGroupDisabled()); err != nil {
		g.abortRequests(svc, tasks)
		return fmt.Errorf("serve %s: %w", otp.SubjectStatus, err)
	}
	if g.opts.Verifier != nil {
		for _, e := range []struct {
			name, subject string
			h             micro.Handler
		}{
			{"verify", otp.SubjectVerify, g.handler(g.answerVerify, stoppingReply)},
			{"check", otp.SubjectCheck, g.handler(g.answerCheck, stoppingCheck)},
		} {
			if err := svc.AddEndpoint(e.name, e.h, micro.WithEndpointSubject(e.subject)); err != nil {
				g.abortRequests(svc, tasks)
				return fmt.Errorf("serve %s: %w", e.subject, err)
			}
		}
	}
	// Make sure the server knows the subscriptions before callers are told
	// the daemon is up.
	if err := g.opts.NC.Flush(); err != nil {
		g.abortRequests(svc, tasks)
		return fmt.Errorf("serve %s: %w", otp.SubjectRequest, err)
	}
	g.mu.Lock()
	g.svc, g.stopped = svc, false
	g.mu.Unlock()
	return nil
}

// abortRequests stops svc (if any), which StartRequests could not
// finish, and its answerers, once the requests it handed over are
// answered.
func (g *Gateway) abortRequests(svc micro.Service, tasks chan answerTask) {
	if svc != nil {
		svc.Stop()
	}
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.answers.Wait()
	g.mu.Lock()
	g.tasks = nil
	g.mu.Unlock()
	close(tasks)
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
	err := svc.Stop()
	// Requests the stopped service still hands over are told it is
	// stopping (handler); wait for the answers in progress.
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.answers.Wait()
	// No request comes to the answerers any more: a request handed over
	// before stopped was set is one of the answers waited for.
	g.mu.Lock()
	close(g.tasks)
	g.tasks = nil
	g.mu.Unlock()
	return err
}

// maxAnswering is how many otp.request, otp.verify and otp.check answers
// one daemon works on at once: the goroutines that answer them (see
// handler). The micro service hands requests over one at a time; an answer
// waits mostly on the policy store, so answers overlap, and a flood is
// answered at the speed of the CPU rather than of one store round trip
// after another. Past the bound, requests wait in the subscription (whose
// pending limits drop what a stalled daemon cannot take); more would only
// add goroutines that take the CPU from the jobs being sent (measured with
// BenchmarkFlood: 64 answer as many refusals as 256, and keep real users'
// latency lower).
const maxAnswering = 64

// maxRefusing is how many answers of requests a cached block refuses run
// at once (see refuse). Measured with BenchmarkFlood, alternating: 32
// answer 6-10% more refusals than 16 (their job records are read more at
// a time), and real users wait about 2 ms more during the flood (median
// and p99, of 10-12 and 21-25 ms); 64 answer no more than 32.
const maxRefusing = 32

var semver = regexp.MustCompile(`^v?(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$`)

// serviceVersion returns version in the SemVer form the micro service
// protocol requires ("v1.2.3" -> "1.2.3"; "devel" -> "0.0.0-devel").
func serviceVersion(version string) string {
	if m := semver.FindStringSubmatch(version); m != nil {
		return m[1]
	}
	return "0.0.0-dev"
}

// answerFunc answers a request's data: the reply, and what is left to do
// once it is out (nil when nothing).
type answerFunc func(ctx context.Context, data []byte) (reply any, after func(context.Context))

// stoppingReply and stoppingCheck are the answers of a stopping daemon.
var (
	stoppingReply = otp.Reply{Status: otp.ReplyError, Detail: "the daemon is stopping; try again"}
	stoppingCheck = otp.CheckReply{Status: otp.CheckError, Detail: "the daemon is stopping; try again"}
)

// answerTask is a request handed to an answerer.
type answerTask struct {
	answer           answerFunc
	replyTo, subject string
	data             []byte
}

// handler returns the handler of an endpoint whose requests answer
// answers: it hands each to one of the maxAnswering answerers, waiting
// while all are busy, over otp.request, otp.verify and otp.check;
// stopping is the answer once StopRequests began.
//
// The answerers live as long as the service: a goroutine for each
// request would grow its stack to a decision's depth every time (a tenth
// of the daemon's CPU in a flood, measured with BenchmarkFlood).
func (g *Gateway) handler(answer answerFunc, stopping any) micro.HandlerFunc {
	return func(req micro.Request) {
		tasks, ok := g.begin(req, nil, stopping)
		if ok {
			// The request's reply subject, subject and data are read
			// now: the micro service reads req again once this returns.
			tasks <- answerTask{answer: answer, replyTo: req.Reply(), subject: req.Subject(), data: req.Data()}
		}
	}
}

// maxStatus is how many status answers one daemon works on at once: every
// daemon answers every status request, which any publisher may send, so
// they have slots of their own, and one that finds them taken is dropped.
const maxStatus = 2

// shedHandler is handler for answers that take one of slots, each in a
// goroutine of its own: a request that finds them taken is dropped.
func (g *Gateway) shedHandler(slots chan struct{}, answer answerFunc, stopping any) micro.HandlerFunc {
	return func(req micro.Request) {
		if _, ok := g.begin(req, slots, stopping); ok {
			t := answerTask{answer: answer, replyTo: req.Reply(), subject: req.Subject(), data: req.Data()}
			go func() {
				defer func() { <-slots }()
				g.serve(t)
			}()
		}
	}
}

// begin counts req as an answer in progress, having taken one of slots
// (when not nil; a request that finds them taken is dropped), and returns
// where to hand it; it answers stopping itself once StopRequests began.
func (g *Gateway) begin(req micro.Request, slots chan struct{}, stopping any) (chan<- answerTask, bool) {
	g.mu.Lock()
	if g.stopped || g.tasks == nil {
		g.mu.Unlock()
		// Handed over by a service that is stopping: say so at once,
		// rather than leave the caller to its timeout.
		if replySubject(req.Reply()) {
			b, _ := json.Marshal(stopping)
			_ = g.opts.NC.Publish(req.Reply(), b)
		}
		return nil, false
	}
	defer g.mu.Unlock()
	if slots != nil {
		select {
		case slots <- struct{}{}:
		default:
			return nil, false // busy: the caller hears from the other daemons
		}
	}
	g.answers.Add(1)
	return g.tasks, true
}

// answerer serves the tasks until they end.
func (g *Gateway) answerer(tasks <-chan answerTask) {
	for t := range tasks {
		g.serve(t)
	}
}

// serve answers t and publishes the answer on its reply subject.
func (g *Gateway) serve(t answerTask) {
	defer g.answers.Done()
	if !replySubject(t.replyTo) {
		// The daemon may publish anywhere in its account: an answer to
		// a reply subject the caller chose (an event subject, a key)
		// would write there with the daemon's rights.
		g.log.Warn("request with a reply subject outside _INBOX and _R_; not answered", "subject", t.subject)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, after := t.answer(ctx, t.data)
	b, _ := json.Marshal(reply)
	if err := g.opts.NC.Publish(t.replyTo, b); err != nil {
		g.log.Warn("answer request", "subject", t.subject, "err", err)
	}
	if after != nil {
		after(ctx)
	}
}

// answerRequest answers otp.request.
func (g *Gateway) answerRequest(ctx context.Context, data []byte) (any, func(context.Context)) {
	g.opts.Metrics.Received(metrics.SourceRequest)
	return g.request(ctx, data)
}

// replySubject reports whether an otp.request may be answered on reply:
// a requester's inbox (_INBOX.…), or the subject the server made for a
// request that came through a service import (_R_.…), which it routes back
// to the requester's account. The publishers live in an account of their
// own (queue.AccountPublishers), where every reply comes as _R_; the
// check guards setups that put them in the daemon's account.
func replySubject(reply string) bool {
	return strings.HasPrefix(reply, "_INBOX.") || strings.HasPrefix(reply, "_R_.")
}

// request decides an otp.request and returns its reply, and for a job
// queued, what is left to do once the reply is out: recording that the
// job is queued (policy.Queued) is not on the caller's path.
func (g *Gateway) request(ctx context.Context, data []byte) (otp.Reply, func(context.Context)) {
	job, err := otp.DecodeJob(data)
	if err == nil && job.Sealed != "" {
		err = &otp.RejectError{Reason: otp.ReasonUnknownField, Field: "sealed", Detail: "sealed is simgate's own field (use otp.verify for a code simgate makes)"}
	}
	var p otp.Prepared
	if err == nil {
		p, err = g.checkJob(job)
	}
	if err == nil && g.policy().Blocked(p) {
		// A flood's refusal, most likely: answered before the job is
		// rendered, which a refusal does not need (so a cached block
		// comes before a template's or a length's rejection).
		if stop := g.refuse(ctx, p); stop != nil {
			return *stop, nil
		}
	}
	if err == nil {
		p, _, err = g.renderJob(p)
	}
	if err == nil && g.opts.StoreFull != nil && g.opts.StoreFull() {
		return otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: "the store's disk is full; try again later"}, nil
	}
	if err != nil {
		re, _ := otp.AsReject(err)
		g.refused(re)
		return otp.RejectReply(job.ID, re), nil
	}
	// Blocked was asked above: a block cached since is Admit's to answer.
	v, err := g.policy().Admit(ctx, p)
	v, stop := g.verdict(ctx, p, v, err, true)
	if stop != nil {
		return *stop, nil
	}
	reply, queued, _ := g.enqueue(ctx, p, v, data, metrics.SourceRequest)
	return reply, queued
}

// admit decides p by the policy: its verdict, or the reply that ends the
// request (a refusal, a duplicate, an error).
func (g *Gateway) admit(ctx context.Context, p otp.Prepared) (policy.Verdict, *otp.Reply) {
	if g.policy().Blocked(p) {
		if stop := g.refuse(ctx, p); stop != nil {
			return policy.Verdict{}, stop
		}
	}
	v, err := g.policy().Admit(ctx, p)
	return g.verdict(ctx, p, v, err, true)
}

// refuse answers p, which a cached block refuses, by policy.Refuse: the
// reply that ends the request, as admit's; none when no block refuses p
// any more (p then needs admit).
func (g *Gateway) refuse(ctx context.Context, p otp.Prepared) *otp.Reply {
	// A flood's refusals wait their turn, a few at a time: they need no
	// hurry, and each one waiting is a goroutine fewer between the CPU
	// and the jobs of real users.
	g.refusing <- struct{}{}
	defer func() { <-g.refusing }()
	v, err := g.policy().Refuse(ctx, p)
	if errors.Is(err, policy.ErrNotBlocked) {
		return nil
	}
	_, stop := g.verdict(ctx, p, v, err, false)
	return stop
}

// verdict turns a policy decision of p (v, err) into its verdict, or the
// reply that ends the request (a refusal, a duplicate, an error). After
// an error, what the decision may have written (recorded) is taken back.
func (g *Gateway) verdict(ctx context.Context, p otp.Prepared, v policy.Verdict, err error, recorded bool) (policy.Verdict, *otp.Reply) {
	job := p.Job
	stop := func(r otp.Reply) (policy.Verdict, *otp.Reply) { return policy.Verdict{}, &r }
	if re, ok := otp.AsReject(err); ok {
		g.refused(re)
		return stop(otp.RejectReply(job.ID, re))
	}
	if errors.Is(err, policy.ErrInFlight) {
		return stop(otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: "the job is being admitted by another request; try again"})
	}
	if err != nil {
		g.log.Error("policy", "id", job.ID, "err", err)
		if recorded {
			// A record left would make a retry a duplicate of a job
			// never queued.
			g.withdraw(ctx, p)
		}
		return stop(otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: "policy store unavailable; try again"})
	}
	if v.Duplicate {
		return stop(g.duplicate(p, v))
	}
	return v, nil
}

// enqueue queues p, admitted with verdict v, as data on otp.send, and
// returns the reply; for a job queued, also what is left to do once the
// reply is out: recording that the job is queued (policy.Queued) is not on
// the caller's path. A job that cannot be queued is withdrawn; refused is
// true when the stream surely did not store it (it answered so), false when
// it may have (no answer in time).
func (g *Gateway) enqueue(ctx context.Context, p otp.Prepared, v policy.Verdict, data []byte, source metrics.Source) (reply otp.Reply, queued func(context.Context), refused bool) {
	job := p.Job
	// The message id names this admission, not just the job id: an id
	// whose earlier admission was refused, withdrawn or never queued must
	// not be taken for a duplicate by the stream. Double submits are the
	// policy's to recognise (above). The suffix is random: a publisher who
	// could predict it could publish under it first, and the stream would
	// drop this publish as a duplicate of theirs.
	msgID := job.ID + "." + rand.Text()
	ack, err := g.opts.JS.Publish(ctx, otp.SubjectSend, data, jetstream.WithMsgID(msgID))
	apiErr := (*jetstream.APIError)(nil)
	refused = errors.As(err, &apiErr)
	if err == nil && ack.Duplicate {
		err, refused = errors.New("the stream took the message for a duplicate"), true
	}
	if err != nil {
		g.log.Error("queue job", "id", job.ID, "err", err)
		g.withdraw(ctx, p)
		detail := "could not queue the job; try again"
		if refused && apiErr != nil && apiErr.ErrorCode == errCodeMaxBytes {
			detail = "the job queue is full; try again later"
		}
		return otp.Reply{Status: otp.ReplyError, ID: job.ID, Detail: detail}, nil, refused
	}
	g.accepted(p, v, source)
	queued = func(ctx context.Context) {
		// Its own time, whatever is left of the request's: until it is
		// recorded, a retry waits, and past 30 s one is taken for new.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err := g.policy().Queued(ctx, p, v, ack.Sequence)
		if err != nil {
			err = g.policy().Queued(ctx, p, v, ack.Sequence)
		}
		if err != nil {
			// The job is queued; the worker that takes it records it.
			g.log.Warn("record queued job", "id", job.ID, "err", err)
		}
	}
	return otp.Reply{Status: otp.ReplyAccepted, ID: job.ID, To: p.Number.Masked(), Resend: v.Resend}, queued, false
}

// withdraw takes back what Admit recorded of p, whatever is left of ctx.
func (g *Gateway) withdraw(ctx context.Context, p otp.Prepared) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := g.policy().Withdraw(ctx, p); err != nil {
		g.log.Warn("withdraw job", "id", p.ID, "err", err)
	}
}

// errCodeMaxBytes is JetStream's error code for a stream at its MaxBytes
// that refuses new messages (nats.go names no constant for it).
const errCodeMaxBytes jetstream.ErrorCode = 10077

// accepted records a newly admitted job: log and metrics. Its accepted
// event is told by the worker that takes it, on both paths (admitQueued),
// so that it comes before the job's other events.
func (g *Gateway) accepted(p otp.Prepared, v policy.Verdict, source metrics.Source) {
	g.log.Info("job accepted", "id", p.ID, "to", p.Number.Masked(), "source", source, "resend", v.Resend)
	if v.Resend {
		g.opts.Metrics.Resent(metrics.ResendUser)
	}
}

// duplicate answers a job whose id was seen before: nothing new is sent,
// and the answer is that job's own state. Jobs are told apart by id only:
// nothing here depends on the code.
func (g *Gateway) duplicate(p otp.Prepared, v policy.Verdict) otp.Reply {
	g.opts.Metrics.Suppressed(metrics.DuplicateID)
	g.log.Info("duplicate job id", "id", p.ID, "state", v.State)
	return otp.Reply{Status: otp.ReplyAccepted, ID: p.ID, To: p.Number.Masked(), Duplicate: true, State: v.State}
}
