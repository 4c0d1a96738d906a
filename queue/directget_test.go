package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/policy"
)

// directGetRequests returns a channel that gets a copy of every direct get
// request to the policy bucket's stream: on the store's connection, the
// copy of a request is in the channel before its answer is read.
func directGetRequests(t *testing.T, nc *nats.Conn) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 1024)
	for _, subject := range []string{"$JS.API.DIRECT.GET.KV_" + BucketPolicy, "$JS.API.DIRECT.GET.KV_" + BucketPolicy + ".>"} {
		sub, err := nc.ChanSubscribe(subject, ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestDirectGetBatches: reads that arrive while the requests are out go
// out together in one request, and each caller gets its own keys' entries
// (present, missing, asked for by several callers); a caller that stops
// waiting gets its context's error, and its entries are left alone.
func TestDirectGetBatches(t *testing.T) {
	s, js := policyStore(t)
	ctx := context.Background()
	shared, _ := s.Create(ctx, "shared", []byte("S"))
	revs := map[string]uint64{}
	for i := range 64 {
		if i%2 == 0 {
			k := fmt.Sprint("k", i)
			revs[k], _ = s.Create(ctx, k, []byte(k))
		}
	}
	requests := directGetRequests(t, js.Conn())
	g := s.many

	// As if maxBatches requests were out: every read waits.
	g.mu.Lock()
	g.out = maxBatches
	g.mu.Unlock()
	gone, cancel := context.WithCancel(ctx)
	abandoned := []policy.Entry{{Rev: 7}, {Rev: 7}}
	abandonedErr := make(chan error, 1)
	go func() { abandonedErr <- g.get(gone, []string{"shared", "k0"}, abandoned) }()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			k := fmt.Sprint("k", i)
			e := make([]policy.Entry, 2)
			if err := g.get(ctx, []string{k, "shared"}, e); err != nil {
				t.Errorf("%s: %v", k, err)
				return
			}
			if rev, ok := revs[k]; ok != (e[0].Value != nil) || e[0].Rev != rev || (ok && string(e[0].Value) != k) {
				t.Errorf("%s: %+v, want revision %d", k, e[0], rev)
			}
			if string(e[1].Value) != "S" || e[1].Rev != shared {
				t.Errorf("shared, read with %s: %+v", k, e[1])
			}
		})
	}
	for {
		g.mu.Lock()
		n := len(g.waiting)
		g.mu.Unlock()
		if n == 65 {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-abandonedErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("a read whose caller stopped waiting: %v, want context.Canceled", err)
	}
	before := len(requests)
	// One request is answered: the waiting reads go out in the next, as
	// the answered one's run would send them.
	g.mu.Lock()
	batch := g.takeLocked()
	g.mu.Unlock()
	g.run(batch)
	wg.Wait()
	if n := len(requests) - before; n != 1 {
		t.Errorf("65 waiting reads took %d requests, want 1", n)
	}
	if abandoned[0].Rev != 7 || abandoned[1].Rev != 7 {
		t.Errorf("an abandoned read's entries were written: %+v", abandoned)
	}
	g.mu.Lock()
	out, waiting := g.out, len(g.waiting)
	g.mu.Unlock()
	if out != maxBatches-1 || waiting != 0 {
		t.Errorf("after the batch: %d requests out, %d reads waiting; want %d and 0", out, waiting, maxBatches-1)
	}

	// A lone read goes out at once, alone.
	g.mu.Lock()
	g.out = 0
	g.mu.Unlock()
	before = len(requests)
	e := make([]policy.Entry, 1)
	if err := g.get(ctx, []string{"k2"}, e); err != nil || string(e[0].Value) != "k2" {
		t.Errorf("k2 alone: %+v %v", e[0], err)
	}
	if n := len(requests) - before; n != 1 {
		t.Errorf("a lone read took %d requests, want 1", n)
	}
	if err := g.get(ctx, make([]string, maxBatchKeys+1), make([]policy.Entry, maxBatchKeys+1)); err == nil {
		t.Errorf("%d keys read, want an error", maxBatchKeys+1)
	}
}
