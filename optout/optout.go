// Package optout keeps the numbers that asked for no more messages (a
// STOP reply), cluster-wide: a key-value bucket of the numbers' keyed
// hashes, never the numbers, mirrored in each daemon's memory by a watch,
// so that a job is checked without a round trip.
package optout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the list.
const Bucket = "simgate_optout"

// List is the opt-out list. It is safe for concurrent use.
type List struct {
	kv      jetstream.KeyValue
	watcher jetstream.KeyWatcher

	mu  sync.RWMutex
	set map[string]struct{}
}

// Open creates or binds the list's bucket and returns the list once it
// holds every number the bucket does; it follows the bucket's changes until
// Close.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*List, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "simgate: numbers that opted out of messages (keyed hashes)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("bucket %s: watch: %w", Bucket, err)
	}
	l := &List{kv: kv, watcher: w, set: map[string]struct{}{}}
	ready := make(chan struct{})
	go l.follow(ready)
	select {
	case <-ready:
		return l, nil
	case <-ctx.Done():
		w.Stop()
		return nil, fmt.Errorf("bucket %s: %w", Bucket, ctx.Err())
	}
}

// follow applies the bucket's entries to the set; ready is closed once
// the entries there at the start are in.
func (l *List) follow(ready chan struct{}) {
	for e := range l.watcher.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		l.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut {
			l.set[e.Key()] = struct{}{}
		} else {
			delete(l.set, e.Key())
		}
		l.mu.Unlock()
	}
}

// Close stops following the bucket.
func (l *List) Close() error { return l.watcher.Stop() }

// Has reports whether the number whose policy key is number opted out.
func (l *List) Has(number string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.set[number]
	return ok
}

// Add puts the number whose policy key is number on the list.
func (l *List) Add(ctx context.Context, number string) error {
	if _, err := l.kv.Put(ctx, number, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("opt out: %w", err)
	}
	l.mu.Lock()
	l.set[number] = struct{}{} // at once here; the watch brings it to the others
	l.mu.Unlock()
	return nil
}

// Remove takes the number whose policy key is number off the list.
func (l *List) Remove(ctx context.Context, number string) error {
	if err := l.kv.Purge(ctx, number); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("opt in: %w", err)
	}
	l.mu.Lock()
	delete(l.set, number)
	l.mu.Unlock()
	return nil
}
