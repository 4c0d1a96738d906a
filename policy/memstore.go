package policy

import (
	"context"
	"errors"
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
// memory: an open-addressing table (linear probing, deletion by moving
// back the entries after, so no tombstones) of 128-bit key hashes holds
// each entry's revision, expiry (in whole seconds, rounded up) and where
// its value is. Values, of at most 1 MiB, are in an arena of 1 MiB chunks
// that is only ever appended to (a value handed out is never written
// over): a chunk whose values are all dead is given up, and when a third
// of the arena is dead (and an eighth more than the last compaction
// left), the live values of the chunks at most 2/3 live move to the end,
// so that long-lived values are not copied over and over. Entries whose
// time is over go when they are read, and all at once when the table is
// 3/4 full: it doubles only when what is left takes more than 5/8 of it,
// so that a store that holds a day of traffic keeps its size.
type MemoryStore struct {
	ttl         time.Duration
	now         func() time.Time
	seed, seed2 maphash.Seed

	mu    sync.Mutex
	rev   uint64
	table []memEntry // a power of two long, at most 3/4 used
	n     int        // entries
	// arena holds the values in chunks: one that fills up is not copied
	// to grow, a new one follows it. A chunk given up is nil, and its
	// number is taken by the next new chunk.
	arena     [][]byte
	chunkLive []int // bytes of each chunk that entries use
	given     []int // numbers of the chunks given up
	tail      int   // the chunk values are appended to (when arena is not empty)
	bytes     int   // bytes written in the chunks not given up
	live      int   // bytes that entries use
	// deadKept is what a compaction left dead in chunks that are mostly
	// live (less what left with chunks given up since): the next one
	// waits until an eighth of the arena more is dead.
	deadKept int
	// shifts counts the times entries moved or left (drop, grow): a
	// memPlace from before is stale.
	shifts uint64
	// touched keeps what GetMany loads ahead, so that the loads are
	// made.
	touched uint64
}

// memKey is a key's 128-bit hash; its second half is never 0, so that the
// zero memKey marks an empty entry.
type memKey [2]uint64

// memPlace is where GetMany found a key's entry (at), or where it would go
// (free, at is -1), for a write that follows. Entries added since move
// none: it holds while no entry moved or left (shifts) and the place is
// still the key's, or still empty. A Write carries the place of the
// Entry read for its own Key, from the same store (store); Apply trusts
// it to be the place of that key.
type memPlace struct {
	store    *MemoryStore // nil: no place
	key      memKey
	at, free int32
	shifts   uint64
}

// memEntry is one entry of the table, 32 bytes: empty (zero key) or
// live.
type memEntry struct {
	key memKey
	// meta is the revision (its high 40 bits), jobFlag, and the value's
	// length (its low 23 bits).
	meta uint64
	off  uint32 // the value is at offset off%chunkSize of chunk off/chunkSize
	exp  uint32 // unix second from which the entry is gone
}

const (
	revShift = 24
	sizeMask = 1<<23 - 1
)

func (e *memEntry) rev() uint64 { return e.meta >> revShift }
func (e *memEntry) size() int   { return int(e.meta & sizeMask) }

// expired reports whether the entry is gone at now (unix nanoseconds).
func (e *memEntry) expired(now int64) bool { return int64(e.exp)*int64(time.Second) <= now }

// chunkSize is the size of an arena chunk: a value (at most 64 KiB in a
// policy bucket) never spans two, and 4096 chunks make 4 GiB of offsets.
const chunkSize = 1 << 20

// maxValue is the longest value a MemoryStore keeps: a chunk.
const maxValue = chunkSize

var errTooLarge = errors.New("policy store: value larger than 1 MiB")

// jobFlag marks in memEntry.meta the entry of a job record (so that a
// benchmark can tell them apart).
const jobFlag = 1 << 23

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

// find returns the index of k's entry, or -1 and the index where k would
// go.
func (s *MemoryStore) find(k memKey) (at, free int) {
	mask := len(s.table) - 1
	for i := int(k[0]) & mask; ; i = (i + 1) & mask {
		switch s.table[i].key {
		case k:
			return i, -1
		case memKey{}:
			return -1, i
		}
	}
}

// get returns the index of k's live, unexpired entry, or -1 and where k
// would go.
func (s *MemoryStore) get(k memKey, now int64) (at, free int) {
	at, free = s.find(k)
	if at >= 0 && s.table[at].expired(now) {
		s.drop(at)
		return s.find(k)
	}
	return at, free
}

// drop deletes entry i, moving back into its place the entries after it
// that a search would no longer find past an empty one (Knuth's
// algorithm R): entries may move.
func (s *MemoryStore) drop(i int) {
	s.kill(&s.table[i])
	s.n--
	s.shifts++
	mask := len(s.table) - 1
	for j := (i + 1) & mask; s.table[j].key != (memKey{}); j = (j + 1) & mask {
		// The entry at j stays unless its home h is not cyclically in
		// (i, j]: then a search for it would stop at i.
		h := int(s.table[j].key[0]) & mask
		if (i < j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			s.table[i] = s.table[j]
			i = j
		}
	}
	s.table[i] = memEntry{}
}

func (s *MemoryStore) value(e *memEntry) []byte {
	if e.size() == 0 {
		return []byte{} // present, and empty
	}
	c, off := e.off/chunkSize, e.off%chunkSize
	end := off + uint32(e.size())
	return s.arena[c][off:end:end]
}

// lookup returns key's entry (a nil value when it has none), its hash and
// its place.
func (s *MemoryStore) lookup(key string, now int64) (memKey, Entry, int, int) {
	k := s.key(key)
	at, free := s.get(k, now)
	return k, s.entry(k, at, free), at, free
}

// entry returns the entry of the key whose hash is k, found at at, or
// absent (at -1) and to go at free; with its place, for Apply.
func (s *MemoryStore) entry(k memKey, at, free int) Entry {
	e := Entry{place: memPlace{store: s, key: k, at: int32(at), free: int32(free), shifts: s.shifts}}
	if at >= 0 {
		e.Value, e.Rev = s.value(&s.table[at]), s.table[at].rev()
	}
	return e
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
	// The keys' places are far apart in a large table: load those of
	// maxTouch keys at once, so that the processor waits for memory once
	// rather than once per key, then look each up.
	for len(keys) > 0 {
		var ks [maxTouch]memKey
		n := min(len(keys), maxTouch)
		mask := len(s.table) - 1
		for i, key := range keys[:n] {
			ks[i] = s.key(key)
		}
		// Apart from the hashing: loads one after another overlap (400 ns
		// a decision slower when each followed its hash).
		var t uint64
		for _, k := range ks[:n] {
			t += s.table[int(k[0])&mask].meta
		}
		s.touched = t
		for i, k := range ks[:n] {
			at, free := s.get(k, now)
			entries[i] = s.entry(k, at, free)
		}
		keys, entries = keys[n:], entries[n:]
	}
	return nil
}

// placed returns what lookup does for the write w, from the place where
// GetMany found its key, if that place still holds.
func (s *MemoryStore) placed(w *Write, now int64) (k memKey, rev uint64, at, free int, ok bool) {
	p := w.place
	if p.store != s || p.shifts != s.shifts || int(max(p.at, p.free)) >= len(s.table) {
		return k, 0, 0, 0, false
	}
	if p.at >= 0 {
		e := &s.table[p.at]
		if e.key != p.key || e.expired(now) {
			return k, 0, 0, 0, false
		}
		return p.key, e.rev(), int(p.at), -1, true
	}
	if s.table[p.free].key != (memKey{}) {
		return k, 0, 0, 0, false // taken since
	}
	return p.key, 0, -1, int(p.free), true
}

// maxTouch is how many keys' places GetMany loads at once (a decision
// reads five).
const maxTouch = 8

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, key string, value []byte) (uint64, error) {
	if len(value) > maxValue {
		return 0, errTooLarge
	}
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
	if len(value) > maxValue {
		return 0, errTooLarge
	}
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
		if len(w.Value) > maxValue {
			w.NewRev, w.Err = 0, errTooLarge
			continue
		}
		k, rev, at, free, ok := s.placed(w, now)
		if !ok {
			var e Entry
			k, e, at, free = s.lookup(w.Key, now)
			rev = e.Rev
		}
		if rev != w.Rev {
			w.NewRev, w.Err = 0, ErrConflict
			continue
		}
		w.NewRev, w.Err = s.put(k, at, free, w.Key, w.Value, now), nil
	}
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, value []byte) (uint64, error) {
	if len(value) > maxValue {
		return 0, errTooLarge
	}
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
		e := &s.table[at]
		s.kill(e)
		e.meta &^= sizeMask // being written
	} else {
		s.n++
		s.table[free] = memEntry{key: k}
		at = free
	}
	s.compact()
	meta := s.rev<<revShift | uint64(len(value))
	if strings.HasPrefix(key, jobPrefix) {
		meta |= jobFlag
	}
	e := &s.table[at]
	e.off = s.store(value)
	e.meta = meta
	// Expiry in whole seconds, rounded up.
	e.exp = uint32((now + int64(s.ttl) + int64(time.Second) - 1) / int64(time.Second))
	if s.n > len(s.table)/4*3 {
		s.grow(now)
	}
	return s.rev
}

// grow drops the entries whose time is over, and moves the others to a
// table twice as long if they still take more than 5/8 of it.
func (s *MemoryStore) grow(now int64) {
	for i := 0; i < len(s.table); {
		if e := &s.table[i]; e.key != (memKey{}) && e.expired(now) {
			s.drop(i) // another entry may have moved to i
			continue
		}
		i++
	}
	if s.n <= len(s.table)/8*5 {
		return
	}
	s.shifts++
	old := s.table
	s.table = make([]memEntry, 2*len(old))
	for _, e := range old {
		if e.key != (memKey{}) {
			s.insert(e)
		}
	}
}

// insert puts e, whose key the table does not hold, in the first empty
// place from its home.
func (s *MemoryStore) insert(e memEntry) {
	mask := len(s.table) - 1
	i := int(e.key[0]) & mask
	for s.table[i].key != (memKey{}) {
		i = (i + 1) & mask
	}
	s.table[i] = e
}

// store appends v to the arena and returns its offset.
func (s *MemoryStore) store(v []byte) uint32 {
	if len(s.arena) == 0 || len(s.arena[s.tail])+len(v) > chunkSize {
		if len(s.arena) > 0 && s.chunkLive[s.tail] == 0 {
			s.giveUp(s.tail) // its values died while it was the tail
		}
		if n := len(s.given); n > 0 {
			s.tail, s.given = s.given[n-1], s.given[:n-1]
		} else {
			s.tail = len(s.arena)
			s.arena = append(s.arena, nil)
			s.chunkLive = append(s.chunkLive, 0)
		}
		s.arena[s.tail] = make([]byte, 0, chunkSize)
	}
	c := &s.arena[s.tail]
	off := uint32(s.tail*chunkSize + len(*c))
	*c = append(*c, v...)
	s.bytes += len(v)
	s.live += len(v)
	s.chunkLive[s.tail] += len(v)
	return off
}

// kill counts e's value dead, and gives up its chunk if that was the last
// live value of a chunk that is not the tail.
func (s *MemoryStore) kill(e *memEntry) {
	n := e.size()
	if n == 0 {
		return
	}
	c := int(e.off / chunkSize)
	s.live -= n
	if s.chunkLive[c] -= n; s.chunkLive[c] == 0 && c != s.tail {
		s.giveUp(c)
	}
}

// giveUp drops chunk c from the arena. Values handed out stay in it.
func (s *MemoryStore) giveUp(c int) {
	s.deadKept = max(0, s.deadKept-(len(s.arena[c])-s.chunkLive[c]))
	s.bytes -= len(s.arena[c])
	s.arena[c] = nil
	s.chunkLive[c] = 0
	s.given = append(s.given, c)
}

// compact moves the live values of the chunks at most 2/3 live to the end
// of the arena when dead ones take a third of it, and gives those chunks
// up. It copies at most two bytes for each byte it frees.
func (s *MemoryStore) compact() {
	dead := s.bytes - s.live
	if s.bytes < 4*chunkSize || 3*dead < s.bytes || dead < s.deadKept+s.bytes/8 {
		return
	}
	evacuate := make([]bool, len(s.arena))
	for c, chunk := range s.arena {
		evacuate[c] = chunk != nil && c != s.tail && s.chunkLive[c] <= 2*len(chunk)/3
	}
	for i := range s.table {
		e := &s.table[i]
		if e.size() == 0 {
			continue // empty, empty value, or being written
		}
		if c := int(e.off / chunkSize); c < len(evacuate) && evacuate[c] {
			off := e.off % chunkSize
			s.live -= e.size() // store counts it again
			e.off = s.store(s.arena[c][off : off+uint32(e.size())])
		}
	}
	for c, ev := range evacuate {
		if ev && c != s.tail {
			s.giveUp(c)
		}
	}
	s.deadKept = s.bytes - s.live
}
