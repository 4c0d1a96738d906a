package daemon_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

func TestRateLimitHoldsAcrossTwoDaemons(t *testing.T) {
	s1, s2 := startSim(t, "a1", 0), startSim(t, "b1", 0)
	cfgA := testConfig(t.TempDir(), s1)
	cfgA.Node = "a"
	cfgA.Policy.Number = []config.Window{{Limit: 3, Period: time.Hour}}
	cfgA.OTP.AllowText = true
	a := start(t, cfgA)
	cfgB := testConfig(t.TempDir(), s2)
	cfgB.Node = "b"
	cfgB = onServerOf(cfgB, cfgA, a.d)
	cfgB.Metrics.Listen = ""
	cfgB.Policy.Number = cfgA.Policy.Number
	cfgB.OTP.AllowText = true
	copyKeyFile(t, cfgA.StateDir, cfgB)
	b := start(t, cfgB)

	// 20 texts for one number, all at once, answered by either daemon.
	// (Texts, because a newer code would supersede an older one still
	// queued: fewer SMS, not more.)
	const n = 20
	replies := make([]otp.Reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := a
			if i%2 == 1 {
				h = b
			}
			replies[i] = h.request(map[string]any{"id": fmt.Sprint("c", i), "to": "+4526227921", "text": fmt.Sprint("message ", i)})
		}()
	}
	wg.Wait()
	var accepted []string
	nodes := map[string]bool{}
	for i, r := range replies {
		switch {
		case r.Status == otp.ReplyAccepted && !r.Duplicate:
			accepted = append(accepted, r.ID)
		case r.Status == otp.ReplyRejected && r.Reason == "rate_limited" && r.Scope == "number" && r.RetryAfter > 0:
		default:
			t.Errorf("reply %d: %+v", i, r)
		}
	}
	if len(accepted) != 3 {
		t.Fatalf("%d jobs accepted, want 3", len(accepted))
	}
	for _, id := range accepted {
		evs := a.waitFinal(id)
		last := evs[len(evs)-1]
		if last.Type != otp.StateSent {
			t.Errorf("job %s: %s", id, types(evs))
		}
		nodes[last.Node] = true
	}
	if got := len(s1.Submissions()) + len(s2.Submissions()); got != 3 {
		t.Errorf("%d SMS sent, want 3", got)
	}
	t.Logf("sent by %v", nodes)
}

func TestDuplicatesAreNotSentTwice(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(dir, s))

	// A double submit: the same job, id included, twice.
	r1 := h.request(map[string]any{"id": "first", "to": "+4526227921", "code": "445566"})
	r2 := h.request(map[string]any{"id": "first", "to": "+45 2622 7921", "code": "445566"})
	if r1.Status != otp.ReplyAccepted || r1.Duplicate {
		t.Fatalf("first reply %+v", r1)
	}
	if !r2.Duplicate || r2.DuplicateOf != "" || r2.Follow() != "first" {
		t.Fatalf("second reply %+v, want a duplicate of itself", r2)
	}
	h.waitFinal("first")
	if ev := h.waitEvent("first"); ev.Type != otp.StateDelivered {
		t.Fatalf("first: %+v, want delivered", ev)
	}
	h.stop()

	// After a restart on the same state: the id again, through the
	// request path and re-published on the queue under another message id.
	h = start(t, testConfig(dir, s))
	r3 := h.request(map[string]any{"id": "first", "to": "+4526227921", "code": "445566"})
	if !r3.Duplicate || r3.State != "delivered" {
		t.Errorf("after restart: %+v, want duplicate, state delivered", r3)
	}
	msg := nats.NewMsg("otp.send")
	msg.Data = []byte(`{"id":"first","to":"+4526227921","code":"445566"}`)
	msg.Header.Set(nats.MsgIdHdr, "another-message-id")
	if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	// A later job on the same single modem proves the re-published one was
	// handled before it.
	h.publish(map[string]any{"id": "sentinel", "to": "+4540404040", "code": "778899"})
	if got := types(h.waitFinal("sentinel")); got != "accepted,sent" {
		t.Fatalf("sentinel: %s", got)
	}
	n := 0
	for _, sub := range s.Submissions() {
		if strings.Contains(sub.Text, "445566") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("code sent %d times, want once", n)
	}
	if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_duplicates_suppressed_total{kind="id"} 2`) {
		t.Error("id duplicates after restart not counted")
	}
}

func TestNewerCodeSupersedesAQueuedOne(t *testing.T) {
	sending := make(chan struct{}, 4)
	s := &sim{msgs: make(chan modemsim.Message, 16)}
	var err error
	s.Modem, err = modemsim.Start(modemsim.Config{
		Name: "m1", SendDelay: time.Hour,
		OnSending: func() { sending <- struct{}{} },
		OnMessage: func(m modemsim.Message) { s.msgs <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := start(t, testConfig(t.TempDir(), s))

	h.publish(map[string]any{"id": "busy", "to": "+4540404040", "code": "111111"})
	<-sending // the only modem is busy
	// A user asks for a code, then for another before the first went out.
	if r := h.request(map[string]any{"id": "old", "to": "+4526227921", "code": "222222"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("old: %+v", r)
	}
	if r := h.request(map[string]any{"id": "new", "to": "+4526227921", "code": "333333"}); r.Status != otp.ReplyAccepted || !r.Resend {
		t.Fatalf("new: %+v, want accepted resend", r)
	}
	s.SetSendDelay(0)
	evs := h.waitFinal("old")
	if last := evs[len(evs)-1]; last.Type != otp.StateSuperseded || last.SupersededBy != "new" {
		t.Fatalf("events of old: %s (%+v)", types(evs), last)
	}
	if got := types(h.waitFinal("new")); got != "accepted,sent" {
		t.Errorf("events of new: %s", got)
	}
	for _, sub := range s.Submissions() {
		if strings.Contains(sub.Text, "222222") {
			t.Error("the superseded code was sent")
		}
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{`simgate_jobs_total{outcome="superseded"} 1`, `simgate_resends_total{reason="user"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRequestRejectionsCarryRetryAfter(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.Policy.Cooldown = time.Minute
	cfg.OTP.Numbers.BlockedRegions = []string{"SE"}
	h := start(t, cfg)
	if r := h.request(map[string]any{"id": "x1", "to": "+4526227921", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("first: %+v", r)
	}
	r := h.request(map[string]any{"id": "x2", "to": "+4526227921", "code": "567890"})
	if r.Status != otp.ReplyRejected || r.Reason != "rate_limited" || r.Scope != "number" || r.RetryAfter < 59 || r.RetryAfter > 60 {
		t.Errorf("second: %+v, want rate_limited number retry_after 60", r)
	}
	r = h.request(map[string]any{"id": "x3", "to": "+46701234567", "code": "123456"})
	if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonCountryBlocked {
		t.Errorf("blocked region: %+v", r)
	}
	r = h.request(map[string]any{"id": "x4", "to": "+44 909 876 5432", "code": "123456"})
	if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonNumberTypeBlocked {
		t.Errorf("premium rate number: %+v", r)
	}
	// The refusals are their replies alone: no event stored, and no log
	// line each (one line per reason at most every 10 s).
	h.publish(map[string]any{"id": "after", "to": "+4526227931", "code": "123456"})
	h.waitFinal("after")
	h.noStoredEvents("x2", "x3", "x4")
	if strings.Contains(h.logs.String(), "x2") {
		t.Error("a refusal was logged with its id")
	}
}

func TestOriginBoundCode(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	h.publish(map[string]any{"id": "web", "to": "+4526227921", "code": "123456", "origin": "example.com", "app_hash": "FA+9qCX9VSu"})
	if got := types(h.waitFinal("web")); got != "accepted,sent" {
		t.Fatalf("events %s", got)
	}
	m := waitMessage(t, s)
	lines := strings.Split(m.Text, "\n")
	if last := lines[len(lines)-1]; last != "@example.com #123456" {
		t.Errorf("last line %q, want the origin-bound code", last)
	}
	if !strings.Contains(m.Text, "\nFA+9qCX9VSu\n") {
		t.Errorf("no app hash line in %q", m.Text)
	}
}
