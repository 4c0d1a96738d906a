package policy

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory, for a single process (tests,
// benchmarks). It is safe for concurrent use.
//
// It holds no pointer per entry, so that a million entries cost the
// garbage collector nothing to scan, and finds an entry in one place of
// memory: an open-addressing table of 128-bit key hashes holds each
// entry's revision, expiry and where its value is; values are in an arena
// that is only ever appended to (a value handed out is never written over)
// and compacted when a third of it is dead.
type MemoryStore struct {
	ttl         time.Duration
	now         func() time.Time
	seed, seed2 maphash.Seed

	mu    sync.Mutex
	rev   uint64
	table []memEntry // a power of two long, at most 3/4 used
	used  int        // entries live or deleted (tombstones)
	n     int        // entries live
	// arena holds the values in chunks: one that fills up is not copied
	// to grow, a new one follows it.
	arena [][]byte
	bytes int // bytes of the arena written
	live  int // bytes of the arena that entries use
}

// memKey is a key's 128-bit hash; its second half is never 0, so that the
// zero memKey marks an empty entry.
type memKey [2]uint64

// memEntry is one entry of the table: empty (zero key), deleted (rev 0),
// or live.
type memEntry struct {
	key     memKey
	rev     uint64
	expires int64  // unix nanoseconds
	off     uint32 // the value is at offset off%chunkSize of chunk off/chunkSize, n&^jobFlag bytes
	n       uint32
}

// chunkSize is the size of an arena chunk: a value (at most 64 KiB in a
// policy bucket) never spans two, and 4096 chunks make 4 GiB of offsets.
const chunkSize = 1 << 20

// jobFlag marks in memEntry.n the entry of a job record (so that a
// benchmark can tell them apart).
const jobFlag = 1 << 31

// NewMemoryStore returns a MemoryStore whose entries expire ttl after their
// last write.
func NewMemoryStore(ttl time.Duration) *MemoryStore {
	return &MemoryStore{ttl: ttl, now: time.Now, seed: maphash.MakeSeed(), seed2: maphash.MakeSeed(), table: make([]memEntry, 64)}
}

// Len returns the number of entries (some may have expired unread).
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *MemoryStore) key(key string) memKey {
	return memKey{maphash.String(s.seed, key), maphash.String(s.seed2, key) | 1}
}

// find returns the index of k's live entry, or -1 and the index where k
// would go.
func (s *MemoryStore) find(k memKey) (at, free int) {
	mask := len(s.table) - 1
	free = -1
	for i := int(k[0]) & mask; ; i = (i + 1) & mask {
		e := &s.table[i]
		switch {
		case e.key == k && e.rev != 0:
			return i, -1
		case e.key == (memKey{}):
			if free < 0 {
				free = i
			}
			return -1, free
		case e.rev == 0 && free < 0:
			free = i // a tombstone to reuse
		}
	}
}

// get returns the index of k's live, unexpired entry, or -1 and where k
// would go.
func (s *MemoryStore) get(k memKey, now int64) (at, free int) {
	at, free = s.find(k)
	if at >= 0 && s.table[at].expires <= now {
		s.drop(at)
		return s.find(k)
	}
	return at, free
}

func (s *MemoryStore) drop(i int) {
	e := &s.table[i]
	s.live -= int(e.n &^ jobFlag)
	e.rev = 0 // a tombstone: probes go on past it
	s.n--
}

func (s *MemoryStore) value(e *memEntry) []byte {
	if e.n&^jobFlag == 0 {
		return []byte{} // present, and empty
	}
	c, off := e.off/chunkSize, e.off%chunkSize
	end := off + e.n&^jobFlag
	return s.arena[c][off:end:end]
}

// lookup returns key's entry (a nil value when it has none), its hash and
// its place.
func (s *MemoryStore) lookup(key string, now int64) (memKey, Entry, int, int) {
	k := s.key(key)
	at, free := s.get(k, now)
	if at < 0 {
		return k, Entry{}, at, free
	}
	e := &s.table[at]
	return k, Entry{Value: s.value(e), Rev: e.rev}, at, free
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, at, _ := s.lookup(key, s.now().UnixNano())
	if at < 0 {
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
		_, entries[i], _, _ = s.lookup(key, now)
	}
	return nil
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	k, _, at, free := s.lookup(key, now)
	if at >= 0 {
		return 0, ErrExists
	}
	return s.put(k, at, free, key, value, now), nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	k, e, at, free := s.lookup(key, now)
	if at < 0 || e.Rev != rev {
		return 0, ErrConflict
	}
	return s.put(k, at, free, key, value, now), nil
}

// Apply implements Store.
func (s *MemoryStore) Apply(_ context.Context, writes []Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	for i := range writes {
		w := &writes[i]
		k, e, at, free := s.lookup(w.Key, now)
		if e.Rev != w.Rev {
			w.NewRev, w.Err = 0, ErrConflict
			continue
		}
		w.NewRev, w.Err = s.put(k, at, free, w.Key, w.Value, now), nil
	}
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	k, _, at, free := s.lookup(key, now)
	return s.put(k, at, free, key, value, now), nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e, at, _ := s.lookup(key, s.now().UnixNano())
	if at < 0 || e.Rev != rev {
		return ErrConflict
	}
	s.drop(at)
	return nil
}

// put stores value for key (k its hash), at its live entry at, or in the
// free entry free.
func (s *MemoryStore) put(k memKey, at, free int, key string, value []byte, now int64) uint64 {
	s.rev++
	if at >= 0 {
		s.live -= int(s.table[at].n &^ jobFlag)
		s.table[at].n = 0 // its old value is dead
	} else {
		if s.table[free].key == (memKey{}) {
			s.used++ // not a tombstone reused
		}
		s.n++
		s.table[free] = memEntry{key: k}
		at = free
	}
	s.compact()
	n := uint32(len(value))
	if strings.HasPrefix(key, jobPrefix) {
		n |= jobFlag
	}
	e := &s.table[at]
	e.rev, e.expires, e.off, e.n = s.rev, now+int64(s.ttl), s.store(value), n
	s.live += len(value)
	if s.used > len(s.table)/4*3 {
		s.resize()
	}
	return s.rev
}

// resize moves the live entries to a table twice as long, or as long when
// tombstones take the room.
func (s *MemoryStore) resize() {
	size := len(s.table)
	if s.n > size/2 {
		size *= 2
	}
	old := s.table
	s.table, s.used = make([]memEntry, size), s.n
	mask := size - 1
	for _, e := range old {
		if e.rev == 0 {
			continue
		}
		i := int(e.key[0]) & mask
		for s.table[i].key != (memKey{}) {
			i = (i + 1) & mask
		}
		s.table[i] = e
	}
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
	s.bytes += len(v)
	return off
}

// compact moves the live values to new chunks when dead ones take a third
// of the arena. Values handed out stay in the old ones.
func (s *MemoryStore) compact() {
	if s.bytes < 4*chunkSize || s.bytes < s.live+s.live/2 {
		return
	}
	old := s.arena
	s.arena, s.bytes = nil, 0
	for i := range s.table {
		e := &s.table[i]
		if e.rev == 0 || e.n == 0 {
			continue // empty, deleted, or being written
		}
		c, off := e.off/chunkSize, e.off%chunkSize
		e.off = s.store(old[c][off : off+e.n&^jobFlag])
	}
}
