package optout_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/optout"
	"github.com/simgate/simgate/queue"
)

func jetStream(t *testing.T) func() jetstream.JetStream {
	t.Helper()
	ns, err := queue.StartEmbedded(queue.EmbeddedConfig{Listen: "-", StoreDir: t.TempDir(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return func() jetstream.JetStream {
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListAcrossDaemons: a number one daemon puts on the list is on every
// daemon's, also one that starts later, and off again everywhere.
func TestListAcrossDaemons(t *testing.T) {
	connect := jetStream(t)
	ctx := context.Background()
	a, err := optout.Open(ctx, connect(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := optout.Open(ctx, connect(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Has("num.x") {
		t.Fatal("on the list before anything")
	}
	at := time.Now()
	if err := a.Set(ctx, "num.x", true, at); err != nil {
		t.Fatal(err)
	}
	if !a.Has("num.x") {
		t.Error("not on the list of the daemon that added it")
	}
	eventually(t, "not on the other daemon's list", func() bool { return b.Has("num.x") })
	c, err := optout.Open(ctx, connect(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Has("num.x") || c.Has("num.y") {
		t.Error("a daemon started later does not see the list as it is")
	}
	// An older STOP read again changes nothing; a later START does.
	if err := b.Set(ctx, "num.x", false, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "still on a daemon's list", func() bool { return !a.Has("num.x") && !c.Has("num.x") })
	if err := c.Set(ctx, "num.x", true, at); err != nil {
		t.Fatal(err)
	}
	if c.Has("num.x") {
		t.Error("a STOP older than the START put the number back")
	}
	if err := b.Set(ctx, "num.never", false, at); err != nil {
		t.Errorf("START of a number not on the list: %v", err)
	}
}
