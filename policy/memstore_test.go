package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestMemoryStore: revisions, expiry, deletion, and values handed out that
// stay as they were while the arena is written and compacted.
func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := NewMemoryStore(time.Hour)
	s.now = c.now
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	rev, err := s.Create(ctx, "a", []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", []byte("again")); !errors.Is(err, ErrExists) {
		t.Errorf("create existing: %v", err)
	}
	held, _ := s.Get(ctx, "a")
	if _, err := s.Update(ctx, "a", []byte("stale"), rev+1); !errors.Is(err, ErrConflict) {
		t.Errorf("update at a wrong revision: %v", err)
	}
	// Enough writes to compact the arena several times over.
	big := bytes.Repeat([]byte("x"), 4096)
	for i := range 5000 {
		e, _ := s.Get(ctx, "a")
		v := append(fmt.Appendf(nil, "%d:", i), big...)
		if rev, err = s.Update(ctx, "a", v, e.Rev); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, fmt.Sprint("k", i%10), v); err != nil {
			t.Fatal(err)
		}
	}
	if string(held.Value) != "first" {
		t.Errorf("a value handed out changed to %.10q", held.Value)
	}
	e, _ := s.Get(ctx, "a")
	if e.Rev != rev || !bytes.HasPrefix(e.Value, []byte("4999:")) || len(e.Value) != 5+4096 {
		t.Errorf("a = %.10q at %d, want 4999:... at %d", e.Value, e.Rev, rev)
	}
	if s.bytes > 2*s.live+4*chunkSize {
		t.Errorf("arena of %d bytes for %d live: not compacted", s.bytes, s.live)
	}
	for i := range 10 {
		if e, err := s.Get(ctx, fmt.Sprint("k", i)); err != nil || !bytes.HasPrefix(e.Value, fmt.Appendf(nil, "%d:", 4990+i)) {
			t.Errorf("k%d = %.10q %v", i, e.Value, err)
		}
	}
	if s.Len() != 11 {
		t.Errorf("Len = %d, want 11", s.Len())
	}
	// Delete at a wrong revision fails; at the right one the key is free.
	if err := s.Delete(ctx, "a", rev+1); !errors.Is(err, ErrConflict) {
		t.Errorf("delete at a wrong revision: %v", err)
	}
	if err := s.Delete(ctx, "a", rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", []byte("new")); err != nil {
		t.Errorf("create after delete: %v", err)
	}
	// An hour after its last write an entry is gone.
	c.add(time.Hour)
	entries := make([]Entry, 2)
	if err := s.GetMany(ctx, []string{"a", "k1"}, entries); err != nil || entries[0].Value != nil || entries[1].Value != nil || entries[0].Rev != 0 {
		t.Errorf("after the ttl: %+v %v", entries, err)
	}
	w := []Write{{Key: "a", Value: []byte("v"), Rev: 0}, {Key: "b", Value: []byte("v"), Rev: 3}}
	s.Apply(ctx, w)
	if w[0].Err != nil || w[0].NewRev == 0 || !errors.Is(w[1].Err, ErrConflict) {
		t.Errorf("apply: %+v", w)
	}
}
