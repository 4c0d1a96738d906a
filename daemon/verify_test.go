package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// call sends request v on subject as the harness's publisher and decodes
// the answer into out.
func (h *harness) call(subject string, v, out any) {
	h.t.Helper()
	b, _ := json.Marshal(v)
	msg, err := h.nc.Request(subject, b, 10*time.Second)
	if err != nil {
		h.t.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		h.t.Fatalf("%s answer %q: %v", subject, msg.Data, err)
	}
}

// verify starts a managed verification.
func (h *harness) verify(req map[string]any) otp.Reply {
	h.t.Helper()
	var r otp.Reply
	h.call(otp.SubjectVerify, req, &r)
	return r
}

// check checks a managed code.
func (h *harness) check(req map[string]any) otp.CheckReply {
	h.t.Helper()
	var r otp.CheckReply
	h.call(otp.SubjectCheck, req, &r)
	return r
}

// waitType returns the next event of id of type typ, failing the test on
// an approved or locked event of another type (a verification ends once).
func (h *harness) waitType(id string, typ otp.State) otp.Event {
	h.t.Helper()
	for {
		ev := h.waitEvent(id)
		switch {
		case ev.Type == typ:
			return ev
		case ev.Type == otp.StateApproved || ev.Type == otp.StateLocked:
			h.t.Fatalf("%s of %s, want %s", ev.Type, id, typ)
		}
	}
}

// codeIn is the code of a text rendered from the default template.
var codeIn = regexp.MustCompile(`code is (\d{6,10})\.`)

// codeOf waits for the next SMS the modem takes and returns the code in it.
func codeOf(t testing.TB, s *sim) string {
	t.Helper()
	msg := waitMessage(t, s)
	m := codeIn.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in the SMS the modem took (%d characters)", len(msg.Text))
	}
	return m[1]
}

// otherCode returns a code of code's length that is not code.
func otherCode(code string, i int) string {
	w := fmt.Sprintf("%0*d", len(code), i)
	if w == code {
		w = fmt.Sprintf("%0*d", len(code), i+1)
	}
	return w
}

// TestManagedCodeEndToEnd: start, the SMS carries a 6-digit code, wrong
// codes count down, the right one is approved once, and the numbers say
// so.
func TestManagedCodeEndToEnd(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))

	r := h.verify(map[string]any{"id": "v1", "to": "+45 26 22 79 21"})
	if r.Status != otp.ReplyAccepted || r.ID != "v1" || r.Verification != "v1" || r.To != "+45******21" || r.Resend {
		t.Fatalf("verify: %+v", r)
	}
	code := codeOf(t, s)
	if len(code) != 6 {
		t.Fatalf("a %d-digit code, want 6", len(code))
	}
	if evs := h.waitFinal("v1"); types(evs) != "accepted,sent" {
		t.Errorf("events of v1: %s", types(evs))
	}
	for left := 4; left >= 1; left-- {
		if c := h.check(map[string]any{"id": "v1", "code": otherCode(code, left)}); c.Status != otp.CheckDenied || c.AttemptsLeft != left {
			t.Fatalf("a wrong code: %+v, want denied with %d left", c, left)
		}
	}
	if c := h.check(map[string]any{"id": "v1", "code": code}); c.Status != otp.CheckApproved || c.ID != "v1" {
		t.Fatalf("the right code: %+v", c)
	}
	if ev := h.waitType("v1", otp.StateApproved); ev.To != "+45******21" {
		t.Errorf("approved event: %+v", ev)
	}
	if c := h.check(map[string]any{"id": "v1", "code": code}); c.Status == otp.CheckApproved {
		t.Errorf("the right code a second time: %+v", c)
	}

	// By number: the newest pending verification of the number.
	r = h.verify(map[string]any{"id": "v2", "to": "+4526227922", "digits": 8})
	code2 := codeOf(t, s)
	if r.Status != otp.ReplyAccepted || len(code2) != 8 {
		t.Fatalf("verify v2: %+v, a %d-digit code", r, len(code2))
	}
	if c := h.check(map[string]any{"to": "26227922", "region": "DK", "code": code2}); c.Status != otp.CheckApproved || c.ID != "v2" {
		t.Errorf("check by number: %+v", c)
	}
	if c := h.check(map[string]any{"to": "+4526227923", "code": code2}); c.Status != otp.CheckNotFound || c.ID != "" {
		t.Errorf("check of a number with none: %+v", c)
	}
	if c := h.check(map[string]any{"id": "v1", "code": "12ab56"}); c.Status != otp.CheckRejected || c.Reason != otp.ReasonInvalidCode {
		t.Errorf("a malformed check: %+v", c)
	}
	waitMetrics(t, h.d.MetricsAddr(),
		`simgate_verifications_total{region="DK",result="started"} 2`,
		`simgate_verifications_total{region="DK",result="sent"} 2`,
		`simgate_verifications_total{region="DK",result="approved"} 2`,
		`simgate_verify_checks_total{result="denied"} 4`,
		`simgate_verify_checks_total{result="approved"} 2`,
		`simgate_verify_checks_total{result="not_found"} 2`,
		`simgate_verify_checks_total{result="rejected"} 1`,
		`simgate_jobs_received_total{source="verify"} 2`)
}

// TestManagedCodeResendAndLock: a second start sends the same code again
// (checkable by either id); wrong codes lock it, the lock holds against
// new codes, and its event says so.
func TestManagedCodeResendAndLock(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	to := "+4526227921"
	h.verify(map[string]any{"id": "v1", "to": to})
	code := codeOf(t, s)
	r := h.verify(map[string]any{"id": "v2", "to": to})
	if r.Status != otp.ReplyAccepted || !r.Resend || r.Verification != "v1" {
		t.Fatalf("resend: %+v", r)
	}
	if again := codeOf(t, s); again != code {
		t.Errorf("the resend carried another code")
	}
	if r := h.verify(map[string]any{"id": "v2", "to": to}); !r.Duplicate || r.Verification != "v1" {
		t.Errorf("the resend's request again: %+v, want a duplicate", r)
	}
	for i := range 4 {
		if c := h.check(map[string]any{"id": "v2", "code": otherCode(code, i)}); c.Status != otp.CheckDenied || c.ID != "v1" {
			t.Fatalf("wrong code by the resend's id: %+v", c)
		}
	}
	if c := h.check(map[string]any{"id": "v1", "code": otherCode(code, 9)}); c.Status != otp.CheckLocked {
		t.Fatalf("the fifth wrong code: %+v, want locked", c)
	}
	h.waitType("v1", otp.StateLocked)
	if c := h.check(map[string]any{"id": "v1", "code": code}); c.Status != otp.CheckLocked {
		t.Errorf("the right code after the lock: %+v", c)
	}
	if r := h.verify(map[string]any{"id": "v1", "to": to}); !r.Duplicate || r.Verification != "v1" {
		t.Errorf("the first request again after the lock: %+v, want a duplicate", r)
	}
	r = h.verify(map[string]any{"id": "v3", "to": to, "new": true})
	if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonRateLimited || r.RetryAfter <= 0 {
		t.Errorf("a new code while locked: %+v", r)
	}
	if n := len(s.Submissions()); n != 2 {
		t.Errorf("%d SMS sent, want 2", n)
	}
}

// TestManagedCodeExpiry: at its ttl the code's secrets leave the bucket
// TestChecksRateLimited: a number's checks beyond otp.verify
// checks_per_minute, by id or by number, are refused rate_limited with
// when to try again, and counted.
func TestChecksRateLimited(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.OTP.Verify.ChecksPerMinute = 2
	h := start(t, cfg)
	h.verify(map[string]any{"id": "v1", "to": "+4526227921"})
	code := codeOf(t, s)
	for i, req := range []map[string]any{
		{"id": "v1", "code": otherCode(code, 0)},
		{"to": "+4526227921", "code": otherCode(code, 1)},
	} {
		if c := h.check(req); c.Status != otp.CheckDenied {
			t.Fatalf("check %d: %+v, want denied", i+1, c)
		}
	}
	c := h.check(map[string]any{"id": "v1", "code": code})
	if c.Status != otp.CheckRejected || c.Reason != otp.ReasonRateLimited || c.RetryAfter <= 0 {
		t.Errorf("a third check within the minute: %+v, want rejected rate_limited with retry_after", c)
	}
	waitMetrics(t, h.d.MetricsAddr(), `simgate_verify_checks_total{result="rate_limited"} 1`)
}

// with nobody checking; a check then answers expired.
func TestManagedCodeExpiry(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	watch, err := mustKV(t, h.daemonJS(), queue.BucketSecrets).Watch(context.Background(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	h.verify(map[string]any{"id": "v1", "to": "+4526227921", "ttl": "1s"})
	code := codeOf(t, s)
	timeout := time.After(15 * time.Second)
	for gone := false; !gone; {
		select {
		case e := <-watch.Updates():
			gone = e != nil && e.Operation() != jetstream.KeyValuePut
		case <-timeout:
			t.Fatal("the secrets outlived the ttl")
		}
	}
	if c := h.check(map[string]any{"id": "v1", "code": code}); c.Status != otp.CheckExpired {
		t.Errorf("the right code after the ttl: %+v, want expired", c)
	}
}

func mustKV(t testing.TB, js jetstream.JetStream, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestChecksRaceAcrossDaemons: two daemons answering checks of one
// verification at once never count more wrong codes than the maximum.
func TestChecksRaceAcrossDaemons(t *testing.T) {
	s1, s2 := startSim(t, "a1", 0), startSim(t, "b1", 0)
	cfgA := testConfig(t.TempDir(), s1)
	cfgA.Node = "a"
	cfgA.OTP.Verify.ChecksPerMinute = 1000
	a := start(t, cfgA)
	cfgB := testConfig(t.TempDir(), s2)
	cfgB.Node, cfgB.OTP.Verify = "b", cfgA.OTP.Verify
	cfgB = onServerOf(cfgB, cfgA, a.d)
	copyKeyFile(t, cfgA.StateDir, cfgB)
	b := start(t, cfgB)

	a.verify(map[string]any{"id": "v1", "to": "+4526227921"})
	var code string
	select {
	case m := <-s1.msgs:
		code = codeIn.FindStringSubmatch(m.Text)[1]
	case m := <-s2.msgs:
		code = codeIn.FindStringSubmatch(m.Text)[1]
	case <-time.After(20 * time.Second):
		t.Fatal("no SMS")
	}
	const n = 40
	answers := make([]otp.CheckReply, n)
	var wg sync.WaitGroup
	for i := range n {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Go(func() { answers[i] = h.check(map[string]any{"id": "v1", "code": otherCode(code, i)}) })
	}
	wg.Wait()
	count := map[otp.CheckStatus]int{}
	for _, c := range answers {
		count[c.Status]++
	}
	if count[otp.CheckDenied] != 4 || count[otp.CheckLocked] != n-4 {
		t.Errorf("answers %v, want 4 denied and %d locked", count, n-4)
	}
	if c := b.check(map[string]any{"id": "v1", "code": code}); c.Status != otp.CheckLocked {
		t.Errorf("the right code after the race: %+v", c)
	}
	for _, h := range []*harness{a, b} {
		body := scrape(t, h.d.MetricsAddr())
		if !strings.Contains(body, `simgate_verify_checks_total{result="locked"}`) || strings.Contains(body, `simgate_verify_checks_total{result="locked"} 0`) {
			t.Errorf("daemon %s answered no check: the race was not between two daemons", h.cfg.Node)
		}
	}
}

// queuedJobs follows what crosses NATS on otp.send from now on, as the
// daemon sees it.
func queuedJobs(t *testing.T, cfg config.Config, h *harness) *nats.Subscription {
	t.Helper()
	dnc, err := connectAs(cfg, h.d, natsauth.RoleDaemon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnc.Close)
	queued, err := dnc.SubscribeSync(otp.SubjectSend)
	if err != nil {
		t.Fatal(err)
	}
	if err := dnc.Flush(); err != nil {
		t.Fatal(err)
	}
	return queued
}

// TestManagedCodeAttacks: what a publisher must not do with managed codes.
func TestManagedCodeAttacks(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	// The queued job as it crosses NATS, to replay its sealed code.
	queued := queuedJobs(t, cfg, h)
	h.verify(map[string]any{"id": "v1", "to": "+4526227921"})
	code := codeOf(t, s)

	t.Run("a job with a sealed code of its making is not sent", func(t *testing.T) {
		h.publish(map[string]any{"id": "forged", "to": "+4526227921", "sealed": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
		if ev := h.waitEvent("forged"); ev.Type != otp.StateRejected || ev.Reason != otp.ReasonInvalidCode {
			t.Errorf("forged sealed job: %+v", ev)
		}
		if r := h.request(map[string]any{"id": "forged2", "to": "+4526227921", "sealed": "x"}); r.Status != otp.ReplyRejected || r.Field != "sealed" {
			t.Errorf("otp.request with sealed: %+v", r)
		}
	})
	t.Run("a real sealed code opens for its own job only", func(t *testing.T) {
		m, err := queued.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var job otp.Job
		if err := json.Unmarshal(m.Data, &job); err != nil || job.Sealed == "" {
			t.Fatalf("queued job %v: no sealed code", err)
		}
		// Under another id to another number, and to the same number.
		for id, to := range map[string]string{"replay": "+4526227922", "replay2": "+4526227921"} {
			h.publish(map[string]any{"id": id, "to": to, "sealed": job.Sealed})
			if ev := h.waitEvent(id); ev.Type != otp.StateRejected || ev.Reason != otp.ReasonInvalidCode {
				t.Errorf("%s: %+v, want rejected invalid_code", id, ev)
			}
		}
		select {
		case msg := <-s.msgs:
			t.Errorf("a replayed sealed code was sent (%d characters)", len(msg.Text))
		default:
		}
		// Refusals are logged together, not a line each: a publisher
		// cannot fill the log with forged jobs.
		if strings.Contains(h.logs.String(), "id=replay") {
			t.Error("a log line of its own for a forged sealed job")
		}
	})
	t.Run("the secrets bucket is out of reach", func(t *testing.T) {
		for _, subject := range []string{"$KV." + queue.BucketSecrets + ".>", "$KV.>", "$JS.API.DIRECT.GET.KV_" + queue.BucketSecrets + ".>"} {
			if err := subscribeRefused(t, h, subject); err != nil {
				t.Error(err)
			}
		}
		msg, err := h.nc.Request("$JS.API.DIRECT.GET.KV_"+queue.BucketSecrets+".$KV."+queue.BucketSecrets+".v1", nil, 2*time.Second)
		if err == nil && len(msg.Data) > 0 {
			t.Errorf("direct get of the secrets answered %d bytes", len(msg.Data))
		}
	})
	t.Run("a check names nothing of other verifications", func(t *testing.T) {
		c := h.check(map[string]any{"id": "nope", "code": code})
		if c.Status != otp.CheckNotFound || c.ID != "" || c.AttemptsLeft != 0 || c.Detail != "" {
			t.Errorf("check of an unknown id with another's code: %+v", c)
		}
	})
	// The allowed path still works.
	if c := h.check(map[string]any{"id": "v1", "code": code}); c.Status != otp.CheckApproved {
		t.Errorf("the right code: %+v", c)
	}
	if n := len(s.Submissions()); n != 1 {
		t.Errorf("%d SMS sent, want 1", n)
	}
}

// subscribeRefused subscribes to subject as the publisher and returns an
// error unless the server refuses it.
func subscribeRefused(t testing.TB, h *harness, subject string) error {
	t.Helper()
	refused := make(chan error, 1)
	nc, err := connectAs(h.cfg, h.d, natsauth.RolePublisher)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case refused <- err:
			default:
			}
		}
	})
	if _, err := nc.SubscribeSync(subject); err != nil {
		return nil
	}
	nc.Flush()
	select {
	case <-refused:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("subscribe %s as a publisher: not refused", subject)
	}
}

// TestManagedCodeLeaksNowhere: a whole verification's run, with resend,
// wrong codes and approval, and not one log line, event, stored job,
// bucket value, metric or answer holds its code.
func TestManagedCodeLeaksNowhere(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	queued := queuedJobs(t, cfg, h)
	var answers []string
	keep := func(v any) { b, _ := json.Marshal(v); answers = append(answers, string(b)) }
	to := "+4526227921"
	keep(h.verify(map[string]any{"id": "v1", "to": to, "digits": 10}))
	code := codeOf(t, s)
	keep(h.verify(map[string]any{"id": "v2", "to": to, "digits": 10}))
	if again := codeOf(t, s); again != code {
		t.Fatal("the resend carried another code")
	}
	h.waitFinal("v2")
	for i := range 2 {
		keep(h.check(map[string]any{"id": "v1", "code": otherCode(code, i)}))
	}
	keep(h.check(map[string]any{"to": to, "code": code}))
	h.waitType("v1", otp.StateApproved)
	metrics := scrape(t, h.d.MetricsAddr())
	js := h.daemonJS()
	ctx := context.Background()
	var jobs []string
	for range 2 {
		m, err := queued.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("queued jobs: %v", err)
		}
		jobs = append(jobs, string(m.Data))
	}
	var stored []string
	for _, stream := range []string{otp.StreamJobs, otp.StreamEvents} {
		stored = append(stored, streamMessages(t, js, stream)...)
	}
	for name := range js.KeyValueStoreNames(ctx).Name() {
		kv := mustKV(t, js, name)
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			if e, err := kv.Get(ctx, k); err == nil {
				stored = append(stored, name+"/"+k+"="+string(e.Value()))
			}
		}
	}
	h.stop() // the last log lines too
	for what, text := range map[string]string{
		"logs": h.logs.String(), "metrics": metrics, "stored": strings.Join(stored, "\n"), "answers": strings.Join(answers, "\n"),
		"queued jobs": strings.Join(jobs, "\n"),
	} {
		if strings.Contains(text, code) {
			t.Errorf("the code is in the %s", what)
		}
	}
	if len(stored) < 10 || !strings.Contains(jobs[0], `"sealed":`) || !strings.Contains(h.logs.String(), "verification ended") {
		t.Errorf("read %d stored values, jobs %q: the search saw too little", len(stored), jobs)
	}
}

// streamMessages returns every message stored in stream, subject and data.
func streamMessages(t testing.TB, js jetstream.JetStream, stream string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted (an acknowledged job)
		}
		out = append(out, m.Subject+" "+string(m.Data))
	}
	return out
}
