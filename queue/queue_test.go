package queue

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestSetupIsIdempotentAndDeduplicates(t *testing.T) {
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	cfg := StreamConfig{DedupWindow: time.Hour, AckWait: 5 * time.Second}
	if _, err := Setup(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	// A second daemon calls Setup on the same server: same result.
	cons, err := Setup(ctx, js, cfg)
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	for i, wantDup := range []bool{false, true} {
		ack, err := js.Publish(ctx, SubjectSend, []byte(`{}`), jetstream.WithMsgID("job-1"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != wantDup {
			t.Errorf("publish %d: duplicate %v, want %v", i, ack.Duplicate, wantDup)
		}
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	// Work-queue retention: an acked job is gone.
	s, _ := js.Stream(ctx, StreamJobs)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d jobs left after ack", info.State.Msgs)
	}
	if got := EventSubject("abc"); got != "otp.events.abc" {
		t.Errorf("EventSubject = %q", got)
	}
}

func TestStartEmbeddedBadAddress(t *testing.T) {
	for _, addr := range []string{"nohost", "127.0.0.1:port"} {
		if _, err := StartEmbedded(EmbeddedConfig{Listen: addr, StoreDir: t.TempDir()}); err == nil {
			t.Errorf("%q: no error", addr)
		}
	}
}
