package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/policy"
)

// Key-value buckets.
const (
	// BucketPolicy keeps duplicate and rate-limit state (policy.Store).
	BucketPolicy = "simgate_policy"
	// BucketConfig keeps cluster-wide settings: the fingerprint of the
	// policy hash key (never the key).
	BucketConfig = "simgate_config"

	// keyCheckName holds the fingerprint of the cluster's policy hash key.
	keyCheckName = "policy_key_check"
	// legacyHashKeyName held the key itself, readable by any client:
	// removed at start.
	legacyHashKeyName = "policy_hash_key"
)

// KVStore is a policy.Store in a JetStream key-value bucket, shared by every
// daemon connected to the same JetStream domain.
type KVStore struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	// many reads several keys in one request (GetMany).
	many *directGet
}

// OpenPolicyStore creates or binds the policy bucket, of at most maxBytes
// (unbounded when zero; full, it refuses writes, and the policy fails
// closed). Entries expire policy.Retention after their last write.
func OpenPolicyStore(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketPolicy,
		Description:  "simgate: duplicate and rate-limit state (keyed hashes, no numbers)",
		History:      1,
		TTL:          policy.Retention,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		MaxBytes:     limit(maxBytes),
		MaxValueSize: 64 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketPolicy, err)
	}
	// A JetStream context of its own: a write that meets another
	// daemon's is not a failed publish of the daemon's events, which the
	// daemon's context reports.
	writes, err := jetstream.New(js.Conn())
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketPolicy, err)
	}
	many, err := newDirectGet(js.Conn(), "KV_"+BucketPolicy, "$KV."+BucketPolicy+".")
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketPolicy, err)
	}
	return &KVStore{kv: kv, js: writes, many: many}, nil
}

// Close stops the store's reader.
func (s *KVStore) Close() error { return s.many.close() }

// GetMany implements policy.Store: one direct get of the keys' last
// messages.
func (s *KVStore) GetMany(ctx context.Context, keys []string, entries []policy.Entry) error {
	return s.many.get(ctx, keys, entries)
}

// Apply implements policy.Store: the writes are published together, each
// expecting its key's last revision, and their acknowledgements awaited
// together. It waits for every one (a publish times out on its own), even
// when ctx ends: a write told failed must not land afterwards, and the
// values must not be read after Apply returns.
func (s *KVStore) Apply(_ context.Context, writes []policy.Write) {
	futures := make([]jetstream.PubAckFuture, len(writes))
	for i := range writes {
		w := &writes[i]
		msg := &nats.Msg{Subject: s.many.prefix + w.Key, Data: w.Value}
		futures[i], w.Err = s.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(w.Rev))
	}
	for i, f := range futures {
		w := &writes[i]
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			w.NewRev, w.Err = ack.Sequence, nil
		case err := <-f.Err():
			if isWrongLastSequence(err) {
				err = policy.ErrConflict
			}
			w.Err = err
		}
	}
}

// Get implements policy.Store.
func (s *KVStore) Get(ctx context.Context, key string) (policy.Entry, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return policy.Entry{}, policy.ErrNotFound
	}
	if err != nil {
		return policy.Entry{}, err
	}
	return policy.Entry{Value: e.Value(), Rev: e.Revision()}, nil
}

// Create implements policy.Store.
func (s *KVStore) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return 0, policy.ErrExists
	}
	return rev, err
}

// Update implements policy.Store.
func (s *KVStore) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := s.kv.Update(ctx, key, value, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return 0, policy.ErrConflict
	}
	return n, err
}

// Put implements policy.Store.
func (s *KVStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return s.kv.Put(ctx, key, value)
}

// Delete implements policy.Store.
func (s *KVStore) Delete(ctx context.Context, key string, rev uint64) error {
	err := s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return policy.ErrConflict
	}
	return err
}

// ErrHashKeyMismatch is returned by CheckHashKey when the cluster's other
// daemons hash with another key.
var ErrHashKeyMismatch = errors.New("another daemon of the cluster uses another policy hash key")

// CheckHashKey makes sure that every daemon of the cluster hashes with the
// same key, without the key going into NATS: bucket simgate_config keeps
// check, a fingerprint of the key that reveals nothing of it
// (hashkey.Fingerprint). The first daemon's fingerprint stays; a daemon
// with another one gets ErrHashKeyMismatch.
//
// It also removes (purges, with its history) the key that earlier versions
// kept in the bucket, where any client could read it, and reports whether
// there was one. That key is not migrated: whoever could read the bucket
// may have it.
func CheckHashKey(ctx context.Context, js jetstream.JetStream, check string, replicas int) (legacyRemoved bool, err error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketConfig,
		Description:  "simgate: cluster-wide settings",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		MaxBytes:     1 << 20,
		MaxValueSize: 4 << 10,
	})
	if err != nil {
		return false, fmt.Errorf("bucket %s: %w", BucketConfig, err)
	}
	switch _, err := kv.Get(ctx, legacyHashKeyName); {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false, fmt.Errorf("bucket %s: read %s: %w", BucketConfig, legacyHashKeyName, err)
	default:
		if err := kv.Purge(ctx, legacyHashKeyName); err != nil {
			return false, fmt.Errorf("bucket %s: remove %s: %w", BucketConfig, legacyHashKeyName, err)
		}
		legacyRemoved = true
	}
	// First one wins.
	switch _, err := kv.Create(ctx, keyCheckName, []byte(check)); {
	case err == nil:
		return legacyRemoved, nil
	case !errors.Is(err, jetstream.ErrKeyExists):
		return legacyRemoved, fmt.Errorf("bucket %s: create %s: %w", BucketConfig, keyCheckName, err)
	}
	e, err := kv.Get(ctx, keyCheckName)
	if err != nil {
		return legacyRemoved, fmt.Errorf("bucket %s: read %s: %w", BucketConfig, keyCheckName, err)
	}
	if string(e.Value()) != check {
		return legacyRemoved, ErrHashKeyMismatch
	}
	return legacyRemoved, nil
}

// isWrongLastSequence reports whether err is the stream's refusal of a
// write that expected another last revision: 10071, or 10164 from a
// clustered stream that found the key changed by a write still being
// replicated (nats.go names no constant for it).
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == errCodeWrongLastSequenceConstant)
}

// errCodeWrongLastSequenceConstant is nats-server's
// JSStreamWrongLastSequenceConstantErr.
const errCodeWrongLastSequenceConstant jetstream.ErrorCode = 10164
