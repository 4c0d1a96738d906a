package policy

import (
	"context"
	"errors"
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
	// place is where a MemoryStore found the entry, for a write that
	// follows (Write.place).
	place memPlace
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
	// place is the place of Key's Entry as read, if a MemoryStore read
	// it: it spares the write a search.
	place memPlace
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
