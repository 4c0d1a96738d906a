package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// sim is a simulated modem whose complete messages arrive on msgs.
type sim struct {
	*modemsim.Modem
	msgs chan modemsim.Message
}

func startSim(t testing.TB, name string, delay time.Duration) *sim {
	t.Helper()
	return startSimWith(t, modemsim.Config{Name: name, SendDelay: delay})
}

// startSimWith starts a simulated modem configured with cfg, whose
// complete messages arrive on the sim's msgs.
func startSimWith(t testing.TB, cfg modemsim.Config) *sim {
	t.Helper()
	s := &sim{msgs: make(chan modemsim.Message, 1024)}
	cfg.OnMessage = func(m modemsim.Message) { s.msgs <- m }
	m, err := modemsim.Start(cfg)
	if err != nil {
		t.Fatalf("start simulated modem: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	s.Modem = m
	return s
}

// testConfig returns a configuration for a daemon on an embedded server in
// dir, using the given simulated modems.
func testConfig(dir string, sims ...*sim) config.Config {
	cfg := config.Default()
	cfg.Node = "test"
	cfg.StateDir = dir
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.OTP.RetryDelay = 20 * time.Millisecond
	// Most tests send several codes to one number: no rate limits unless a
	// test turns them on.
	cfg.Policy.Cooldown = 0
	cfg.Policy.Number = nil
	cfg.Policy.Prefix.Distinct = 0
	for _, s := range sims {
		cfg.Modems = append(cfg.Modems, config.Modem{Name: s.Modem.Name(), Device: s.Path(),
			CommandTimeout: 2 * time.Second, SendTimeout: 10 * time.Second, HealthInterval: 100 * time.Millisecond})
	}
	return cfg
}

// logBuffer keeps every log line of a daemon (and shows them with -v).
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (w *logBuffer) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// harness is a running daemon with a client connection that sees every
// event.
type harness struct {
	t      testing.TB
	cfg    config.Config
	d      *daemon.Daemon
	logs   *logBuffer
	nc     *nats.Conn
	js     jetstream.JetStream
	mu     sync.Mutex
	events map[string]chan otp.Event
}

func start(t testing.TB, cfg config.Config) *harness {
	t.Helper()
	logs, log := testLogger(t)
	d, err := daemon.Start(context.Background(), cfg, log, "test")
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	return attach(t, cfg, d, logs)
}

// testLogger returns a debug logger that keeps its lines.
func testLogger(t testing.TB) (*logBuffer, *slog.Logger) {
	logs := &logBuffer{t: t}
	return logs, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// attach returns the harness of daemon d, started with cfg and logging to
// logs, and stops d at the end of the test.
func attach(t testing.TB, cfg config.Config, d *daemon.Daemon, logs *logBuffer) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, d: d, logs: logs, events: map[string]chan otp.Event{}}
	t.Cleanup(func() { h.stop() })
	var err error
	// The test is a publisher, as an auth service would be.
	h.nc, err = connectAs(cfg, d, natsauth.RolePublisher)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	h.js, err = jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.nc.Subscribe(otp.SubjectEvents+".>", func(m *nats.Msg) {
		// A publisher may answer its requests to any subject of its
		// account, a live event subject too (the attacker suite does): take
		// only events of the job the subject names.
		id := strings.TrimPrefix(m.Subject, otp.SubjectEvents+".")
		var ev otp.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID != id {
			t.Logf("not an event of %s on %s: %.80q", id, m.Subject, m.Data)
			return
		}
		h.eventsOf(id) <- ev
	}); err != nil {
		t.Fatal(err)
	}
	h.nc.Flush()
	return h
}

// seedFile returns the nkey seed of role on the server the daemon of cfg
// uses: its own embedded one, or that of the daemon whose seed cfg names.
func seedFile(cfg config.Config, role natsauth.Role) string {
	if cfg.NATS.URL == "" {
		return natsauth.SeedFile(cfg.StateDir, role)
	}
	return filepath.Join(filepath.Dir(cfg.NATS.NkeySeedFile), string(role)+".nk")
}

// connectAs connects to the NATS server of daemon d (started with cfg) in
// role.
func connectAs(cfg config.Config, d *daemon.Daemon, role natsauth.Role) (*nats.Conn, error) {
	url := d.ClientURL()
	if url == "" {
		url = cfg.NATS.URL
	}
	if cfg.NATS.URL != "" && cfg.NATS.NkeySeedFile == "" {
		return nats.Connect(url) // an open server the test started
	}
	opts, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: seedFile(cfg, role), CAFile: cfg.NATS.TLS.CAFile})
	if err != nil {
		return nil, err
	}
	if role == natsauth.RoleDaemon {
		opts = append(opts, nats.CustomInboxPrefix(queue.DaemonInboxPrefix))
	}
	return nats.Connect(url, opts...)
}

// onServerOf returns cfg set to use the embedded server of daemon d
// (started with owner) as the daemon role.
func onServerOf(cfg, owner config.Config, d *daemon.Daemon) config.Config {
	cfg.NATS.URL = d.ClientURL()
	cfg.NATS.NkeySeedFile = natsauth.SeedFile(owner.StateDir, natsauth.RoleDaemon)
	return cfg
}

// daemonJS returns a JetStream context in the daemon's role, for checks
// of what only the daemon may see.
func (h *harness) daemonJS() jetstream.JetStream {
	h.t.Helper()
	nc, err := connectAs(h.cfg, h.d, natsauth.RoleDaemon)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	return js
}

func (h *harness) stop() {
	if h.d == nil {
		return
	}
	if h.nc != nil {
		h.nc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.d.Stop(ctx); err != nil {
		h.t.Errorf("stop daemon: %v", err)
	}
	h.d = nil
}

func (h *harness) eventsOf(id string) chan otp.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.events[id]
	if !ok {
		ch = make(chan otp.Event, 64)
		h.events[id] = ch
	}
	return ch
}

// publish queues a job on otp.send the way an auth service does.
func (h *harness) publish(job map[string]any) {
	h.t.Helper()
	b, _ := json.Marshal(job)
	id, _ := job["id"].(string)
	if _, err := h.js.Publish(context.Background(), otp.SubjectSend, b, jetstream.WithMsgID(id)); err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

// request sends a job on otp.request and returns the answer.
func (h *harness) request(job any) otp.Reply {
	h.t.Helper()
	var b []byte
	if s, ok := job.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(job)
	}
	msg, err := h.nc.Request(otp.SubjectRequest, b, 10*time.Second)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	var r otp.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		h.t.Fatalf("reply %q: %v", msg.Data, err)
	}
	return r
}

// waitEvent returns the next event of job id, failing the test after 20 s.
func (h *harness) waitEvent(id string) otp.Event {
	h.t.Helper()
	return h.waitEventFor(id, 20*time.Second)
}

func (h *harness) waitEventFor(id string, d time.Duration) otp.Event {
	h.t.Helper()
	select {
	case ev := <-h.eventsOf(id):
		return ev
	case <-time.After(d):
		h.t.Fatalf("no event for job %s in %s", id, d)
		return otp.Event{}
	}
}

// waitFinal returns the events of job id up to and including a final one.
func (h *harness) waitFinal(id string) []otp.Event {
	h.t.Helper()
	var evs []otp.Event
	for {
		ev := h.waitEvent(id)
		evs = append(evs, ev)
		if ev.Type.Final() {
			return evs
		}
	}
}

func types(evs []otp.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, string(ev.Type))
	}
	return strings.Join(s, ",")
}

func waitMessage(t testing.TB, s *sim) modemsim.Message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("simulated modem %s received no message", s.Modem.Name())
		return modemsim.Message{}
	}
}

func scrape(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// noStoredEvents fails the test if OTP_EVENTS holds an event of any of
// ids. Call it after waiting for an event published after theirs would
// have been (events of one daemon are stored in order).
func (h *harness) noStoredEvents(ids ...string) {
	h.t.Helper()
	es, err := h.daemonJS().Stream(context.Background(), otp.StreamEvents)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, id := range ids {
		if m, err := es.GetLastMsgForSubject(context.Background(), otp.EventSubject(id)); !errors.Is(err, jetstream.ErrMsgNotFound) {
			h.t.Errorf("an event of %s is stored (%v): %s", id, err, m.Data)
		}
	}
}

// waitMetrics scrapes addr until its metrics hold every line of want,
// failing the test after 10 s: gauges a worker sets on its own time (a
// modem's health) are waited for, not raced.
func waitMetrics(t testing.TB, addr string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := scrape(t, addr)
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics lack %s", strings.Join(missing, ", "))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublishedJobIsSentEndToEnd(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))

	h.publish(map[string]any{"id": "job-1", "to": "+45 26 22 79 21", "code": "034812"})

	evs := h.waitFinal("job-1")
	if got := types(evs); got != "accepted,sent" {
		t.Fatalf("events = %s, want accepted,sent", got)
	}
	sent := evs[1]
	if sent.Modem != "m1" || sent.Parts != 1 || len(sent.Refs) != 1 || sent.To != "+45******21" {
		t.Errorf("sent event = %+v", sent)
	}
	m := waitMessage(t, s)
	if m.To != "+4526227921" {
		t.Errorf("SMS to %q, want +4526227921", m.To)
	}
	if want := "Your simgate verification code is 034812. It expires in 10 min."; m.Text != want {
		t.Errorf("SMS text %q, want %q", m.Text, want)
	}
	if m.Encoding != "gsm7" || m.Parts != 1 || m.MRs[0] != sent.Refs[0] {
		t.Errorf("SMS = %+v, sent refs %v", m, sent.Refs)
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{
		`simgate_jobs_total{outcome="sent"} 1`,
		`simgate_sms_sent_total{modem="m1"} 1`,
		`simgate_send_latency_seconds_count 1`,
		`simgate_modem_up{modem="m1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "26227921") || strings.Contains(body, "034812") || strings.Contains(body, "job-1") {
		t.Error("metrics contain a number, a code or a job id")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "+45******21") {
		t.Error("logs do not name the job's masked number")
	}
	if strings.Contains(logs, "26227921") || strings.Contains(logs, "034812") || strings.Contains(logs, "verification code") {
		t.Errorf("logs contain the number, the code or the text:\n%s", logs)
	}
}

func TestRequestAnswersAtOnce(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))

	for _, tc := range []struct {
		name   string
		job    any
		reason otp.Reason
		field  string
	}{
		{"invalid number", map[string]any{"id": "bad-1", "to": "+45 1", "code": "123456"}, otp.ReasonInvalidNumber, "to"},
		{"letters", map[string]any{"id": "bad-2", "to": "1-800-FLOWERS", "code": "123456"}, otp.ReasonInvalidNumber, "to"},
		{"unknown field", map[string]any{"id": "bad-3", "to": "+4526227921", "code": "123456", "pin": 1}, otp.ReasonUnknownField, "pin"},
		{"not json", "{nope", otp.ReasonMalformed, ""},
		{"bad code", map[string]any{"id": "bad-4", "to": "+4526227921", "code": "12ab56"}, otp.ReasonInvalidCode, "code"},
		{"5-digit code", map[string]any{"id": "bad-4b", "to": "+4526227921", "code": "12345"}, otp.ReasonInvalidCode, "code"},
		{"text is off", map[string]any{"id": "bad-4c", "to": "+4526227921", "text": "hello"}, otp.ReasonTextDisabled, "text"},
		{"ttl above max", map[string]any{"id": "bad-5", "to": "+4526227921", "code": "123456", "ttl": "2h"}, otp.ReasonInvalidTTL, "ttl"},
		{"unknown template", map[string]any{"id": "bad-6", "to": "+4526227921", "code": "123456", "template": "nope"}, otp.ReasonUnknownTemplate, "template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.request(tc.job)
			if r.Status != otp.ReplyRejected || r.Reason != tc.reason || r.Field != tc.field || r.Detail == "" {
				t.Fatalf("reply = %+v, want rejected %s (%s)", r, tc.reason, tc.field)
			}
		})
	}
	// The replies were the answers: nothing stored for any of them.
	// (A job refused on otp.send is an event published after theirs
	// would have been, and sends nothing.)
	h.publish(map[string]any{"id": "after", "to": "not a number", "code": "123456"})
	h.waitFinal("after")
	h.noStoredEvents("bad-1", "bad-2", "bad-3", "bad-4", "bad-4b", "bad-4c", "bad-5", "bad-6")

	r := h.request(map[string]any{"id": "good-1", "to": "26227921", "region": "DK", "code": "987654", "ttl": 120})
	if r.Status != otp.ReplyAccepted || r.ID != "good-1" || r.To != "+45******21" || r.Duplicate {
		t.Fatalf("reply = %+v", r)
	}
	if got := types(h.waitFinal("good-1")); got != "accepted,sent" {
		t.Fatalf("events = %s", got)
	}
	m := waitMessage(t, s)
	if !strings.Contains(m.Text, "987654") || !strings.Contains(m.Text, "2 min") {
		t.Errorf("text = %q", m.Text)
	}
	// The same job again is a duplicate: answered, not queued again.
	r = h.request(map[string]any{"id": "good-1", "to": "+4526227921", "code": "987654", "ttl": "2m"})
	if r.Status != otp.ReplyAccepted || !r.Duplicate || (r.State != otp.StateSent && r.State != otp.StateDelivered) {
		t.Fatalf("second reply = %+v, want accepted duplicate, sent or delivered", r)
	}
	// The same id with another body is another job: refused.
	r = h.request(map[string]any{"id": "good-1", "to": "+4526227921", "code": "987654"})
	if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonIDConflict || r.Field != "id" {
		t.Fatalf("another body under the id: reply = %+v, want id_conflict", r)
	}
	// Only the good jobs reached the modem.
	h.request(map[string]any{"id": "good-2", "to": "+4526227921", "code": "135790"})
	h.waitFinal("good-2")
	if m := waitMessage(t, s); !strings.Contains(m.Text, "135790") {
		t.Errorf("second SMS = %q, want the code 135790", m.Text)
	}
	if n := len(s.Submissions()); n != 2 {
		t.Errorf("modem received %d PDUs, want 2", n)
	}
}

func TestMalformedQueuedJobDoesNotBlockTheQueue(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	if _, err := h.js.Publish(context.Background(), otp.SubjectSend, []byte("not json"), jetstream.WithMsgID("junk-1")); err != nil {
		t.Fatal(err)
	}
	h.publish(map[string]any{"id": "after-junk", "to": "+4526227921", "code": "123456"})
	ev := h.waitEvent("junk-1")
	if ev.Type != otp.StateRejected || ev.Reason != otp.ReasonMalformed {
		t.Errorf("junk event = %+v", ev)
	}
	if got := types(h.waitFinal("after-junk")); got != "accepted,sent" {
		t.Errorf("events = %s", got)
	}
}

func TestJobExpiresWhileWaitingForAModem(t *testing.T) {
	s := startSim(t, "m1", 1500*time.Millisecond)
	h := start(t, testConfig(t.TempDir(), s))

	h.publish(map[string]any{"id": "slow", "to": "+4526227921", "code": "111111"})
	if ev := h.waitEvent("slow"); ev.Type != otp.StateAccepted {
		t.Fatalf("first event %s", ev.Type)
	}
	// The only modem is now busy for 1.5 s; this job is worth 300 ms.
	h.publish(map[string]any{"id": "late", "to": "+4526227921", "code": "222222", "ttl": "300ms"})
	evs := h.waitFinal("late")
	if last := evs[len(evs)-1]; last.Type != otp.StateExpired {
		t.Fatalf("late job events = %s, want ...expired", types(evs))
	}
	if got := types(h.waitFinal("slow")); got != "sent" {
		t.Errorf("slow job events after accepted = %s", got)
	}
	if m := waitMessage(t, s); !strings.Contains(m.Text, "111111") {
		t.Errorf("sent %q", m.Text)
	}
	for _, sub := range s.Submissions() {
		if strings.Contains(sub.Text, "222222") {
			t.Error("expired code was sent")
		}
	}
	if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_jobs_total{outcome="expired"} 1`) {
		t.Error("expired job not counted")
	}
}

func TestRetryableErrorIsRetriedAndPermanentErrorFails(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))

	s.FailNextSends(42) // congestion
	h.publish(map[string]any{"id": "retry", "to": "+4526227921", "code": "555555"})
	evs := h.waitFinal("retry")
	if got := types(evs); got != "accepted,retrying,sent" {
		t.Fatalf("events = %s", got)
	}
	if evs[1].Detail != "+CMS ERROR: 42" || evs[2].Attempt != 2 {
		t.Errorf("retrying = %+v, sent = %+v", evs[1], evs[2])
	}

	s.FailNextSends(1) // unassigned number
	h.publish(map[string]any{"id": "perm", "to": "+4526227921", "code": "666666"})
	evs = h.waitFinal("perm")
	if got := types(evs); got != "accepted,failed" {
		t.Fatalf("events = %s", got)
	}
	if f := evs[1]; f.Reason != otp.ReasonModemRejected || f.Detail != "+CMS ERROR: 1" {
		t.Errorf("failed = %+v", f)
	}

	s.FailNextSends(8) // operator determined barring: the SIM's account
	h.publish(map[string]any{"id": "barred", "to": "+4526227921", "code": "888888"})
	if got := types(h.waitFinal("barred")); got != "accepted,failed" {
		t.Fatalf("events = %s", got)
	}

	s.FailNextSends(42, 42, 42, 42, 42)
	h.publish(map[string]any{"id": "exhaust", "to": "+4526227921", "code": "777777"})
	evs = h.waitFinal("exhaust")
	if last := evs[len(evs)-1]; last.Type != otp.StateFailed || last.Reason != otp.ReasonAttemptsExhausted || last.Attempt != 5 {
		t.Errorf("events = %s, last %+v", types(evs), last)
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{
		`simgate_sms_failed_total{class="retryable",modem="m1"} 6`,
		`simgate_sms_failed_total{class="permanent",modem="m1"} 2`,
		`simgate_jobs_total{outcome="failed"} 3`,
		`simgate_sim_refusals_total{cause="barred",modem="m1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestQueuedJobsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	// A daemon whose only modem is missing takes no job.
	cfg := testConfig(dir)
	cfg.Modems = []config.Modem{{Name: "m1", Device: dir + "/no-such-modem"}}
	h := start(t, cfg)
	ids := []string{"r1", "r2", "r3", "r4", "r5"}
	for i, id := range ids {
		h.publish(map[string]any{"id": id, "to": "+4526227921", "code": fmt.Sprintf("10000%d", i)})
	}
	h.stop()

	s := startSim(t, "m1", 0)
	h = start(t, testConfig(dir, s))
	for _, id := range ids {
		evs := h.waitFinal(id)
		if last := evs[len(evs)-1]; last.Type != otp.StateSent {
			t.Errorf("job %s: events %s", id, types(evs))
		}
	}
	got := map[string]bool{}
	for range ids {
		got[waitMessage(t, s).Text] = true
	}
	if len(got) != len(ids) {
		t.Errorf("%d distinct messages sent, want %d", len(got), len(ids))
	}
}

func TestHungModemLosesNoJob(t *testing.T) {
	sending := make(chan struct{}, 1)
	s := &sim{msgs: make(chan modemsim.Message, 16)}
	var err error
	s.Modem, err = modemsim.Start(modemsim.Config{
		Name:      "m1",
		SendDelay: time.Hour,
		OnSending: func() { sending <- struct{}{} },
		OnMessage: func(m modemsim.Message) { s.msgs <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := testConfig(t.TempDir(), s)
	cfg.Modems[0].SendTimeout = 300 * time.Millisecond
	h := start(t, cfg)

	h.publish(map[string]any{"id": "hang", "to": "+4526227921", "code": "424242"})
	if ev := h.waitEvent("hang"); ev.Type != otp.StateAccepted {
		t.Fatalf("first event %+v", ev)
	}
	<-sending
	// The modem stops answering; the SMS went out but the answer is lost.
	s.SetHung(true)
	s.SetSendDelay(0)
	ev := h.waitEvent("hang")
	if ev.Type != otp.StateRetrying || ev.Reason != "unknown_outcome" {
		t.Fatalf("event after the hang = %+v, want retrying unknown_outcome", ev)
	}
	// The worker reopens the modem once it answers again and sends the same
	// code: never a different one.
	s.SetHung(false)
	evs := h.waitFinal("hang")
	if last := evs[len(evs)-1]; last.Type != otp.StateSent || last.Attempt != 2 {
		t.Fatalf("events after recovery = %s", types(evs))
	}
	for _, sub := range s.Submissions() {
		if !strings.Contains(sub.Text, "424242") {
			t.Errorf("sent %q", sub.Text)
		}
	}
	if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_resends_total{reason="unknown_outcome"} 1`) {
		t.Error("unknown-outcome retry not counted")
	}
}

func TestModemThatCannotSendTakesNoJobs(t *testing.T) {
	m1, m2 := startSim(t, "m1", 0), startSim(t, "m2", 0)
	m2.SetRegistration(2) // searching
	h := start(t, testConfig(t.TempDir(), m1, m2))
	ids := []string{"g0", "g1", "g2", "g3", "g4", "g5"}
	for i, id := range ids {
		h.publish(map[string]any{"id": id, "to": fmt.Sprintf("+454040404%d", i), "code": "123456"})
	}
	for _, id := range ids {
		evs := h.waitFinal(id)
		if last := evs[len(evs)-1]; last.Type != otp.StateSent || last.Modem != "m1" {
			t.Errorf("job %s: %s on %q", id, types(evs), last.Modem)
		}
	}
	if n := len(m2.Submissions()); n != 0 {
		t.Errorf("unregistered modem sent %d SMS", n)
	}
	waitMetrics(t, h.d.MetricsAddr(),
		`simgate_modem_ready{modem="m2"} 0`,
		`simgate_modem_registration_state{modem="m2"} 2`,
		`simgate_modem_ready{modem="m1"} 1`,
		`simgate_modem_signal_dbm{modem="m1"} -73`)
	// m1 loses its network, m2 finds one: the next job goes out on m2
	// (after a retry, if m1 took it before noticing).
	m1.SetRegistration(3)
	m2.SetRegistration(1)
	h.publish(map[string]any{"id": "after", "to": "+4526227921", "code": "567890"})
	evs := h.waitFinal("after")
	if last := evs[len(evs)-1]; last.Type != otp.StateSent || last.Modem != "m2" {
		t.Errorf("after the switch: %s on %q", types(evs), last.Modem)
	}
}

func TestModemSendCap(t *testing.T) {
	m1, m2 := startSim(t, "m1", 0), startSim(t, "m2", 0)
	cfg := testConfig(t.TempDir(), m1, m2)
	cfg.Modems[0].PerMinute = 2
	h := start(t, cfg)
	var ids []string
	for i := range 8 {
		id := fmt.Sprint("cap", i)
		ids = append(ids, id)
		h.publish(map[string]any{"id": id, "to": fmt.Sprintf("+454040404%d", i), "code": "123456"})
	}
	for _, id := range ids {
		if evs := h.waitFinal(id); evs[len(evs)-1].Type != otp.StateSent {
			t.Errorf("job %s: %s", id, types(evs))
		}
	}
	if n := len(m1.Submissions()); n > 2 {
		t.Errorf("capped modem sent %d SMS in a minute, cap 2", n)
	}
	if n := len(m1.Submissions()) + len(m2.Submissions()); n != 8 {
		t.Errorf("%d SMS sent, want 8", n)
	}
}
