package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	s, _ := policyStore(t)
	ctx := context.Background()
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

// policyStore opens the policy bucket on an embedded server for the test,
// and returns it and its JetStream context.
func policyStore(tb testing.TB) (*KVStore, jetstream.JetStream) {
	tb.Helper()
	js := embedded(tb)
	s, err := OpenPolicyStore(context.Background(), js, 1, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, js
}

// TestKVStoreMany: GetMany reads present, missing and deleted keys in one
// request; Apply writes each key only at the revision it expects, and one
// write's conflict leaves the others written.
func TestKVStoreMany(t *testing.T) {
	s, _ := policyStore(t)
	ctx := context.Background()
	revA, _ := s.Create(ctx, "a", []byte("A"))
	revGone, _ := s.Create(ctx, "gone", []byte("G"))
	if err := s.Delete(ctx, "gone", revGone); err != nil {
		t.Fatal(err)
	}
	keys := []string{"missing", "a", "gone"}
	got := make([]policy.Entry, len(keys))
	if err := s.GetMany(ctx, keys, got); err != nil {
		t.Fatal(err)
	}
	if got[0].Value != nil || got[0].Rev != 0 {
		t.Errorf("missing: %+v", got[0])
	}
	if string(got[1].Value) != "A" || got[1].Rev != revA {
		t.Errorf("a: %+v, want A at %d", got[1], revA)
	}
	if got[2].Value != nil || got[2].Rev <= revGone {
		t.Errorf("deleted: %+v, want no value and the deletion's revision", got[2])
	}
	writes := []policy.Write{
		{Key: "missing", Value: []byte("M"), Rev: got[0].Rev},
		{Key: "a", Value: []byte("A2"), Rev: got[1].Rev + 99}, // stale
		{Key: "gone", Value: []byte("G2"), Rev: got[2].Rev},
	}
	s.Apply(ctx, writes)
	if writes[0].Err != nil || writes[2].Err != nil || writes[0].NewRev == 0 || writes[2].NewRev == 0 {
		t.Errorf("writes at the right revisions: %+v %+v", writes[0], writes[2])
	}
	if !errors.Is(writes[1].Err, policy.ErrConflict) {
		t.Errorf("write at a stale revision: %v, want ErrConflict", writes[1].Err)
	}
	if err := s.GetMany(ctx, keys, got); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"M", "A", "G2"} {
		if string(got[i].Value) != want {
			t.Errorf("%s = %q, want %q", keys[i], got[i].Value, want)
		}
	}
	// One key is read alone (another request): present, missing, deleted.
	revB, _ := s.Create(ctx, "b", []byte("B"))
	if err := s.Delete(ctx, "b", revB); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "A", "nothing": "", "b": ""} {
		one := make([]policy.Entry, 1)
		if err := s.GetMany(ctx, []string{key}, one); err != nil || string(one[0].Value) != want || (want == "") != (one[0].Value == nil) {
			t.Errorf("%s alone: %+v %v, want %q", key, one[0], err, want)
		}
		if key == "b" && one[0].Rev <= revB {
			t.Errorf("deleted b alone: revision %d, want its deletion's", one[0].Rev)
		}
	}
	// Many callers at once each get their own answers.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			k := fmt.Sprint("c", i)
			rev, err := s.Create(ctx, k, []byte(k))
			if err != nil {
				t.Error(err)
				return
			}
			e := make([]policy.Entry, 2)
			if err := s.GetMany(ctx, []string{k, "a"}, e); err != nil || string(e[0].Value) != k || e[0].Rev != rev || string(e[1].Value) != "A" {
				t.Errorf("%s: %+v %v", k, e, err)
			}
		})
	}
	wg.Wait()
}
