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
// admitted by the policy as otp.request admits a job, then given its code
// (verify.Verifier.Plan and Commit) and queued with the code sealed, so
// that the code crosses NATS only sealed.
func (g *Gateway) verify(ctx context.Context, data []byte) (otp.Reply, func(context.Context)) {
	r, err := otp.DecodeVerify(data)
	limits := g.limits()
	digits := cmp.Or(r.Digits, max(verify.DefaultDigits, limits.MinCodeDigits))
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
		if re.Field == "code" {
			re.Field = "digits" // the request's only say in the code
		}
		g.refused(re)
		return otp.RejectReply(r.ID, re), nil
	}
	// The policy tells a managed job by its sealed code, whatever the
	// code (its body hash leaves the code out): a retry is a duplicate,
	// and the policy decides before any code is made.
	p.Sealed = "-"
	v, stop := g.admit(ctx, p)
	if stop != nil {
		if stop.Duplicate {
			stop.Verification, _ = g.opts.Verifier.Verification(ctx, r.ID)
		}
		return *stop, nil
	}
	vr := verify.Request{ID: r.ID, Number: g.policy().NumberKey(p.Number.E164), Region: p.Number.Region,
		To: p.Number.Masked(), TTL: p.TTL, Digits: digits, New: r.New}
	st, err := g.opts.Verifier.Begin(ctx, vr)
	if err == nil {
		p.Sealed, err = g.opts.Verifier.SealJob(r.ID, p.Number.E164, st.Code)
	}
	if err != nil {
		g.opts.Verifier.Abort(ctx, &st)
		g.withdraw(ctx, p)
		var le *verify.LockedError
		switch {
		case errors.As(err, &le):
			re := &otp.RejectError{Reason: otp.ReasonRateLimited, Scope: otp.ScopeNumber, Field: "to",
				Detail: le.Error(), RetryAfter: le.RetryAfter}
			g.refused(re)
			return otp.RejectReply(r.ID, re), nil
		case errors.Is(err, verify.ErrExists):
			re := &otp.RejectError{Reason: otp.ReasonIDConflict, Field: "id", Detail: "the id names another verification"}
			g.refused(re)
			return otp.RejectReply(r.ID, re), nil
		case errors.Is(err, verify.ErrReplan):
			return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "a code is being sent to this number; try again"}, nil
		}
		g.log.Error("verification", "id", r.ID, "err", err)
		return otp.Reply{Status: otp.ReplyError, ID: r.ID, Detail: "verification store unavailable; try again"}, nil
	}
	job := p.Job
	job.Code = ""
	data, _ = json.Marshal(job)
	reply, queued, refused := g.enqueue(ctx, p, v, data, metrics.SourceVerify)
	if reply.Status != otp.ReplyAccepted {
		if refused {
			g.opts.Verifier.Abort(ctx, &st)
		} else {
			// It may be queued and sent: its code stays the number's
			// (a retry, or a start after it, sends it again).
			g.opts.Verifier.Finish(context.WithoutCancel(ctx), &st)
		}
		return reply, nil
	}
	reply.Verification = st.ID
	step := metrics.VerificationStarted
	if st.Resend && st.ID != r.ID {
		step = metrics.VerificationResent
		reply.Resend = true
	}
	g.opts.Metrics.Verified(p.Number.Region, step)
	return reply, func(ctx context.Context) {
		// First: until it is done, other starts of the number wait.
		g.opts.Verifier.Finish(context.WithoutCancel(ctx), &st)
		queued(ctx)
	}
}

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
	var res verify.Result
	if c.To != "" {
		n, perr := otp.ParseNumber(c.To, cmp.Or(c.Region, g.limits().Region))
		if perr != nil {
			re, _ := otp.AsReject(perr)
			return otp.CheckReply{Status: otp.CheckRejected, Reason: re.Reason, Field: re.Field, Detail: re.Detail}, verify.Result{}
		}
		res, err = g.opts.Verifier.CheckNumber(ctx, g.policy().NumberKey(n.E164), c.Code)
	} else {
		res, err = g.opts.Verifier.Check(ctx, c.ID, c.Code)
	}
	if err != nil {
		g.log.Error("check", "id", c.ID, "err", err)
		return otp.CheckReply{Status: otp.CheckError, Detail: "verification store unavailable; try again"}, verify.Result{}
	}
	if res.Busy {
		return otp.CheckReply{Status: otp.CheckError, Detail: "a new code is being sent for this number; try again"}, verify.Result{}
	}
	reply := otp.CheckReply{Status: res.Status, ID: res.ID, AttemptsLeft: res.AttemptsLeft}
	if res.Status == otp.CheckRejected {
		reply.Reason, reply.RetryAfter = otp.ReasonRateLimited, res.RetryAfter.Seconds()
		reply.Detail = "too many checks for this number; try again later"
	}
	return reply, res
}
