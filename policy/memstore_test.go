package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestMemoryStoreModel runs random operations on few keys, with entries
// expiring, against a map: whatever moves in the table as entries are
// deleted, expire and the table grows, every read agrees with the map.
func TestMemoryStoreModel(t *testing.T) {
	for _, c := range []struct {
		keys, pad int
		ttl       time.Duration
	}{
		{40, 0, time.Minute}, {90, 0, time.Minute}, {300, 0, time.Minute},
		// Enough keys to fill the table while some have expired: it drops
		// them all at once, and grows only when that is not enough.
		{2000, 0, 10 * time.Second},
		{300, 6000, 24 * time.Hour},
	} {
		// Values of up to pad bytes more fill chunks of the arena, and
		// small values that stay make compaction move them.
		t.Run(fmt.Sprint(c.keys, " keys, ", c.pad, " bytes"), func(t *testing.T) { testMemoryStoreModel(t, c.keys, c.pad, c.ttl) })
	}
}

func testMemoryStoreModel(t *testing.T, nkeys, pad int, ttl time.Duration) {
	ctx := context.Background()
	c := newClock()
	s := NewMemoryStore(ttl)
	s.now = c.now
	type entry struct {
		value string
		rev   uint64
		exp   time.Time
	}
	model := map[string]entry{}
	live := func(k string) (entry, bool) {
		e, ok := model[k]
		if ok && !c.now().Before(e.exp) {
			delete(model, k)
			ok = false
		}
		return e, ok
	}
	rng := rand.New(rand.NewPCG(1, 2))
	written := func(k, v string, rev uint64) {
		// The store rounds expiry up to the second; the clock moves in
		// whole seconds.
		model[k] = entry{v, rev, c.now().Add(ttl)}
	}
	for i := range 200_000 {
		if i%50 == 0 {
			c.add(time.Second)
		}
		k := fmt.Sprint("k", rng.IntN(nkeys))
		v := fmt.Sprint(i)
		if pad > 0 {
			v += strings.Repeat("v", rng.IntN(pad))
			if i%20 == 0 {
				// A key written once, whose value stays.
				cold := fmt.Sprint("c", i)
				rev, _ := s.Put(ctx, cold, []byte(cold))
				written(cold, cold, rev)
			}
		}
		want, ok := live(k)
		switch op := rng.IntN(6); op {
		case 0:
			rev, err := s.Create(ctx, k, []byte(v))
			if ok != errors.Is(err, ErrExists) {
				t.Fatalf("op %d: create %s: %v, present %v", i, k, err, ok)
			}
			if err == nil {
				written(k, v, rev)
			}
		case 1:
			rev, err := s.Update(ctx, k, []byte(v), want.rev)
			if ok != (err == nil) {
				t.Fatalf("op %d: update %s: %v, present %v", i, k, err, ok)
			}
			if err == nil {
				written(k, v, rev)
			}
		case 2:
			err := s.Delete(ctx, k, want.rev)
			if ok != (err == nil) {
				t.Fatalf("op %d: delete %s: %v, present %v", i, k, err, ok)
			}
			delete(model, k)
		case 3:
			rev, _ := s.Put(ctx, k, []byte(v))
			written(k, v, rev)
		case 4:
			e, err := s.Get(ctx, k)
			if ok != (err == nil) || ok && (string(e.Value) != want.value || e.Rev != want.rev) {
				t.Fatalf("op %d: get %s = %.40q at %d, %v; want %.40q at %d, present %v", i, k, e.Value, e.Rev, err, want.value, want.rev, ok)
			}
		case 5:
			// A decision: read keys, maybe see another write meanwhile,
			// write the keys at the revisions read (the places GetMany
			// found spare Apply a search, while they hold).
			// Up to 12 keys: more than GetMany loads at once.
			keys := []string{k}
			for range rng.IntN(12) {
				keys = append(keys, fmt.Sprint("k", rng.IntN(nkeys)))
			}
			keys = slices.Compact(slices.Sorted(slices.Values(keys)))
			entries := make([]Entry, len(keys))
			if err := s.GetMany(ctx, keys, entries); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				other := fmt.Sprint("k", rng.IntN(nkeys))
				if rng.IntN(2) == 0 {
					rev, _ := s.Put(ctx, other, []byte(v))
					written(other, v, rev)
				} else if e, err := s.Get(ctx, other); err == nil {
					if s.Delete(ctx, other, e.Rev) == nil {
						delete(model, other)
					}
				}
			}
			if rng.IntN(4) == 0 {
				c.add(time.Second) // may expire what was read
			}
			ws := make([]Write, len(keys))
			for j, key := range keys {
				ws[j] = Write{Key: key, Value: []byte(v), Rev: entries[j].Rev, place: entries[j].place}
			}
			s.Apply(ctx, ws)
			for j, w := range ws {
				cur, ok := live(w.Key)
				var rev uint64
				if ok {
					rev = cur.rev
				}
				if (w.Err == nil) != (rev == w.Rev) {
					t.Fatalf("op %d: apply %s at %d: %v; the key is at %d", i, w.Key, w.Rev, w.Err, rev)
				}
				if w.Err == nil {
					written(keys[j], v, w.NewRev)
				}
			}
		}
		if i%1000 == 0 {
			checkTable(t, s)
			checkArena(t, s)
		}
	}
	// Every key at the end, in one read.
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	entries := make([]Entry, len(keys))
	if err := s.GetMany(ctx, keys, entries); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, k := range keys {
		want, ok := live(k)
		if ok {
			n++
		}
		if got := entries[i]; (got.Value != nil) != ok || ok && (string(got.Value) != want.value || got.Rev != want.rev) {
			t.Errorf("%s = %.40q at %d, want %.40q at %d (present %v)", k, got.Value, got.Rev, want.value, want.rev, ok)
		}
	}
	// And those written once, whose values compaction moved.
	for k := range model {
		if !strings.HasPrefix(k, "c") {
			continue
		}
		want, ok := live(k)
		if e, err := s.Get(ctx, k); ok && (err != nil || string(e.Value) != want.value || e.Rev != want.rev) {
			t.Fatalf("%s = %.40q at %d, %v; want %.40q at %d", k, e.Value, e.Rev, err, want.value, want.rev)
		}
		n++
	}
	if s.Len() < n {
		t.Errorf("Len = %d, fewer than the %d live keys", s.Len(), n)
	}
}

// checkTable checks that a search finds every entry of s's table where it
// is, and that s counts them all.
func checkTable(t *testing.T, s *MemoryStore) {
	t.Helper()
	n := 0
	for i, e := range s.table {
		if e.key == (memKey{}) {
			continue
		}
		n++
		if at, _ := s.find(e.key); at != i {
			t.Fatalf("the entry at %d of %d is found at %d", i, len(s.table), at)
		}
	}
	if n != s.n {
		t.Fatalf("%d entries in the table, %d counted", n, s.n)
	}
}

// checkArena checks the arena's counts against the entries' values, and
// that it is compacted.
func checkArena(t *testing.T, s *MemoryStore) {
	t.Helper()
	live := make([]int, len(s.arena))
	total := 0
	for _, e := range s.table {
		if e.size() == 0 {
			continue
		}
		c := int(e.off / chunkSize)
		if s.arena[c] == nil {
			t.Fatalf("a value in chunk %d, given up", c)
		}
		live[c] += e.size()
		total += e.size()
	}
	bytes := 0
	for c, chunk := range s.arena {
		bytes += len(chunk)
		if live[c] != s.chunkLive[c] {
			t.Fatalf("chunk %d: %d bytes live, %d counted", c, live[c], s.chunkLive[c])
		}
		if chunk != nil && live[c] == 0 && c != s.tail {
			t.Fatalf("chunk %d: nothing live, kept", c)
		}
	}
	if total != s.live || bytes != s.bytes {
		t.Fatalf("%d bytes live in %d, counted %d in %d", total, bytes, s.live, s.bytes)
	}
	if s.bytes > 2*s.live+6*chunkSize {
		t.Fatalf("an arena of %d bytes for %d live", s.bytes, s.live)
	}
}

// TestMemoryStoreArena: chunks whose values all died are given up, also
// one that was being appended to; a store whose live values shrink is
// compacted to their size; values too large for a chunk are refused; an
// empty value is a value.
func TestMemoryStoreArena(t *testing.T) {
	ctx := context.Background()
	t.Run("tail died", func(t *testing.T) {
		s := NewMemoryStore(time.Hour)
		v := bytes.Repeat([]byte("v"), 100<<10)
		for range 11 {
			if _, err := s.Put(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
		}
		checkArena(t, s)
		if len(s.arena)-len(s.given) > 2 {
			t.Errorf("%d chunks kept for one value", len(s.arena)-len(s.given))
		}
	})
	t.Run("live shrinks", func(t *testing.T) {
		s := NewMemoryStore(time.Hour)
		v := bytes.Repeat([]byte("v"), 50<<10)
		revs := make([]uint64, 2000)
		for i := range revs {
			revs[i], _ = s.Put(ctx, fmt.Sprint("k", i), v)
		}
		del := func(keep func(i int) bool) {
			for i, rev := range revs {
				if rev != 0 && !keep(i) {
					if err := s.Delete(ctx, fmt.Sprint("k", i), rev); err != nil {
						t.Fatal(err)
					}
					revs[i] = 0
				}
			}
		}
		del(func(i int) bool { return i%2 == 0 })
		s.Put(ctx, "compact", nil) // a write compacts
		// One value left of each chunk's twenty, then small writes.
		del(func(i int) bool { return i%40 == 0 })
		for i := range 1000 {
			s.Put(ctx, fmt.Sprint("small", i), []byte("s"))
		}
		checkArena(t, s)
	})
	t.Run("too large", func(t *testing.T) {
		s := NewMemoryStore(time.Hour)
		big := make([]byte, chunkSize+1)
		if _, err := s.Put(ctx, "big", big); err == nil {
			t.Error("Put of more than a chunk")
		}
		if _, err := s.Create(ctx, "big", big); err == nil {
			t.Error("Create of more than a chunk")
		}
		w := []Write{{Key: "big", Value: big}, {Key: "ok", Value: []byte("v")}}
		s.Apply(ctx, w)
		if w[0].Err == nil || w[1].Err != nil {
			t.Errorf("apply: %v, %v", w[0].Err, w[1].Err)
		}
		if _, err := s.Get(ctx, "big"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a refused value stored: %v", err)
		}
		if _, err := s.Put(ctx, "full", big[:chunkSize]); err != nil {
			t.Fatal(err)
		}
		if e, err := s.Get(ctx, "full"); err != nil || len(e.Value) != chunkSize {
			t.Errorf("a value of a whole chunk: %d bytes, %v", len(e.Value), err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := NewMemoryStore(time.Hour)
		rev, err := s.Put(ctx, "e", []byte{})
		if err != nil {
			t.Fatal(err)
		}
		if e, err := s.Get(ctx, "e"); err != nil || e.Value == nil || len(e.Value) != 0 || e.Rev != rev {
			t.Errorf("empty value: %q (nil %v) at %d, %v", e.Value, e.Value == nil, e.Rev, err)
		}
		if err := s.Delete(ctx, "e", rev); err != nil {
			t.Fatal(err)
		}
		checkArena(t, s)
	})
}
