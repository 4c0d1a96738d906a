package policy

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory, for a single process (tests,
// benchmarks). It is safe for concurrent use.
//
// It holds no pointer per entry, so that a million entries cost the
// garbage collector nothing to scan: keys are kept as 128-bit hashes,
// values in one arena that is only ever appended to (a value handed out
// is never written over) and compacted when most of it is dead.
type MemoryStore struct {
	ttl         time.Duration
	now         func() time.Time
	seed, seed2 maphash.Seed

	mu    sync.Mutex
	rev   uint64
	index map[memKey]uint32 // key -> slot
	slots []memSlot
	free  []uint32 // unused slots
	// arena holds the values in chunks: one that fills up is not copied
	// to grow, a new one follows it.
	arena [][]byte
	used  int // bytes of the arena written
	live  int // bytes of the arena that slots use
}

// memKey is a key's 128-bit hash.
type memKey [2]uint64

type memSlot struct {
	rev     uint64
	expires int64  // unix nanoseconds
	off     uint32 // the value is at offset off%chunkSize of chunk off/chunkSize, n&^jobFlag bytes
	n       uint32
}

// chunkSize is the size of an arena chunk: a value (at most 64 KiB in a
// policy bucket) never spans two, and 4096 chunks make 4 GiB of offsets.
const chunkSize = 1 << 20

// jobFlag marks in memSlot.n the slot of a job record (see jobs).
const jobFlag = 1 << 31

// NewMemoryStore returns a MemoryStore whose entries expire ttl after their
// last write.
func NewMemoryStore(ttl time.Duration) *MemoryStore {
	return &MemoryStore{ttl: ttl, now: time.Now, seed: maphash.MakeSeed(), seed2: maphash.MakeSeed(), index: map[memKey]uint32{}}
}

// Len returns the number of entries (some may have expired unread).
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

func (s *MemoryStore) key(key string) memKey {
	return memKey{maphash.String(s.seed, key), maphash.String(s.seed2, key)}
}

// get returns key's slot, if it has a live one.
func (s *MemoryStore) get(k memKey, now int64) (uint32, bool) {
	i, ok := s.index[k]
	if ok && s.slots[i].expires <= now {
		s.drop(k, i)
		return 0, false
	}
	return i, ok
}

func (s *MemoryStore) drop(k memKey, i uint32) {
	s.live -= int(s.slots[i].n &^ jobFlag)
	s.slots[i] = memSlot{}
	s.free = append(s.free, i)
	delete(s.index, k)
}

func (s *MemoryStore) entry(i uint32) Entry {
	sl := s.slots[i]
	return Entry{Value: s.value(sl), Rev: sl.rev}
}

func (s *MemoryStore) value(sl memSlot) []byte {
	c, off := sl.off/chunkSize, sl.off%chunkSize
	end := off + sl.n&^jobFlag
	return s.arena[c][off:end:end]
}

// store appends v to the arena and returns its offset.
func (s *MemoryStore) store(v []byte) uint32 {
	n := len(s.arena)
	if n == 0 || len(s.arena[n-1])+len(v) > chunkSize {
		s.arena = append(s.arena, make([]byte, 0, chunkSize))
		n++
	}
	c := &s.arena[n-1]
	off := uint32((n-1)*chunkSize + len(*c))
	*c = append(*c, v...)
	s.used += len(v)
	return off
}

// lookup returns key's entry (a nil value when it has none) and its slot.
func (s *MemoryStore) lookup(key string, now int64) (memKey, Entry, slot) {
	k := s.key(key)
	i, ok := s.get(k, now)
	if !ok {
		return k, Entry{}, slot{}
	}
	return k, s.entry(i), slot{i, true}
}

// slot is the slot of a key, if it has one.
type slot struct {
	i  uint32
	ok bool
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, at := s.lookup(key, s.now().UnixNano())
	if !at.ok {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// GetMany implements Store.
func (s *MemoryStore) GetMany(_ context.Context, keys []string, entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	for i, key := range keys {
		_, entries[i], _ = s.lookup(key, now)
	}
	return nil
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	k, _, at := s.lookup(key, now)
	if at.ok {
		return 0, ErrExists
	}
	return s.put(k, at, key, value, now), nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	k, e, at := s.lookup(key, now)
	if !at.ok || e.Rev != rev {
		return 0, ErrConflict
	}
	return s.put(k, at, key, value, now), nil
}

// Apply implements Store.
func (s *MemoryStore) Apply(_ context.Context, writes []Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	for i := range writes {
		w := &writes[i]
		k, e, at := s.lookup(w.Key, now)
		if e.Rev != w.Rev {
			w.NewRev, w.Err = 0, ErrConflict
			continue
		}
		w.NewRev, w.Err = s.put(k, at, w.Key, w.Value, now), nil
	}
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, at := s.lookup(key, s.now().UnixNano())
	return s.put(k, at, key, value, s.now().UnixNano()), nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.key(key)
	i, ok := s.get(k, s.now().UnixNano())
	if !ok || s.slots[i].rev != rev {
		return ErrConflict
	}
	s.drop(k, i)
	return nil
}

// put stores value for key (k its hash, at its slot if it has one).
func (s *MemoryStore) put(k memKey, at slot, key string, value []byte, now int64) uint64 {
	s.rev++
	i := at.i
	switch n := len(s.free); {
	case at.ok:
		s.live -= int(s.slots[i].n &^ jobFlag)
		s.slots[i] = memSlot{} // its old value is dead
	case n > 0:
		i, s.free = s.free[n-1], s.free[:n-1]
		s.index[k] = i
	default:
		i = uint32(len(s.slots))
		s.slots = append(s.slots, memSlot{})
		s.index[k] = i
	}
	s.compact()
	n := uint32(len(value))
	if strings.HasPrefix(key, jobPrefix) {
		n |= jobFlag
	}
	s.slots[i] = memSlot{rev: s.rev, expires: now + int64(s.ttl), off: s.store(value), n: n}
	s.live += len(value)
	return s.rev
}

// compact moves the live values to new chunks when dead ones take a third
// of the arena. Values handed out stay in the old ones.
func (s *MemoryStore) compact() {
	if s.used < 4*chunkSize || s.used < s.live+s.live/2 {
		return
	}
	old := s.arena
	s.arena, s.used = nil, 0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.rev == 0 {
			continue // free
		}
		c, off := sl.off/chunkSize, sl.off%chunkSize
		sl.off = s.store(old[c][off : off+sl.n&^jobFlag])
	}
}

// withoutJobs returns a copy of s without its job records, sized to what
// it holds (benchmarks: what the records of numbers cost).
func (s *MemoryStore) withoutJobs() *MemoryStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &MemoryStore{ttl: s.ttl, now: s.now, seed: s.seed, seed2: s.seed2, rev: s.rev}
	n := 0
	for _, i := range s.index {
		if s.slots[i].n&jobFlag == 0 {
			n++
		}
	}
	c.index = make(map[memKey]uint32, n)
	c.slots = make([]memSlot, 0, n)
	for k, i := range s.index {
		sl := s.slots[i]
		if sl.n&jobFlag != 0 {
			continue
		}
		c.index[k] = uint32(len(c.slots))
		v := s.value(sl)
		sl.off = c.store(v)
		c.slots = append(c.slots, sl)
		c.live += len(v)
	}
	// The last chunk holds only what it was given.
	if n := len(c.arena); n > 0 {
		c.arena[n-1] = slices.Clone(c.arena[n-1])
	}
	return c
}
