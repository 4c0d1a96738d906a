package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

func TestSetupIsIdempotentAndDeduplicates(t *testing.T) {
	js := embedded(t)
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
		ack, err := js.Publish(ctx, otp.SubjectSend, []byte(`{}`), jetstream.WithMsgID("job-1"))
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
	s, _ := js.Stream(ctx, otp.StreamJobs)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d jobs left after ack", info.State.Msgs)
	}
}

func TestStartEmbeddedBadAddress(t *testing.T) {
	for _, addr := range []string{"nohost", "127.0.0.1:port"} {
		if _, err := StartEmbedded(EmbeddedConfig{Listen: addr, StoreDir: t.TempDir()}); err == nil {
			t.Errorf("%q: no error", addr)
		}
	}
}

func TestKVStore(t *testing.T) {
	js := embedded(t)
	ctx := context.Background()
	s, err := OpenPolicyStore(ctx, js, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	rev, err := s.Create(ctx, "k", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "k", []byte("b")); !errors.Is(err, policy.ErrExists) {
		t.Errorf("create existing: %v", err)
	}
	if _, err := s.Update(ctx, "k", []byte("c"), rev+7); !errors.Is(err, policy.ErrConflict) {
		t.Errorf("update stale: %v", err)
	}
	if _, err := s.Update(ctx, "k", []byte("d"), rev); err != nil {
		t.Errorf("update: %v", err)
	}
	if e, _ := s.Get(ctx, "k"); string(e.Value) != "d" {
		t.Errorf("value %q", e.Value)
	}
	for _, k := range []string{"k", "new"} {
		if _, err := s.Put(ctx, k, []byte("e")); err != nil {
			t.Errorf("put %s: %v", k, err)
		}
		if e, _ := s.Get(ctx, k); string(e.Value) != "e" {
			t.Errorf("%s after put: %q", k, e.Value)
		}
	}
}

// embedded starts an in-process server for the test and returns a
// JetStream context on it.
func embedded(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: tb.TempDir(), Name: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
