package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

// receivedStream reads the messages published on sms.received.>, in order,
// as the daemon.
type receivedStream struct {
	t    testing.TB
	cons jetstream.Consumer
}

func readReceived(t testing.TB, h *harness) *receivedStream {
	t.Helper()
	stream, err := h.daemonJS().Stream(context.Background(), otp.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &receivedStream{t: t, cons: cons}
}

// next returns the next received message and its subject, failing the
// test after 20 s.
func (r *receivedStream) next() (otp.Received, string) {
	r.t.Helper()
	m, err := r.cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		r.t.Fatalf("no received message: %v", err)
	}
	var rec otp.Received
	if err := json.Unmarshal(m.Data(), &rec); err != nil {
		r.t.Fatal(err)
	}
	return rec, m.Subject()
}

// none fails the test if another message is published within a second.
func (r *receivedStream) none() {
	r.t.Helper()
	if m, err := r.cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
		r.t.Errorf("published again: %s", m.Data())
	}
}

// waitSIMEmpty waits up to 5 s for the simulated SIM to hold no message.
func waitSIMEmpty(t testing.TB, s *sim) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stored("SM") != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left on the SIM", s.Stored("SM"))
		}
	}
}

// TestReceivedMessage: a two-part UCS-2 message the modem receives arrives
// once on sms.received.<modem>, its sender masked, and is gone from the
// modem's storage; a message stored before the daemon started comes too.
func TestReceivedMessage(t *testing.T) {
	s := startSim(t, "m1", 0)
	if _, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	h := start(t, testConfig(t.TempDir(), s))
	in := readReceived(t, h)
	if r, subject := in.next(); r.Text != "STOP" || subject != "sms.received.m1" || r.From != "+45******21" || r.Parts != 1 {
		t.Errorf("stored before start: %+v on %s", r, subject)
	}
	long := strings.Repeat("Ваш баланс: 12,34 EUR. ", 4)
	if _, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: long, UCS2: true}); err != nil {
		t.Fatal(err)
	}
	r, _ := in.next()
	if r.Text != long || r.Parts != 2 || r.Encoding != "ucs2" || r.Missing != 0 || r.Sent.IsZero() || r.Modem != "m1" {
		t.Errorf("two parts: %+v", r)
	}
	// A 16-bit reference, GSM 7-bit, three parts.
	longer := strings.Repeat("Your subscription renews on 01.02.2027. ", 9)
	if _, err := s.Receive(modemsim.Incoming{From: "Telco", Text: longer, Ref16: true}); err != nil {
		t.Fatal(err)
	}
	if r, _ := in.next(); r.Text != longer || r.Parts != 3 || r.Encoding != "gsm7" || r.From != "Telco" {
		t.Errorf("16-bit reference: %+v", r)
	}
	in.none()
	// The first parts of a long message stay on the SIM until it is
	// whole and published; the next health check's sweep deletes them.
	waitSIMEmpty(t, s)
	if strings.Contains(h.logs.String(), "STOP") || strings.Contains(h.logs.String(), "12,34") {
		t.Error("a received text is in the log")
	}
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sms_received_total{modem="m1"} 3`,
		`simgate_modem_storage_used{memory="SM",modem="m1"} 0`, `simgate_modem_storage_size{memory="SM",modem="m1"} 30`)
}

// TestOptOut: a number that replies STOP gets no more codes (opted_out, on
// every subject; the list is in NATS, optout's tests hold it across
// daemons); START undoes it; a STOP from another number changes nothing
// for this one.
func TestOptOut(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	to := "+4526227921"
	if r := h.request(map[string]any{"id": "o1", "to": to, "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("before STOP: %+v", r)
	}
	waitMessage(t, s)
	s.Receive(modemsim.Incoming{From: "+4526227922", Text: "stop"}) // another number
	s.Receive(modemsim.Incoming{From: to, Text: " Stop. "})
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sms_received_total{modem="m1"} 2`)
	if r := h.request(map[string]any{"id": "o2", "to": to, "code": "123456"}); r.Status != otp.ReplyRejected || r.Reason != otp.ReasonOptedOut {
		t.Errorf("after STOP: %+v, want opted_out", r)
	}
	if r := h.request(map[string]any{"id": "o2b", "to": "+4526227922", "code": "123456"}); r.Status != otp.ReplyRejected || r.Reason != otp.ReasonOptedOut {
		t.Errorf("after a lower-case stop: %+v, want opted_out", r)
	}
	var v otp.Reply
	h.call(otp.SubjectVerify, map[string]any{"id": "o3", "to": to}, &v)
	if v.Reason != otp.ReasonOptedOut {
		t.Errorf("otp.verify after STOP: %+v", v)
	}
	h.publish(map[string]any{"id": "o4", "to": to, "code": "123456"})
	if ev := h.waitEvent("o4"); ev.Type != otp.StateRejected || ev.Reason != otp.ReasonOptedOut {
		t.Errorf("otp.send after STOP: %+v", ev)
	}
	if r := h.request(map[string]any{"id": "o5", "to": "+4526227923", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Errorf("another number: %+v", r)
	}
	s.Receive(modemsim.Incoming{From: to, Text: "START"})
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sms_received_total{modem="m1"} 3`)
	if r := h.request(map[string]any{"id": "o6", "to": to, "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Errorf("after START: %+v", r)
	}
}

// TestSIMBalance: a modem with a balance query gets its SIM's balance from
// the network's USSD answer into simgate_sim_balance.
func TestSIMBalance(t *testing.T) {
	// A Huawei modem (packed) asks and answers in hexadecimal: read as
	// it is, its first number would not be the balance.
	for _, packed := range []bool{false, true} {
		t.Run(fmt.Sprintf("packed=%t", packed), func(t *testing.T) {
			s := startSimWith(t, modemsim.Config{Name: "m1", USSDPacked: packed,
				USSD: map[string]string{"*100#": "Your balance is 12.34 EUR. Valid until 01.02.2027"}})
			cfg := testConfig(t.TempDir(), s)
			cfg.Modems[0].Balance = config.Balance{USSD: "*100#"}
			h := start(t, cfg)
			waitMetrics(t, h.d.MetricsAddr(), `simgate_sim_balance{modem="m1"} 12.34`)
		})
	}
}

// TestSIMBalanceAfterFailure: a balance query that fails (the network does
// not know the code yet) is asked again at the next health checks, not
// only after balance.interval, and the balance comes once it answers.
func TestSIMBalanceAfterFailure(t *testing.T) {
	s := startSimWith(t, modemsim.Config{Name: "m1"})
	cfg := testConfig(t.TempDir(), s)
	cfg.Modems[0].Balance = config.Balance{USSD: "*100#", Interval: time.Hour}
	h := start(t, cfg)
	for deadline := time.Now().Add(10 * time.Second); len(s.USSDRequests()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no balance query in 10 s")
		}
	}
	s.SetUSSD("*100#", "Your balance is 7.50 EUR")
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sim_balance{modem="m1"} 7.5`)
	if n := len(s.USSDRequests()); n < 2 {
		t.Errorf("%d balance queries, want the failed one and another", n)
	}
}

// TestStatusAcrossDaemons: every daemon of a cluster answers simgate.status
// (asked with the publisher's credentials), with its own modems; a modem
// that failed a send shows it.
func TestStatusAcrossDaemons(t *testing.T) {
	s1, s2 := startSim(t, "a1", 0), startSim(t, "b1", 0)
	cfgA := testConfig(t.TempDir(), s1)
	cfgA.Node = "a"
	cfgA.Modems[0].PerDay = 500
	a := start(t, cfgA)
	cfgB := testConfig(t.TempDir(), s2)
	cfgB.Node = "b"
	cfgB = onServerOf(cfgB, cfgA, a.d)
	copyKeyFile(t, cfgA.StateDir, cfgB)
	start(t, cfgB)

	s1.FailNextSends(42) // whichever daemon takes the job
	s2.FailNextSends(42)
	a.request(map[string]any{"id": "st1", "to": "+4526227921", "code": "123456"})
	a.waitFinal("st1")
	c, err := client.New(a.nc)
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Status(t.Context(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Node != "a" || all[1].Node != "b" {
		t.Fatalf("answers: %+v", all)
	}
	for i, name := range []string{"a1", "b1"} {
		if ms := all[i].Modems; len(ms) != 1 || ms[0].Name != name || ms[0].SIM != "READY" || ms[0].SignalDBm == nil {
			t.Errorf("daemon %s: %+v", all[i].Node, ms)
		}
	}
	sent := all[0].Modems[0].SentToday + all[1].Modems[0].SentToday
	if sent != 1 || all[0].Modems[0].PerDay != 500 {
		t.Errorf("sent today %d (want 1 over both), per day %d", sent, all[0].Modems[0].PerDay)
	}
	failed := 0
	for _, st := range all {
		switch st.Modems[0].LastError {
		case "+CMS ERROR: 42":
			failed++
		case "":
		default:
			t.Errorf("last error of %s: %q", st.Modems[0].Name, st.Modems[0].LastError)
		}
	}
	if failed == 0 {
		t.Error("the failed send shows on no modem")
	}
}

// TestStorageNeverFillsEndToEnd: 200 messages come in, one after another,
// through a modem with 30 slots that refuses to send when they are full:
// each is published and deleted, none is lost, and codes still go out.
func TestStorageNeverFillsEndToEnd(t *testing.T) {
	s := startSimWith(t, modemsim.Config{Name: "m1", FullStorageRefuses: true})
	h := start(t, testConfig(t.TempDir(), s))
	waitMetrics(t, h.d.MetricsAddr(), `simgate_modem_ready{modem="m1"} 1`)
	in := readReceived(t, h)
	most := 0
	for i := range 200 {
		ds, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: fmt.Sprint("reply ", i)})
		if err != nil || ds[0].Route != modemsim.RouteCMTI {
			t.Fatalf("message %d: %+v %v", i, ds, err)
		}
		most = max(most, s.Stored("SM"))
		if r, _ := in.next(); r.Text != fmt.Sprint("reply ", i) {
			t.Fatalf("message %d published as %q", i, r.Text)
		}
	}
	if most > 2 {
		t.Errorf("up to %d messages stored at once", most)
	}
	if r := h.request(map[string]any{"id": "after", "to": "+4526227922", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("a code after 200 replies: %+v", r)
	}
	if evs := h.waitFinal("after"); types(evs) != "accepted,sent" {
		t.Errorf("a code after 200 replies: %s", types(evs))
	}
}

// TestLongMessageSurvivesARestart: the first part of a long message stays
// on the SIM while the second has not come, across a restart of the
// daemon; when the second comes, the message is published once, whole,
// and both parts leave the SIM.
func TestLongMessageSurvivesARestart(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	waitMetrics(t, h.d.MetricsAddr(), `simgate_modem_ready{modem="m1"} 1`)
	long := strings.Repeat("Your new tariff starts on 01.02.2027. ", 6)
	if ds, err := s.Receive(modemsim.Incoming{From: "Telco", Text: long, Only: []int{1}}); err != nil || len(ds) != 1 {
		t.Fatalf("first part: %+v %v", ds, err)
	}
	// A sweep passes it by (a health check every 100 ms): still there.
	waitMetrics(t, h.d.MetricsAddr(), `simgate_modem_storage_used{memory="SM",modem="m1"} 1`)
	h.stop()

	h = start(t, cfg)
	waitMetrics(t, h.d.MetricsAddr(), `simgate_modem_ready{modem="m1"} 1`)
	if n := s.Stored("SM"); n != 1 {
		t.Fatalf("after the restart: %d stored, want the first part", n)
	}
	if _, err := s.Receive(modemsim.Incoming{From: "Telco", Text: long, Only: []int{2}}); err != nil {
		t.Fatal(err)
	}
	in := readReceived(t, h)
	if r, _ := in.next(); r.Text != long || r.Parts != 2 || r.Missing != 0 {
		t.Errorf("published %+v", r)
	}
	in.none()
	waitSIMEmpty(t, s)
}

// TestStatusFloodKeepsRequestsAnswered: a publisher flooding
// simgate.status (which every daemon answers) does not keep otp.request
// from answering: status answers have slots of their own and are shed
// when those are taken.
func TestStatusFloodKeepsRequestsAnswered(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	inbox := h.nc.NewRespInbox()
	answers, err := h.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	answers.SetPendingLimits(-1, -1)
	const flood = 2000
	for range flood {
		if err := h.nc.PublishRequest(otp.SubjectStatus, inbox, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	if r := h.request(map[string]any{"id": "during", "to": "+4526227921", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("otp.request during a status flood: %+v", r)
	}
	t.Logf("answered in %s during the flood", time.Since(began).Round(time.Millisecond))
	// A status request answered after the flood's: the daemon takes them
	// in order, so the flood's answers are all in by then.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := h.nc.Request(otp.SubjectStatus, []byte("{}"), time.Second); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no status answer after the flood: %v", err)
		}
	}
	n, _, _ := answers.Pending()
	t.Logf("%d of %d flooded status requests answered", n, flood)
	if n > flood/2 {
		t.Errorf("%d of %d status requests answered: not shed", n, flood)
	}
}

// TestMissedIndicationIsSwept: a message stored without its +CMTI (the
// line lost it) is read by the next health check's sweep.
func TestMissedIndicationIsSwept(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	waitMetrics(t, h.d.MetricsAddr(), `simgate_modem_ready{modem="m1"} 1`)
	if ds, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: "unannounced", Unannounced: true}); err != nil || ds[0].Route != modemsim.RouteStored {
		t.Fatalf("receive: %+v %v", ds, err)
	}
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sms_received_total{modem="m1"} 1`)
	waitSIMEmpty(t, s)
}
