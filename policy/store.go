package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors of a Store.
var (
	ErrNotFound = errors.New("policy store: key not found")
	ErrExists   = errors.New("policy store: key exists")
	ErrConflict = errors.New("policy store: revision mismatch")
)

// Entry is a stored value with its revision. GetMany gives an absent key
// a nil Value, and the revision a write must expect (0, or that of the
// key's deletion in a store that keeps one).
type Entry struct {
	Value []byte
	Rev   uint64
}

// Write is one write of Store.Apply: Value for Key, only if the key is at
// Rev (0: absent). Apply sets NewRev, or Err (ErrConflict when the key was
// not at Rev).
type Write struct {
	Key    string
	Value  []byte
	Rev    uint64
	NewRev uint64
	Err    error
}

// Store keeps policy state. Every daemon of a cluster must see the same
// store for limits to hold cluster-wide: queue.KVStore keeps it in a
// JetStream key-value bucket; MemoryStore serves a single process (tests,
// benchmarks). Entries expire a fixed time after their last write.
// Keys match [-/_=.a-zA-Z0-9]+.
type Store interface {
	Get(ctx context.Context, key string) (Entry, error)
	// GetMany reads keys into entries (as many) in one round trip. The
	// values must not be modified.
	GetMany(ctx context.Context, keys []string, entries []Entry) error
	// Apply makes writes in one round trip. They are not atomic: each
	// has its own outcome, in its Err.
	Apply(ctx context.Context, writes []Write)
	// Create stores value only if key does not exist (ErrExists).
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update stores value only if key is at revision rev (ErrConflict).
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Put stores value whatever is there: for a write that replaces the
	// whole value and depends on nothing it held.
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// Delete removes key only if it is at revision rev (ErrConflict).
	Delete(ctx context.Context, key string, rev uint64) error
}

// MemoryStore is a Store in process memory. It is safe for concurrent use.
type MemoryStore struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	rev uint64
	m   map[string]memEntry
}

type memEntry struct {
	value   []byte
	rev     uint64
	expires int64 // unix nanoseconds
}

// NewMemoryStore returns a MemoryStore whose entries expire ttl after their
// last write.
func NewMemoryStore(ttl time.Duration) *MemoryStore {
	return &MemoryStore{ttl: ttl, now: time.Now, m: map[string]memEntry{}}
}

// Len returns the number of live entries.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *MemoryStore) get(key string, now int64) (memEntry, bool) {
	e, ok := s.m[key]
	if ok && e.expires <= now {
		delete(s.m, key)
		return memEntry{}, false
	}
	return e, ok
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key, s.now().UnixNano())
	if !ok {
		return Entry{}, ErrNotFound
	}
	return Entry{Value: e.value, Rev: e.rev}, nil
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	if _, ok := s.get(key, now); ok {
		return 0, ErrExists
	}
	return s.put(key, value, now), nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	if e, ok := s.get(key, now); !ok || e.rev != rev {
		return 0, ErrConflict
	}
	return s.put(key, value, now), nil
}

// GetMany implements Store.
func (s *MemoryStore) GetMany(_ context.Context, keys []string, entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	for i, key := range keys {
		e, _ := s.get(key, now)
		entries[i] = Entry{Value: e.value, Rev: e.rev}
	}
	return nil
}

// Apply implements Store.
func (s *MemoryStore) Apply(_ context.Context, writes []Write) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	for i := range writes {
		w := &writes[i]
		if e, _ := s.get(w.Key, now); e.rev != w.Rev {
			w.NewRev, w.Err = 0, ErrConflict
			continue
		}
		w.NewRev, w.Err = s.put(w.Key, w.Value, now), nil
	}
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(key, value, s.now().UnixNano()), nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.get(key, s.now().UnixNano()); !ok || e.rev != rev {
		return ErrConflict
	}
	delete(s.m, key)
	return nil
}

func (s *MemoryStore) put(key string, value []byte, now int64) uint64 {
	s.rev++
	if _, ok := s.m[key]; !ok {
		key = strings.Clone(key) // the caller's may share a larger string
	}
	s.m[key] = memEntry{value: slices.Clone(value), rev: s.rev, expires: now + int64(s.ttl)}
	return s.rev
}
