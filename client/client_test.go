package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// startDaemon starts simgate with one simulated modem and returns a connection.
func startDaemon(t *testing.T) (*nats.Conn, *modemsim.Modem) {
	t.Helper()
	sim, err := modemsim.Start(modemsim.Config{Name: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = ""
	cfg.Modems = []config.Modem{{Name: "m1", Device: sim.Path()}}
	d, err := daemon.Start(context.Background(), cfg, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	// An auth service connects in the publisher role.
	opts, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: natsauth.SeedFile(cfg.StateDir, natsauth.RolePublisher)})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(d.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, sim
}

func TestClient(t *testing.T) {
	nc, sim := startDaemon(t)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r, err := c.Request(ctx, otp.Job{ID: "c1", To: "+4526227921", Code: "034812"})
	if err != nil || r.Status != otp.ReplyAccepted {
		t.Fatalf("request: %+v %v", r, err)
	}
	var seen []otp.State
	for ev, err := range c.Events(ctx, r.Follow()) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev.Type)
	}
	if len(seen) != 3 || seen[0] != otp.StateAccepted || seen[1] != otp.StateSent || seen[2] != otp.StateDelivered {
		t.Errorf("events %v", seen)
	}
	if ev, err := c.WaitDelivery(ctx, "c1"); err != nil || ev.Type != otp.StateDelivered {
		t.Errorf("wait for delivery: %+v %v", ev, err)
	}

	// A double submit (the same id) follows the first job's fate.
	r, err = c.Request(ctx, otp.Job{ID: "c1", To: "+4526227921", Code: "034812"})
	if err != nil || !r.Duplicate || r.Follow() != "c1" {
		t.Fatalf("duplicate: %+v %v", r, err)
	}
	if ev, err := c.Wait(ctx, r.Follow()); err != nil || ev.Type != otp.StateSent {
		t.Errorf("wait on the first: %+v %v", ev, err)
	}

	r, err = c.Request(ctx, otp.Job{ID: "c3", To: "1-800-FLOWERS", Code: "034812"})
	if err != nil || r.Status != otp.ReplyRejected || r.Reason != otp.ReasonInvalidNumber {
		t.Errorf("rejected: %+v %v", r, err)
	}

	dup, err := c.Publish(ctx, otp.Job{ID: "q1", To: "+4540404040", Code: "246810"})
	if err != nil || dup {
		t.Fatalf("publish: %v %v", dup, err)
	}
	// Publishing the job again is a second message, which the daemon
	// recognises by id and body: it is not sent twice.
	if dup, err := c.Publish(ctx, otp.Job{ID: "q1", To: "+4540404040", Code: "246810"}); err != nil || dup {
		t.Errorf("second publish: %v %v (the stream drops only a repeat of one publish)", dup, err)
	}
	if ev, err := c.Wait(ctx, "q1"); err != nil || ev.Type != otp.StateSent {
		t.Errorf("queued job: %+v %v", ev, err)
	}
	// A job queued after both copies is handled after them (one modem).
	c.Publish(ctx, otp.Job{ID: "q2", To: "+4540404041", Code: "135790"})
	if ev, err := c.Wait(ctx, "q2"); err != nil || ev.Type != otp.StateSent {
		t.Errorf("job after the copies: %+v %v", ev, err)
	}
	if _, err := c.Publish(ctx, otp.Job{ID: "bad.id", To: "+4540404040", Code: "246810"}); err == nil {
		t.Error("bad id published")
	}
	if _, err := c.Wait(ctx, ">"); err == nil {
		t.Error("events of a wildcard id followed")
	}
	if n := len(sim.Submissions()); n != 3 {
		t.Errorf("%d SMS, want 3", n)
	}
}

// codeIn is the code of a text rendered from the default template.
var codeIn = regexp.MustCompile(`code is (\d{6,10})\.`)

// codeSentTo waits for the SMS the modem took for the masked number to
// (the only one to it) and returns the code in it.
func codeSentTo(t *testing.T, ctx context.Context, sim *modemsim.Modem, to string) string {
	t.Helper()
	for {
		for _, m := range sim.Messages() {
			if m.To == to {
				c := codeIn.FindStringSubmatch(m.Text)
				if c == nil {
					t.Fatalf("no code in the SMS to %s (%d characters)", to, len(m.Text))
				}
				return c[1]
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no SMS to %s", to)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestVerifyAndCheck: managed codes through the client, on a real daemon:
// simgate makes and sends the code, a wrong one is denied, the right one
// approved once, by id or by number.
func TestVerifyAndCheck(t *testing.T) {
	nc, sim := startDaemon(t)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r, err := c.Verify(ctx, otp.VerifyRequest{ID: "v1", To: "+45 26 22 79 21"})
	if err != nil || r.Status != otp.ReplyAccepted || r.ID != "v1" || r.Verification != "v1" || r.To != "+45******21" {
		t.Fatalf("verify: %+v %v", r, err)
	}
	// A verification is a job: its events follow under its id.
	if ev, err := c.Wait(ctx, r.Follow()); err != nil || ev.Type != otp.StateSent {
		t.Fatalf("wait: %+v %v", ev, err)
	}
	code := codeSentTo(t, ctx, sim, "+4526227921")
	if len(code) != 6 {
		t.Fatalf("a %d-digit code, want 6", len(code))
	}
	wrong := strings.Repeat("0", 6)
	if wrong == code {
		wrong = strings.Repeat("1", 6)
	}
	a, err := c.Check(ctx, otp.CheckRequest{ID: r.Verification, Code: wrong})
	if err != nil || a.Status != otp.CheckDenied || a.ID != "v1" || a.AttemptsLeft != 4 {
		t.Fatalf("a wrong code: %+v %v", a, err)
	}
	a, err = c.Check(ctx, otp.CheckRequest{ID: "v1", Code: code})
	if err != nil || a.Status != otp.CheckApproved || a.ID != "v1" {
		t.Fatalf("the right code: %+v %v", a, err)
	}
	if a, err := c.Check(ctx, otp.CheckRequest{ID: "v1", Code: code}); err != nil || a.Status == otp.CheckApproved {
		t.Errorf("the right code again: %+v %v", a, err)
	}

	// By number, with a longer code.
	r, err = c.Verify(ctx, otp.VerifyRequest{ID: "v2", To: "26227922", Region: "DK", Digits: 8, TTL: otp.Duration(5 * time.Minute)})
	if err != nil || r.Status != otp.ReplyAccepted || r.Verification != "v2" {
		t.Fatalf("verify v2: %+v %v", r, err)
	}
	code = codeSentTo(t, ctx, sim, "+4526227922")
	if len(code) != 8 {
		t.Fatalf("a %d-digit code, want 8", len(code))
	}
	if a, err := c.Check(ctx, otp.CheckRequest{To: "26227922", Region: "DK", Code: code}); err != nil || a.Status != otp.CheckApproved || a.ID != "v2" {
		t.Errorf("check by number: %+v %v", a, err)
	}
	if a, err := c.Check(ctx, otp.CheckRequest{To: "+4526227923", Code: code}); err != nil || a.Status != otp.CheckNotFound || a.ID != "" {
		t.Errorf("check of a number with none: %+v %v", a, err)
	}

	// Refusals are answers, not errors.
	if a, err := c.Check(ctx, otp.CheckRequest{ID: "v1", Code: "12ab56"}); err != nil || a.Status != otp.CheckRejected || a.Reason != otp.ReasonInvalidCode {
		t.Errorf("a malformed check: %+v %v", a, err)
	}
	if r, err := c.Verify(ctx, otp.VerifyRequest{ID: "v3", To: "1-800-FLOWERS"}); err != nil || r.Status != otp.ReplyRejected || r.Reason != otp.ReasonInvalidNumber {
		t.Errorf("verify of a bad number: %+v %v", r, err)
	}
	if r, err := c.Verify(ctx, otp.VerifyRequest{ID: "v4", To: "+4526227924", Digits: 4}); err != nil || r.Status != otp.ReplyRejected || r.Reason != otp.ReasonInvalidCode || r.Field != "digits" {
		t.Errorf("verify with 4 digits: %+v %v", r, err)
	}
	if n := len(sim.Submissions()); n != 2 {
		t.Errorf("%d SMS, want 2", n)
	}
}

// startServer starts a NATS server with JetStream and no daemon, and
// returns a connection to it.
func startServer(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := queue.StartEmbedded(queue.EmbeddedConfig{Listen: "-", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startStreams starts a NATS server with simgate's streams and no
// daemon, and returns a connection to it and a context for the test's
// calls.
func startStreams(t *testing.T) (*nats.Conn, jetstream.JetStream, context.Context) {
	t.Helper()
	nc := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	js, _ := jetstream.New(nc)
	if _, err := queue.Setup(ctx, js, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return nc, js, ctx
}

// publisher returns a function that publishes v as JSON on subject to
// js's streams.
func publisher(t *testing.T, ctx context.Context, js jetstream.JetStream) func(subject string, v any) {
	return func(subject string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := js.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
}

// eventTypes follows job id's events with c to their last, calling then
// after the first, and returns their types.
func eventTypes(t *testing.T, ctx context.Context, c *client.Client, id string, then func()) []otp.State {
	t.Helper()
	var seen []otp.State
	for ev, err := range c.Events(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev.Type)
		if len(seen) == 1 {
			then()
		}
	}
	return seen
}

func TestNoDaemon(t *testing.T) {
	nc := startServer(t)
	c, _ := client.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, otp.Job{ID: "x", To: "+4526227921", Code: "123456"}); !errors.Is(err, client.ErrNoDaemon) {
		t.Errorf("request without a daemon: %v", err)
	}
	// Verify and Check name their subject: a daemon older than managed
	// codes answers otp.request only.
	_, err := c.Verify(ctx, otp.VerifyRequest{ID: "x", To: "+4526227921"})
	if !errors.Is(err, client.ErrNoDaemon) || err.Error() != "no simgate daemon answers otp.verify" {
		t.Errorf("verify without a daemon: %v", err)
	}
	_, err = c.Check(ctx, otp.CheckRequest{ID: "x", Code: "123456"})
	if !errors.Is(err, client.ErrNoDaemon) || err.Error() != "no simgate daemon answers otp.check" {
		t.Errorf("check without a daemon: %v", err)
	}
}

// TestCheckWire: Check sends the request as otp.check's JSON and decodes
// the answer; an answer that is not JSON is an error, not a zero reply.
func TestCheckWire(t *testing.T) {
	nc := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 2)
	answers := make(chan string, 2)
	sub, err := nc.Subscribe(otp.SubjectCheck, func(m *nats.Msg) {
		got <- string(m.Data)
		m.Respond([]byte(<-answers))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, _ := client.New(nc)
	answers <- `{"status":"denied","id":"v1","attempts_left":3}`
	a, err := c.Check(ctx, otp.CheckRequest{To: "26227921", Region: "DK", Code: "123456"})
	if err != nil || a != (otp.CheckReply{Status: otp.CheckDenied, ID: "v1", AttemptsLeft: 3}) {
		t.Errorf("check: %+v %v", a, err)
	}
	if body := <-got; body != `{"to":"26227921","region":"DK","code":"123456"}` {
		t.Errorf("request body %s", body)
	}
	answers <- "not json"
	if a, err := c.Check(ctx, otp.CheckRequest{ID: "v1", Code: "123456"}); err == nil || a != (otp.CheckReply{}) {
		t.Errorf("an answer that is not JSON: %+v %v", a, err)
	}
}

// TestEventsOfTheJobOnly: a message on a job's event subject that is not
// an event of that job (a stored event of another job or a daemon's answer,
// which another publisher had sent there as its reply subject) is not
// taken, stored or live.
func TestEventsOfTheJobOnly(t *testing.T) {
	nc, js, ctx := startStreams(t)
	publish := publisher(t, ctx, js)
	forged := []any{
		otp.Event{Type: otp.StateDelivered, ID: "other"},
		otp.Reply{ID: "v", Status: otp.ReplyRejected, Reason: otp.ReasonInvalidNumber},
		map[string]any{"stream": otp.StreamJobs, "seq": 9},
	}
	publish(otp.EventSubject("v"), otp.Event{Type: otp.StateAccepted, ID: "v"})
	for _, f := range forged {
		publish(otp.EventSubject("v"), f)
	}
	c, _ := client.New(nc)
	seen := eventTypes(t, ctx, c, "v", func() { // replayed; now the same live
		for _, f := range forged {
			publish(otp.EventSubject("v"), f)
		}
		publish(otp.EventSubject("v"), otp.Event{Type: otp.StateSent, ID: "v"})
	})
	if !slices.Equal(seen, []otp.State{otp.StateAccepted, otp.StateSent}) {
		t.Errorf("events %v, want accepted and sent", seen)
	}

	// A job whose stored final event is gone but whose delivery verdict
	// is kept: Wait answers the verdict, not an empty event.
	publish(otp.EventSubject("w"), otp.Event{Type: otp.StateAccepted, ID: "w"})
	publish(otp.EventSubject("w"), otp.Event{Type: otp.StateDelivered, ID: "w"})
	if ev, err := c.Wait(ctx, "w"); err != nil || ev.Type != otp.StateDelivered {
		t.Errorf("wait: %+v %v", ev, err)
	}
}

// TestEventsStoredLate: an event that Events neither saw live nor found
// in its first read of the stream (published before the subscription, and
// stored a moment after that read) is yielded still, in its place, before
// the live event that follows it. A subject transform stands in for the
// moment: an event published on late.<id> is stored as the job's and
// never seen live.
func TestEventsStoredLate(t *testing.T) {
	nc, js, ctx := startStreams(t)
	es, err := js.Stream(ctx, otp.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := es.CachedInfo().Config
	cfg.Subjects = append(cfg.Subjects, "late.>")
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "late.>", Destination: otp.SubjectEvents + ".>"}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	publish := publisher(t, ctx, js)
	publish(otp.EventSubject("v"), otp.Event{Type: otp.StateAccepted, ID: "v"})
	c, _ := client.New(nc)
	seen := eventTypes(t, ctx, c, "v", func() { // the first read is over
		publish("late.v", otp.Event{Type: otp.StateSent, ID: "v", Report: true})
		publish(otp.EventSubject("v"), otp.Event{Type: otp.StateDelivered, ID: "v"})
	})
	if want := []otp.State{otp.StateAccepted, otp.StateSent, otp.StateDelivered}; !slices.Equal(seen, want) {
		t.Errorf("events %v, want %v", seen, want)
	}
}
