// Package optout keeps the numbers that asked for no more messages (a
// STOP reply), cluster-wide: a key-value bucket of the numbers' keyed
// hashes, never the numbers, mirrored in each daemon's memory by a watch,
// so that a job is checked without a round trip.
package optout

import (
	"context"
	"encoding/json"
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
	out map[string]bool
}

// entry is a number's last word: out (STOP) or in (START), and when the
// message that said it was sent.
type entry struct {
	Out bool  `json:"out"`
	At  int64 `json:"at"` // unix ms
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
		MaxBytes:    64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Bucket, err)
	}
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("bucket %s: watch: %w", Bucket, err)
	}
	l := &List{kv: kv, watcher: w, out: map[string]bool{}}
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
		var en entry
		l.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &en) == nil && en.Out {
			l.out[e.Key()] = true
		} else {
			delete(l.out, e.Key())
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
	return l.out[number]
}

// Set records the word of the number whose policy key is number: out
// (STOP) or in (START), said by a message sent at at. An older message
// than the one recorded changes nothing: a STOP read again after a later
// START does not undo it.
func (l *List) Set(ctx context.Context, number string, out bool, at time.Time) error {
	b, _ := json.Marshal(entry{Out: out, At: at.UnixMilli()})
	for range 10 {
		cur, err := l.kv.Get(ctx, number)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = l.kv.Create(ctx, number, b)
		case err != nil:
			return fmt.Errorf("opt-out list: %w", err)
		default:
			var en entry
			if json.Unmarshal(cur.Value(), &en) == nil && en.At > at.UnixMilli() {
				return nil // a later word stands
			}
			_, err = l.kv.Update(ctx, number, b, cur.Revision())
		}
		if err == nil {
			l.mu.Lock()
			l.out[number] = out // at once here; the watch brings it to the others
			if !out {
				delete(l.out, number)
			}
			l.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("opt-out list: %w", err)
		}
	}
	return errors.New("opt-out list: too much contention")
}
