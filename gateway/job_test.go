package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/simgate/simgate/delivery"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
	"github.com/simgate/simgate/queue"
)

// fakeModem stands in for a modem: it records what it was asked to send
// and answers with err.
type fakeModem struct {
	err    error
	number string
	text   string
	calls  int
}

func (f *fakeModem) Name() string { return "fake" }

func (f *fakeModem) Send(_ context.Context, number, text string, opts ...modem.SendOption) (modem.Result, error) {
	f.calls++
	f.number, f.text = number, text
	if f.err != nil {
		return modem.Result{}, f.err
	}
	return modem.Result{Refs: []int{7}, Duration: time.Millisecond}, nil
}

// jobHarness is a gateway on a real in-process NATS server with the job
// streams, and no daemon and no modem: the worker's steps are driven by
// hand.
type jobHarness struct {
	g      *Gateway
	js     jetstream.JetStream
	jobs   *queue.Puller
	events chan otp.Event
}

func newJobHarness(t *testing.T) *jobHarness {
	t.Helper()
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = queue.Setup(t.Context(), js, queue.StreamConfig{DedupWindow: time.Hour, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := otp.NewRenderer("simgate", "en", nil)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Key: []byte("0123456789abcdef")}, policy.NewMemoryStore(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := &jobHarness{js: js, jobs: queue.NewPuller(nc), events: make(chan otp.Event, 16)}
	sub, err := nc.Subscribe(otp.SubjectEvents+".>", func(m *nats.Msg) {
		var ev otp.Event
		if err := json.Unmarshal(m.Data, &ev); err == nil {
			h.events <- ev
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	h.g = New(Options{NC: nc, JS: js, Jobs: h.jobs, Renderer: renderer, Policy: pol,
		Limits:  otp.Limits{DefaultTTL: 10 * time.Minute, MaxTTL: 10 * time.Minute},
		Metrics: metrics.New(prometheus.NewRegistry(), "test", []string{"fake"}), MaxAttempts: 2})
	t.Cleanup(func() { h.g.Close(context.Background()) })
	return h
}

// take queues job and fetches it as a worker would.
func (h *jobHarness) take(t *testing.T, job string) jetstream.Msg {
	t.Helper()
	if _, err := h.js.Publish(t.Context(), otp.SubjectSend, []byte(job)); err != nil {
		t.Fatal(err)
	}
	msg, err := h.jobs.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// admit queues job and takes it as a worker would, up to its admission
// (its accepted event told): the state a daemon is in just before it
// sends.
func (h *jobHarness) admit(t *testing.T, job string) (jetstream.Msg, task) {
	t.Helper()
	msg := h.take(t, job)
	tk, ok := h.g.check(t.Context(), "fake", msg)
	if !ok {
		t.Fatal("check")
	}
	if tk, ok = h.g.admitQueued(t.Context(), tk); !ok {
		t.Fatal("admit")
	}
	return msg, tk
}

// redeliver has the server hand msg out again, as after its daemon died,
// and a worker process it; it returns how often the modem was asked to
// send.
func (h *jobHarness) redeliver(t *testing.T, msg jetstream.Msg) int {
	t.Helper()
	if err := msg.Nak(); err != nil {
		t.Fatal(err)
	}
	again, err := h.jobs.Next(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeModem{}
	h.g.process(t.Context(), f, again, &sendCaps{})
	return f.calls
}

// until returns the first event of type want, failing on a final other one.
func (h *jobHarness) until(t *testing.T, want otp.State) otp.Event {
	t.Helper()
	for {
		select {
		case ev := <-h.events:
			if ev.Type == want {
				return ev
			}
			if ev.Type.Final() {
				t.Fatalf("event %s (%s), want %s", ev.Type, ev.Reason, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
}

func TestProcessWithoutDaemon(t *testing.T) {
	const job = `{"id":"j1","to":"+4526227921","code":"034812","ttl":"5m"}`
	for _, tc := range []struct {
		name      string
		err       error
		want      otp.State
		reason    otp.Reason
		broken    bool
		leftInJob bool // still in the work queue (to be retried)
	}{
		{name: "sent", want: otp.StateSent},
		{name: "permanent", err: &modem.SendError{Class: modem.Permanent, Code: "21"}, want: otp.StateFailed, reason: otp.ReasonModemRejected},
		{name: "retryable", err: &modem.SendError{Class: modem.Retryable, Code: "512"}, want: otp.StateRetrying, reason: "retryable", leftInJob: true},
		{name: "broken modem", err: &modem.SendError{Class: modem.Unknown, Broken: true, Err: errors.New("no answer")}, want: otp.StateRetrying, reason: "unknown_outcome", broken: true, leftInJob: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newJobHarness(t)
			f := &fakeModem{err: tc.err}
			msg := h.take(t, job)
			broken := h.g.process(t.Context(), f, msg, &sendCaps{})
			if broken != tc.broken {
				t.Errorf("broken = %v, want %v", broken, tc.broken)
			}
			if f.calls != 1 || f.number != "+4526227921" || !strings.Contains(f.text, "034812") {
				t.Errorf("modem asked %d times to send to %s", f.calls, otp.MaskRaw(f.number))
			}
			h.until(t, otp.StateAccepted)
			ev := h.until(t, tc.want)
			if ev.Reason != tc.reason || ev.Attempt != 1 || ev.To != "+45******21" {
				t.Errorf("event %+v, want reason %q attempt 1", ev, tc.reason)
			}
			h.g.Close(context.Background())
			s, err := h.js.Stream(t.Context(), otp.StreamJobs)
			if err != nil {
				t.Fatal(err)
			}
			// A term is not confirmed by the server: give it a moment to
			// take the job off the queue.
			var msgs uint64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				info, err := s.Info(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				msgs = info.State.Msgs
				if (msgs == 1) == tc.leftInJob || time.Now().After(deadline) {
					break
				}
			}
			if left := msgs == 1; left != tc.leftInJob {
				t.Errorf("%d jobs left in the queue, want left %v", msgs, tc.leftInJob)
			}
		})
	}
}

// TestProcessExpiredNeverSends: a job taken after its ttl never reaches the
// modem.
func TestProcessExpiredNeverSends(t *testing.T) {
	h := newJobHarness(t)
	msg := h.take(t, `{"id":"old","to":"+4526227921","code":"034812","ttl":"1m"}`)
	h.g.now = func() time.Time { return time.Now().Add(2 * time.Minute) } // the ttl has passed
	f := &fakeModem{}
	h.g.process(t.Context(), f, msg, &sendCaps{})
	if f.calls != 0 {
		t.Errorf("expired job sent %d times", f.calls)
	}
	h.until(t, otp.StateExpired)
}

// TestPrepare: prepare, shared by otp.request and the worker, applies the
// job rules and counts the rendered message's SMS parts.
func TestPrepare(t *testing.T) {
	renderer, err := otp.NewRenderer("simgate", "en", map[string]map[string]string{
		"long": {"en": strings.Repeat("x", 320) + " {{.Code}}"}, // 3 parts
	})
	if err != nil {
		t.Fatal(err)
	}
	text := func(n int) string { return strings.Repeat("a", n) }
	defaults := otp.Limits{DefaultTTL: 5 * time.Minute, MaxTTL: 10 * time.Minute}
	withText := defaults
	withText.AllowText = true
	for _, tc := range []struct {
		name   string
		limits otp.Limits
		job    string
		parts  int
		reason otp.Reason
		field  string
	}{
		{name: "code", limits: defaults, job: `{"id":"a","to":"+4526227921","code":"034812"}`, parts: 1},
		{name: "short code", limits: defaults, job: `{"id":"a","to":"+4526227921","code":"03481"}`,
			reason: otp.ReasonInvalidCode, field: "code"},
		{name: "long template at the maximum", limits: defaults, job: `{"id":"a","to":"+4526227921","code":"034812","template":"long"}`, parts: 3},
		{name: "long template over a lower maximum", limits: otp.Limits{DefaultTTL: time.Minute, MaxParts: 2},
			job: `{"id":"a","to":"+4526227921","code":"034812","template":"long"}`, reason: otp.ReasonTooLong, field: "template"},
		{name: "text off", limits: defaults, job: `{"id":"a","to":"+4526227921","text":"hi"}`,
			reason: otp.ReasonTextDisabled, field: "text"},
		{name: "text on", limits: withText, job: `{"id":"a","to":"+4526227921","text":"` + text(161) + `"}`, parts: 2},
		{name: "text over the maximum", limits: withText, job: `{"id":"a","to":"+4526227921","text":"` + text(3*153+1) + `"}`,
			reason: otp.ReasonTooLong, field: "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{}
			g.SetLive(Live{Limits: tc.limits, Renderer: renderer})
			job, p, msg, err := g.prepare([]byte(tc.job))
			if job.ID != "a" {
				t.Errorf("job %+v", job)
			}
			if tc.reason != "" {
				re, ok := otp.AsReject(err)
				if !ok || re.Reason != tc.reason || re.Field != tc.field {
					t.Fatalf("prepare: %v; want %s (field %s)", err, tc.reason, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Parts != tc.parts {
				t.Errorf("Parts = %d, want %d", p.Parts, tc.parts)
			}
			if _, parts := otp.Segments(msg); parts != p.Parts {
				t.Errorf("message of %d parts, Parts = %d", parts, p.Parts)
			}
		})
	}
}

// storedEvents returns the types of the events of job id in OTP_EVENTS,
// in order.
func (h *jobHarness) storedEvents(t *testing.T, id string) []otp.State {
	t.Helper()
	c, err := h.js.OrderedConsumer(t.Context(), otp.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{otp.EventSubject(id)}})
	if err != nil {
		t.Fatal(err)
	}
	var types []otp.State
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			return types
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev otp.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
	}
}

// TestCrashBeforeAck: a daemon that dies after a job ended but before it
// acknowledged the job's message leaves the end in the job's record; the
// daemon that takes the redelivered message tells the final event (once,
// whether or not the dead one had told it) and sends nothing again.
func TestCrashBeforeAck(t *testing.T) {
	const job = `{"id":"c1","to":"+4526227921","code":"034812","ttl":"5m"}`
	for _, tc := range []struct {
		name string
		told bool // the dead daemon had told the event
	}{
		{name: "died before telling"},
		{name: "died after telling", told: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newJobHarness(t)
			ctx := t.Context()
			// The daemon that dies: admits, sends, records the end.
			msg, t1 := h.admit(t, job)
			ev := h.g.stamp(otp.Event{Type: otp.StateSent, ID: "c1", To: "+45******21", Modem: "dead", Refs: []int{3}, Parts: 1, Attempt: 1})
			if err := h.g.policy().Finish(ctx, t1.p, t1.seq, ev); err != nil {
				t.Fatal(err)
			}
			if tc.told {
				if err := h.g.tell(ctx, ev, eventID("c1", t1.seq, otp.StateSent, 0)); err != nil {
					t.Fatal(err)
				}
			}
			// No ack: the server hands the job out again.
			if n := h.redeliver(t, msg); n != 0 {
				t.Errorf("sent again %d times", n)
			}
			if got := fmt.Sprint(h.storedEvents(t, "c1")); got != "[accepted sent]" {
				t.Errorf("stored events %s, want [accepted sent]", got)
			}
			if _, err := h.jobs.Next(100 * time.Millisecond); !errors.Is(err, jetstream.ErrNoMessages) {
				t.Errorf("the job is still queued: %v", err)
			}
		})
	}
}

// TestAttemptsAreTheModems: deliveries that were no attempt (a job handed
// back, a daemon gone) do not count toward max_attempts; failed sends do.
func TestAttemptsAreTheModems(t *testing.T) {
	h := newJobHarness(t) // MaxAttempts 2
	h.g.opts.RetryDelay = time.Millisecond
	ctx := t.Context()
	if _, err := h.js.Publish(ctx, otp.SubjectSend, []byte(`{"id":"a1","to":"+4526227921","code":"034812","ttl":"5m"}`)); err != nil {
		t.Fatal(err)
	}
	f := &fakeModem{err: &modem.SendError{Class: modem.Retryable, Code: "512"}}
	for delivery := 1; ; delivery++ {
		if delivery > 10 {
			t.Fatalf("%d sends in %d deliveries; the job ended early", f.calls, delivery-1)
		}
		msg, err := h.jobs.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("delivery %d: %v", delivery, err)
		}
		if delivery <= 5 {
			msg.Nak() // handed back before any attempt
			continue
		}
		h.g.process(ctx, f, msg, &sendCaps{})
		if f.calls == 2 {
			break
		}
	}
	if got := fmt.Sprint(h.storedEvents(t, "a1")); got != "[accepted retrying failed]" {
		t.Errorf("events %s, want [accepted retrying failed]", got)
	}
	ev := h.until(t, otp.StateFailed)
	if ev.Reason != otp.ReasonAttemptsExhausted || ev.Attempt != 2 {
		t.Errorf("failed event %+v, want attempts_exhausted at attempt 2", ev)
	}
}

// TestVerdictAfterCrash: a daemon journalled a sent message, maybe
// recorded its end, and died before the sent event was stored; started
// again, it follows the message from the journal and its report comes
// before the job's redelivery. The sent event is stored before the
// verdict, the redelivered job tells nothing twice and sends nothing.
func TestVerdictAfterCrash(t *testing.T) {
	const job = `{"id":"v1","to":"+4526227921","code":"034812","ttl":"5m"}`
	for _, tc := range []struct {
		name     string
		recorded bool // the dead daemon recorded the job's end
	}{
		{name: "died after recording the end", recorded: true},
		{name: "died before recording the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newJobHarness(t)
			ctx := t.Context()
			msg, t1 := h.admit(t, job)
			m := delivery.Message{ID: "v1", Modem: "fake", To: "+4526227921", Masked: "+45******21", Seq: t1.seq,
				Refs: []int{7}, Accepted: time.Now(), Sent: time.Now(), Restored: true}
			if tc.recorded {
				ev := h.g.stamp(otp.Event{Type: otp.StateSent, ID: "v1", To: m.Masked, Modem: "fake", Refs: m.Refs, Parts: 1, Attempt: 1, Report: true})
				if err := h.g.policy().Finish(ctx, t1.p, t1.seq, ev); err != nil {
					t.Fatal(err)
				}
			}
			// Started again: the report of the journalled message comes.
			h.g.tellOutcome(delivery.Outcome{Message: m, State: otp.StateDelivered, TPStatus: 0, At: time.Now()})
			if n := h.redeliver(t, msg); n != 0 {
				t.Errorf("sent again %d times", n)
			}
			if got := fmt.Sprint(h.storedEvents(t, "v1")); got != "[accepted sent delivered]" {
				t.Errorf("stored events %s, want [accepted sent delivered]", got)
			}
		})
	}
}

// TestSecondHolderTellsNothing: two holders of one job message (a lost
// hand-off reply, an ack wait passed under a partition) both sent it; the
// one that finishes second tells nothing and follows no delivery.
func TestSecondHolderTellsNothing(t *testing.T) {
	h := newJobHarness(t)
	ctx := t.Context()
	_, t1 := h.admit(t, `{"id":"s2","to":"+4526227921","code":"034812","ttl":"5m"}`)
	res := modem.Result{Refs: []int{7}, Report: true}
	h.g.sent(ctx, sentJob{task: t1, modem: "fake", res: res, at: time.Now()})
	pending := h.g.tracker.Pending()
	res.Refs = []int{8}
	h.g.sent(ctx, sentJob{task: t1, modem: "other", res: res, at: time.Now()})
	if got := fmt.Sprint(h.storedEvents(t, "s2")); got != "[accepted sent]" {
		t.Errorf("stored events %s, want [accepted sent]", got)
	}
	if n := h.g.tracker.Pending(); n != pending {
		t.Errorf("%d messages followed after the second holder, want %d", n, pending)
	}
}

// TestExpiredInTheQueue: a job otp.request admitted and queued that
// expires before a worker takes it still tells accepted before expired; a
// job published on otp.send and never admitted tells expired alone.
func TestExpiredInTheQueue(t *testing.T) {
	h := newJobHarness(t)
	ctx := t.Context()
	// Admitted as otp.request does it: the policy, then the queue.
	body := `{"id":"req","to":"+4526227921","code":"034812","ttl":"1m"}`
	_, p, _, err := h.g.prepare([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.g.policy().Admit(ctx, p); err != nil {
		t.Fatal(err)
	}
	msg := h.take(t, body)
	h.g.now = func() time.Time { return time.Now().Add(2 * time.Minute) } // the ttl has passed
	h.g.process(ctx, &fakeModem{}, msg, &sendCaps{})
	if got := fmt.Sprint(h.storedEvents(t, "req")); got != "[accepted expired]" {
		t.Errorf("otp.request job: %s, want [accepted expired]", got)
	}
	h.g.process(ctx, &fakeModem{}, h.take(t, `{"id":"pub","to":"+4526227922","code":"034812","ttl":"1m"}`), &sendCaps{})
	if got := fmt.Sprint(h.storedEvents(t, "pub")); got != "[expired]" {
		t.Errorf("otp.send job: %s, want [expired]", got)
	}
}
