package daemon_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// startReportingSim starts a simulated modem whose network returns status
// reports as report decides.
func startReportingSim(t testing.TB, name string, cfg modemsim.Config) *sim {
	t.Helper()
	s := &sim{msgs: make(chan modemsim.Message, 1024)}
	cfg.Name = name
	cfg.OnMessage = func(m modemsim.Message) { s.msgs <- m }
	m, err := modemsim.Start(cfg)
	if err != nil {
		t.Fatalf("start simulated modem: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	s.Modem = m
	return s
}

// rawEvents collects the JSON of every event as published.
type rawEvents struct {
	mu   sync.Mutex
	msgs []string
}

func (h *harness) rawEvents(t testing.TB) *rawEvents {
	r := &rawEvents{}
	if _, err := h.nc.Subscribe(otp.SubjectEvents+".>", func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, string(m.Data))
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	h.nc.Flush()
	return r
}

func (r *rawEvents) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func TestDeliveryReportEndToEnd(t *testing.T) {
	s := startReportingSim(t, "m1", modemsim.Config{ReportDelay: 50 * time.Millisecond})
	h := start(t, testConfig(t.TempDir(), s))
	raw := h.rawEvents(t)

	h.publish(map[string]any{"id": "job-1", "to": "+45 26 22 79 21", "code": "034812"})
	evs := h.waitFinal("job-1")
	delivered := h.waitEvent("job-1")
	if got := types(append(evs, delivered)); got != "accepted,sent,delivered" {
		t.Fatalf("events %s, want accepted,sent,delivered", got)
	}
	if delivered.TPStatus == nil || *delivered.TPStatus != 0 || delivered.Modem != "m1" || delivered.To != "+45******21" ||
		delivered.Latency <= 0 || delivered.Discharge.IsZero() {
		t.Errorf("delivered event %+v", delivered)
	}

	// Every part asked for a report and carries a validity period of the
	// code's ttl (10 min; the format's 5 min steps).
	sub := s.Submissions()[0]
	if !sub.SRR {
		t.Error("no status report requested")
	}
	b, _ := pdumode.UnmarshalHexString(sub.PDU)
	tp, err := sms.Unmarshal(b.TPDU, sms.AsMO)
	if err != nil {
		t.Fatal(err)
	}
	if vp := tp.VP.Duration; vp < 5*time.Minute || vp > 10*time.Minute {
		t.Errorf("validity period %s, want 5..10 min", vp)
	}

	// Journalled before the job's ack, and forgotten once delivered.
	kv, err := h.daemonJS().KeyValue(t.Context(), queue.BucketDelivery)
	if err != nil {
		t.Fatal(err)
	}
	// (It leaves the journal after the verdict is stored: wait for it.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		keys, err := kv.Keys(t.Context())
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("delivery journal after the verdict: %v %v, want no keys", keys, err)
			break
		}
	}
	if st, err := kv.Status(t.Context()); err != nil || st.Values() == 0 {
		t.Errorf("delivery journal: %v entries written (%v), want the message journalled", st.Values(), err)
	}

	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{
		`simgate_deliveries_total{modem="m1",status="delivered"} 1`,
		`simgate_delivery_latency_seconds_count 1`,
		`simgate_delivery_reports_total{modem="m1",result="matched"} 1`,
		`simgate_delivery_reports_total{modem="m1",result="unmatched"} 0`,
		`simgate_delivery_pending 0`,
		`simgate_modem_status_reports{modem="m1"} 1`,
		`simgate_queue_pending_jobs 0`,
		`simgate_queue_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Neither the number nor the code anywhere: not in metrics, events or
	// logs, not even in the digits of a PDU.
	for what, text := range map[string]string{"metrics": body, "events": raw.String(), "logs": h.logs.String()} {
		for _, secret := range []string{"26227921", "034812", "5462229712", "verification code"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contain %q:\n%s", what, secret, text)
			}
		}
	}
	if !strings.Contains(h.logs.String(), `msg="sms delivered" id=job-1 to=+45******21`) {
		t.Errorf("no log line for the delivery:\n%s", h.logs.String())
	}
}

func TestDeliveryFailureExpiryAndSilence(t *testing.T) {
	status := map[string]modemsim.StatusReport{
		"+4526227901": {TPStatus: 0x41},
		"+4526227902": {TPStatus: 0x46},
		"+4526227903": {Drop: true},
	}
	s := startReportingSim(t, "m1", modemsim.Config{
		Report: func(sub modemsim.Submission) modemsim.StatusReport { return status[sub.To] },
	})
	cfg := testConfig(t.TempDir(), s)
	cfg.OTP.DeliveryTimeout = 300 * time.Millisecond
	h := start(t, cfg)

	for i, want := range []struct {
		typ    otp.State
		status int
	}{
		{otp.StateDeliveryFailed, 0x41},
		{otp.StateDeliveryExpired, 0x46},
		{otp.StateDeliveryUnknown, -1},
	} {
		id := fmt.Sprint("job-", i)
		h.publish(map[string]any{"id": id, "to": fmt.Sprint("+452622790", i+1), "code": fmt.Sprint(100000 + i)})
		h.waitFinal(id)
		ev := h.waitEvent(id)
		if ev.Type != want.typ {
			t.Fatalf("%s: event %s, want %s", id, ev.Type, want.typ)
		}
		switch {
		case want.status < 0 && ev.TPStatus != nil:
			t.Errorf("%s: status %d, want none", id, *ev.TPStatus)
		case want.status >= 0 && (ev.TPStatus == nil || *ev.TPStatus != want.status):
			t.Errorf("%s: status %v, want %#x", id, ev.TPStatus, want.status)
		}
		if ev.Latency != 0 {
			t.Errorf("%s: latency on an undelivered message", id)
		}
	}
	r := h.request(map[string]any{"id": "job-0", "to": "+4526227901", "code": "100000"})
	if !r.Duplicate || r.State != otp.StateDeliveryFailed {
		t.Errorf("duplicate of a failed delivery: %+v", r)
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{
		`simgate_deliveries_total{modem="m1",status="failed"} 1`,
		`simgate_deliveries_total{modem="m1",status="expired"} 1`,
		`simgate_deliveries_total{modem="m1",status="unknown"} 1`,
		`simgate_deliveries_total{modem="m1",status="delivered"} 0`,
		`simgate_delivery_latency_seconds_count 0`,
		`simgate_delivery_pending 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestStoredReports: a modem that only stores reports (+CDSI) has them
// read and deleted.
func TestStoredReports(t *testing.T) {
	s := startReportingSim(t, "m1", modemsim.Config{StoreReports: true})
	h := start(t, testConfig(t.TempDir(), s))
	for i := range 3 {
		id := fmt.Sprint("job-", i)
		h.publish(map[string]any{"id": id, "to": fmt.Sprint("+452622790", i), "code": fmt.Sprint(200000 + i)})
		h.waitFinal(id)
		if ev := h.waitEvent(id); ev.Type != otp.StateDelivered {
			t.Fatalf("%s: %+v", id, ev)
		}
	}
	for _, r := range s.Reports() {
		if r.Route != modemsim.RouteCDSI {
			t.Errorf("report routed %s, want cdsi", r.Route)
		}
	}
	if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_modem_status_reports{modem="m1"} 2`) {
		t.Error("report mode not stored")
	}
}

// TestReferenceWrap sends 300 messages through one modem, so that message
// references wrap, to 17 numbers; reports come in random order, and the
// first ones so late that their reference is reused while they wait. Each
// must reach its own job. (Two waiting messages to one number with one
// reference, told apart by the service centre's timestamp, need minutes
// between them: see the delivery package's tests.)
func TestReferenceWrap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var mu sync.Mutex
	submitted := 0
	s := startReportingSim(t, "m1", modemsim.Config{
		FirstMR: 200,
		Report: func(modemsim.Submission) modemsim.StatusReport {
			mu.Lock()
			defer mu.Unlock()
			submitted++
			if submitted <= 30 {
				// Still waiting when their reference comes round again.
				return modemsim.StatusReport{Delay: 4 * time.Second}
			}
			return modemsim.StatusReport{Delay: time.Duration(rng.IntN(200)) * time.Millisecond}
		},
	})
	h := start(t, testConfig(t.TempDir(), s))
	const n = 300
	for i := range n {
		h.publish(map[string]any{"id": fmt.Sprint("wrap-", i), "to": fmt.Sprintf("+45262279%02d", i%17), "code": fmt.Sprint(300000 + i)})
	}
	for i := range n {
		id := fmt.Sprint("wrap-", i)
		h.waitFinal(id)
		if ev := h.waitEvent(id); ev.Type != otp.StateDelivered {
			t.Fatalf("%s: %+v", id, ev)
		}
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{
		fmt.Sprintf(`simgate_deliveries_total{modem="m1",status="delivered"} %d`, n),
		`simgate_delivery_reports_total{modem="m1",result="unmatched"} 0`,
		fmt.Sprintf(`simgate_delivery_reports_total{modem="m1",result="matched"} %d`, n),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Reports that match nothing, and malformed ones, are counted and logged
// with the number masked; nothing else happens.
func TestUnmatchedAndMalformedReports(t *testing.T) {
	s := startReportingSim(t, "m1", modemsim.Config{})
	h := start(t, testConfig(t.TempDir(), s))
	// A job first: the modem is open and its reports are routed.
	h.publish(map[string]any{"id": "job-1", "to": "+4526227921", "code": "034812"})
	h.waitFinal("job-1")
	if ev := h.waitEvent("job-1"); ev.Type != otp.StateDelivered {
		t.Fatalf("job-1: %+v", ev)
	}
	// The same report again (a network repeating itself), then garbage.
	rep := s.Reports()[0]
	sca, _ := strconv.ParseUint(rep.PDU[:2], 16, 8) // octets of the service centre address
	s.Inject(fmt.Sprintf("+CDS: %d", len(rep.PDU)/2-1-int(sca)), rep.PDU)
	s.Inject("+CDS: 5", "00ZZ")
	want := []string{
		`simgate_delivery_reports_total{modem="m1",result="matched"} 1`,
		`simgate_delivery_reports_total{modem="m1",result="unmatched"} 1`,
		`simgate_delivery_reports_total{modem="m1",result="malformed"} 1`,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := scrape(t, h.d.MetricsAddr())
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `msg="status report matches no message" modem=m1`) || !strings.Contains(logs, "to=+45******21") ||
		!strings.Contains(logs, `msg="malformed status report" modem=m1`) {
		t.Errorf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "26227921") {
		t.Errorf("logs contain the number:\n%s", logs)
	}
}

// A long message is delivered when both parts are; a temporary error
// reported first is passed on once as delivery_pending.
func TestLongMessageAndPendingReport(t *testing.T) {
	s := startReportingSim(t, "m1", modemsim.Config{
		Report: func(sub modemsim.Submission) modemsim.StatusReport {
			// The second part's report comes first; the first part's
			// late enough for the test to slip a temporary error in.
			return modemsim.StatusReport{Delay: time.Duration(2-sub.Part) * 500 * time.Millisecond}
		},
	})
	cfg := testConfig(t.TempDir(), s)
	cfg.OTP.AllowText = true
	h := start(t, cfg)
	text := strings.Repeat("A long message. ", 12) // 192 characters: two parts
	h.publish(map[string]any{"id": "long", "to": "+4526227921", "text": text})
	evs := h.waitFinal("long")
	sent := evs[len(evs)-1]
	if sent.Type != otp.StateSent || sent.Parts != 2 || !sent.Report {
		t.Fatalf("sent %+v", sent)
	}
	// The network had trouble with part 1 for a moment.
	tp := &tpdu.TPDU{Direction: tpdu.MT, MR: byte(sent.Refs[0]), ST: 0x21}
	tp.FirstOctet = tpdu.FirstOctet(tpdu.MtCommand)
	tp.RA = tpdu.NewAddress(tpdu.FromNumber("+4526227921"))
	tp.SCTS = tpdu.Timestamp{Time: time.Now()}
	tp.DT = tp.SCTS
	b, err := tp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(fmt.Sprintf("+CDS: %d", len(b)), "00"+hex.EncodeToString(b))
	var got []string
	for {
		ev := h.waitEvent("long")
		got = append(got, string(ev.Type))
		if ev.Last() {
			if ev.Type != otp.StateDelivered || ev.Parts != 2 {
				t.Errorf("last event %+v", ev)
			}
			break
		}
		if ev.Type == otp.StateDeliveryPending && (ev.TPStatus == nil || *ev.TPStatus != 0x21) {
			t.Errorf("pending event %+v", ev)
		}
	}
	if strings.Join(got, ",") != "delivery_pending,delivered" {
		t.Errorf("events after sent: %v", got)
	}
}

// A daemon restarted while its message waits for a report follows it on:
// the report the modem stored meanwhile reaches the job.
func TestDeliveryTrackedAcrossRestart(t *testing.T) {
	routed := make(chan modemsim.SentReport, 4)
	s := startReportingSim(t, "m1", modemsim.Config{StoreReports: true, ReportDelay: 300 * time.Millisecond,
		OnReport: func(r modemsim.SentReport) { routed <- r }})
	dir := t.TempDir()
	h := start(t, testConfig(dir, s))
	h.publish(map[string]any{"id": "job-1", "to": "+4526227921", "code": "034812"})
	if evs := h.waitFinal("job-1"); evs[len(evs)-1].Type != otp.StateSent {
		t.Fatalf("events %s", types(evs))
	}
	h.stop()
	// The network reports while the daemon is away: the modem stores it.
	select {
	case r := <-routed:
		if r.Route != modemsim.RouteCDSI {
			t.Fatalf("report %+v, want stored", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report")
	}
	h = start(t, testConfig(dir, s))
	ev := h.waitEvent("job-1") // accepted and sent went to the first harness
	if ev.Type != otp.StateDelivered || ev.TPStatus == nil || *ev.TPStatus != 0 {
		t.Fatalf("after restart: %+v", ev)
	}
	if !strings.Contains(h.logs.String(), `msg="following sent messages from before the restart" messages=1`) {
		t.Errorf("logs:\n%s", h.logs.String())
	}
	if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_deliveries_total{modem="m1",status="delivered"} 1`) ||
		!strings.Contains(body, `simgate_delivery_pending 0`) {
		t.Error("delivery not counted after restart")
	}
}
