package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

func TestReloadRejectsABadConfigAndAppliesAGoodOne(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	before := h.d.Live()

	bad := cfg
	bad.OTP.Templates = map[string]map[string]string{"default": {"en": "code {{.Code"}}
	if err := h.d.Reload(bad); err == nil || !strings.Contains(err.Error(), "otp.templates") {
		t.Errorf("reload with a broken template: %v", err)
	}
	bad = cfg
	bad.OTP.DefaultTTL = 2 * cfg.OTP.MaxTTL
	if err := h.d.Reload(bad); err == nil || !strings.Contains(err.Error(), "default_ttl") {
		t.Errorf("reload with default_ttl > max_ttl: %v", err)
	}
	if after := h.d.Live(); after.Renderer != before.Renderer || after.Policy != before.Policy || after.Limits.DefaultTTL != before.Limits.DefaultTTL {
		t.Fatalf("a rejected reload changed the settings: %+v", after)
	}
	if r := h.request(map[string]any{"id": "r1", "to": "+4526227921", "code": "111111"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("before reload: %+v", r)
	}
	if m := waitMessage(t, s); !strings.Contains(m.Text, "simgate") {
		t.Errorf("before reload sent %q", m.Text)
	}

	good := cfg
	good.OTP.Brand = "Acme"
	good.OTP.DefaultTTL = 5 * time.Minute
	good.OTP.Numbers.BlockedRegions = []string{"DK"}
	good.Policy.GlobalPerMinute = 1000
	good.OTP.MinCodeDigits, good.OTP.AllowText, good.OTP.MaxParts = 8, true, 2
	good.NATS.AckWait = time.Minute // needs a restart: logged, not applied
	if err := h.d.Reload(good); err != nil {
		t.Fatalf("reload: %v", err)
	}
	live := h.d.Live()
	if live.Limits.DefaultTTL != 5*time.Minute || live.Renderer == before.Renderer || live.Policy == before.Policy {
		t.Errorf("reload did not swap the settings: %+v", live)
	}
	if l := live.Limits; l.MinCodeDigits != 8 || !l.AllowText || l.MaxParts != 2 {
		t.Errorf("reload did not apply the job rules: %+v", l)
	}
	if r := h.request(map[string]any{"id": "r2b", "to": "+46701234567", "code": "1234567"}); r.Status != otp.ReplyRejected || r.Reason != otp.ReasonInvalidCode {
		t.Errorf("7-digit code after raising the minimum to 8: %+v", r)
	}
	if r := h.request(map[string]any{"id": "r2", "to": "+4526227922", "code": "22222222"}); r.Status != otp.ReplyRejected || r.Reason != otp.ReasonCountryBlocked {
		t.Errorf("DK after blocking it: %+v", r)
	}
	if r := h.request(map[string]any{"id": "r3", "to": "+46701234567", "code": "33333333"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("SE after reload: %+v", r)
	}
	if m := waitMessage(t, s); !strings.Contains(m.Text, "Acme") || !strings.Contains(m.Text, "5 min") {
		t.Errorf("after reload sent %q", m.Text)
	}
	if !strings.Contains(h.logs.String(), "nats") || !strings.Contains(h.logs.String(), "only after a restart") {
		t.Error("a change needing a restart was not logged")
	}
}

// signalWriter closes seen the first time a log line contains want.
type signalWriter struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// slowSim is a simulated modem whose AT+CMGS waits until SetSendDelay(0),
// reporting on sending when a send starts waiting.
func slowSim(t *testing.T) (*sim, chan struct{}) {
	t.Helper()
	sending := make(chan struct{}, 4)
	s := &sim{msgs: make(chan modemsim.Message, 4)}
	m, err := modemsim.Start(modemsim.Config{Name: "m1", SendDelay: time.Hour,
		OnSending: func() { sending <- struct{}{} },
		OnMessage: func(m modemsim.Message) { s.msgs <- m }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s.Modem = m
	return s, sending
}

func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// startQuiet starts a daemon whose log goes to w only (not to t, which a
// worker left running after the test must not write to), and queues job id.
func startQuiet(t *testing.T, cfg config.Config, w io.Writer, id string) *daemon.Daemon {
	t.Helper()
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.Start(context.Background(), cfg, log, "test")
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	nc, err := connectAs(cfg, d, natsauth.RolePublisher)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	b := []byte(`{"id":"` + id + `","to":"+4526227921","code":"765432"}`)
	if _, err := js.Publish(context.Background(), otp.SubjectSend, b, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	return d
}

// replay reads the stored events of job id up to a final one, as a
// publisher does (client.Events).
func replay(t *testing.T, h *harness, id string) []otp.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	var evs []otp.Event
	for ev, err := range c.Events(ctx, id) {
		if err != nil {
			t.Fatalf("events of %s so far %s: %v", id, types(evs), err)
		}
		evs = append(evs, ev)
		if ev.Type.Final() {
			return evs
		}
	}
	t.Fatalf("events of %s ended at %s", id, types(evs))
	return nil
}

// TestStopFinishesASendInProgress stops a daemon while its modem is in
// AT+CMGS: the send completes, the job is acked and its sent event stored
// before Stop returns; a daemon started next on the same store sends
// nothing again.
func TestStopFinishesASendInProgress(t *testing.T) {
	s, sending := slowSim(t)
	dir := t.TempDir()
	stopping := &signalWriter{want: "stopping: waiting for sends in progress", seen: make(chan struct{})}
	d := startQuiet(t, testConfig(dir, s), io.MultiWriter(stopping, &logBuffer{t: t}), "inflight")
	within(t, sending, "the send to start")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- d.Stop(ctx)
	}()
	within(t, stopping.seen, "the workers to be told to stop")
	s.SetSendDelay(0) // the network answers now
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if m := waitMessage(t, s); !strings.Contains(m.Text, "765432") {
		t.Errorf("sent %q", m.Text)
	}

	s2 := startSim(t, "m1", 0)
	h := start(t, testConfig(dir, s2))
	if evs := replay(t, h, "inflight"); types(evs) != "accepted,sent" {
		t.Errorf("events %s, want accepted,sent", types(evs))
	}
	// Sent once: the restarted daemon has nothing to do.
	h.stop()
	if n := len(s2.Submissions()); n != 0 {
		t.Errorf("restarted daemon sent %d messages", n)
	}
}

// TestStopTimeoutHandsTheJobBack stops a daemon whose modem never answers
// within the stop timeout: the job is not acked, and a daemon started on
// the same store sends it.
func TestStopTimeoutHandsTheJobBack(t *testing.T) {
	s, sending := slowSim(t)
	dir := t.TempDir()
	cfg := testConfig(dir, s)
	cfg.NATS.AckWait = time.Second
	d := startQuiet(t, cfg, io.Discard, "handback")
	within(t, sending, "the send to start")

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time at all for the send in progress
	if err := d.Stop(ctx); err == nil {
		t.Error("stop with a send in progress and no time: no error")
	}
	// The modem dies with the SMS unsent.
	s.Close()

	s2 := startSim(t, "m1", 0)
	cfg2 := testConfig(dir, s2)
	cfg2.NATS.AckWait = time.Second
	h := start(t, cfg2)
	evs := replay(t, h, "handback")
	if last := evs[len(evs)-1]; last.Type != otp.StateSent || last.Modem != "m1" {
		t.Fatalf("events %s", types(evs))
	}
	if m := waitMessage(t, s2); !strings.Contains(m.Text, "765432") {
		t.Errorf("sent %q", m.Text)
	}
}
