package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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

func TestNoDaemon(t *testing.T) {
	nc := startServer(t)
	c, _ := client.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, otp.Job{ID: "x", To: "+4526227921", Code: "123456"}); !errors.Is(err, client.ErrNoDaemon) {
		t.Errorf("request without a daemon: %v", err)
	}
}

// TestEventsOfTheJobOnly: a message on a job's event subject that is not
// an event of that job (a stored event of another job or a daemon's answer,
// which another publisher had sent there as its reply subject) is not
// taken, stored or live.
func TestEventsOfTheJobOnly(t *testing.T) {
	nc := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	if _, err := queue.Setup(ctx, js, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	publish := func(subject string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if _, err := js.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
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
	var seen []otp.State
	for ev, err := range c.Events(ctx, "v") {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev.Type)
		if len(seen) == 1 { // replayed; now the same live
			for _, f := range forged {
				publish(otp.EventSubject("v"), f)
			}
			publish(otp.EventSubject("v"), otp.Event{Type: otp.StateSent, ID: "v"})
		}
	}
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
