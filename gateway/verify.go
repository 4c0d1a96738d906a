package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/verify"
)

// answerVerify answers otp.verify.
func (g *Gateway) answerVerify(ctx context.Context, data []byte) (any, func(context.Context)) {
	g.opts.Metrics.Received(metrics.SourceVerify)
	return g.verify(ctx, data)
}

// verify starts a managed verification: a job whose code simgate makes,
// admitted and queued as otp.request admits and queues a job, its code
// sealed in the queued job (so that it crosses NATS only sealed) and kept
// by the Verifier for checks.
func (g *Gateway) verify(ctx context.Context, data []byte) (otp.Reply, func(context.Context)) {
	r, err := otp.DecodeVerify(data)
	digits := cmp.Or(r.Digits, verify.DefaultDigits)
	var p otp.Prepared
	if err == nil {
		// Checked and rendered with a stand-in code of the same length:
		// any code's digits take as much room.
		p, _, err = g.prepareJob(r.Job(strings.Repeat("0", digits)))
	}
	if err == nil && g.opts.StoreFull != nil && g.opts.StoreFull() {
		return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "the store's disk is full; try again later"}, nil
	}
	if err != nil {
		re, _ := otp.AsReject(err)
		g.refused(re)
		return otp.RejectReply(r.ID, re), nil
	}
	// The policy tells a managed job by its sealed code, whatever the
	// code (policy's body hash): a request refused by a cached block
	// needs no code made.
	p.Sealed = "-"
	if g.policy().Blocked(p) {
		// Refused with no code made, as a flood's requests are. Should
		// the block have lifted meanwhile, the admission is taken back
		// and the caller asked to try again.
		return g.queue(ctx, p, nil, metrics.SourceVerify, func(context.Context) error { return errBlockLifted })
	}
	st, err := g.opts.Verifier.Plan(ctx, verify.Request{ID: r.ID, Number: g.policy().NumberKey(p.Number.E164),
		Region: p.Number.Region, To: p.Number.Masked(), TTL: p.TTL, Digits: digits, New: r.New})
	if le := (*verify.LockedError)(nil); errors.As(err, &le) {
		re := &otp.RejectError{Reason: otp.ReasonRateLimited, Scope: otp.ScopeNumber, Field: "to",
			Detail: le.Error(), RetryAfter: le.RetryAfter}
		g.refused(re)
		return otp.RejectReply(r.ID, re), nil
	}
	if err != nil {
		g.log.Error("verification", "id", r.ID, "err", err)
		return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "verification store unavailable; try again"}, nil
	}
	if p.Sealed, err = g.opts.Verifier.SealJob(r.ID, r.To, st.Code); err != nil {
		g.log.Error("verification", "id", r.ID, "err", err)
		return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "could not seal the code; try again"}, nil
	}
	job := p.Job
	job.Code = ""
	data, err = json.Marshal(job)
	if err != nil {
		return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "could not encode the job"}, nil
	}
	reply, after := g.queue(ctx, p, data, metrics.SourceVerify, func(ctx context.Context) error {
		return g.opts.Verifier.Commit(ctx, &st)
	})
	if reply.Status != otp.ReplyAccepted {
		return reply, after
	}
	reply.Verification = st.ID
	if !reply.Duplicate {
		step := metrics.VerificationStarted
		if st.Resend {
			step = metrics.VerificationResent
		}
		g.opts.Metrics.Verified(p.Number.Region, step)
		reply.Resend = reply.Resend || st.Resend
	}
	return reply, after
}

// errBlockLifted is the error of a verification admitted although a
// cached block refused it a moment before.
var errBlockLifted = errors.New("the number's block lifted while deciding; try again")

// answerCheck answers otp.check; the end of a verification is told as its
// event once the answer is out.
func (g *Gateway) answerCheck(ctx context.Context, data []byte) (any, func(context.Context)) {
	reply, res := g.checkCode(ctx, data)
	result := string(reply.Status)
	if reply.Reason == otp.ReasonRateLimited {
		result = metrics.CheckRateLimited
	}
	g.opts.Metrics.Checked(result)
	if !res.Ended {
		return reply, nil
	}
	steps := map[otp.CheckStatus]metrics.Verification{otp.CheckApproved: metrics.VerificationApproved,
		otp.CheckLocked: metrics.VerificationLocked, otp.CheckExpired: metrics.VerificationExpired}
	g.opts.Metrics.Verified(res.Region, steps[res.Status])
	typ := map[otp.CheckStatus]otp.State{otp.CheckApproved: otp.StateApproved, otp.CheckLocked: otp.StateLocked}[res.Status]
	if typ == "" {
		return reply, nil
	}
	g.log.Info("verification ended", "id", res.ID, "to", res.To, "result", res.Status)
	return reply, func(ctx context.Context) {
		ev := g.stamp(otp.Event{Type: typ, ID: res.ID, To: res.To})
		_ = g.tell(ctx, ev, "verify."+res.ID+"."+string(typ)) // logged and counted if lost
	}
}

// checkCode answers a check request, and returns the Verifier's result.
func (g *Gateway) checkCode(ctx context.Context, data []byte) (otp.CheckReply, verify.Result) {
	c, err := otp.DecodeCheck(data)
	if err != nil {
		re, _ := otp.AsReject(err)
		return otp.CheckReply{Status: otp.CheckRejected, Reason: re.Reason, Field: re.Field, Detail: re.Detail}, verify.Result{}
	}
	id := c.ID
	if c.To != "" {
		n, err := otp.ParseNumber(c.To, cmp.Or(c.Region, g.limits().Region))
		if err != nil {
			re, _ := otp.AsReject(err)
			return otp.CheckReply{Status: otp.CheckRejected, Reason: re.Reason, Field: re.Field, Detail: re.Detail}, verify.Result{}
		}
		if id, err = g.opts.Verifier.PendingOf(ctx, g.policy().NumberKey(n.E164)); err != nil {
			g.log.Error("check", "to", n.Masked(), "err", err)
			return otp.CheckReply{Status: otp.CheckError, Detail: "verification store unavailable; try again"}, verify.Result{}
		}
		if id == "" {
			return otp.CheckReply{Status: otp.CheckNotFound}, verify.Result{}
		}
	}
	res, err := g.opts.Verifier.Check(ctx, id, c.Code)
	if err != nil {
		g.log.Error("check", "id", id, "err", err)
		return otp.CheckReply{Status: otp.CheckError, Detail: "verification store unavailable; try again"}, verify.Result{}
	}
	reply := otp.CheckReply{Status: res.Status, ID: res.ID, AttemptsLeft: res.AttemptsLeft}
	if res.Status == otp.CheckRejected {
		reply.Reason, reply.RetryAfter = otp.ReasonRateLimited, res.RetryAfter.Seconds()
		reply.Detail = "too many checks for this number; try again later"
	}
	return reply, res
}
