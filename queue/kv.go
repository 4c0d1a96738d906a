package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/policy"
)

// Key-value buckets.
const (
	// BucketPolicy keeps duplicate and rate-limit state (policy.Store).
	BucketPolicy = "simgate_policy"
	// BucketConfig keeps cluster-wide settings: the policy hash key.
	BucketConfig = "simgate_config"

	hashKeyName = "policy_hash_key"
)

// KVStore is a policy.Store in a JetStream key-value bucket, shared by every
// daemon connected to the same JetStream domain.
type KVStore struct {
	kv jetstream.KeyValue
}

// OpenPolicyStore creates or binds the policy bucket. Entries expire
// policy.Retention after their last write.
func OpenPolicyStore(ctx context.Context, js jetstream.JetStream, replicas int) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketPolicy,
		Description: "simgate: duplicate and rate-limit state (keyed hashes, no numbers)",
		History:     1,
		TTL:         policy.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketPolicy, err)
	}
	return &KVStore{kv: kv}, nil
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
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, policy.ErrExists
	}
	return rev, err
}

// Update implements policy.Store.
func (s *KVStore) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := s.kv.Update(ctx, key, value, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
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

// HashKey returns the cluster's key for hashing numbers in the policy
// store, creating a random one on first use: the first daemon wins and all
// others read it.
func HashKey(ctx context.Context, js jetstream.JetStream, replicas int) ([]byte, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketConfig,
		Description: "simgate: cluster-wide settings",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketConfig, err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := kv.Create(ctx, hashKeyName, key); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("create hash key: %w", err)
	}
	e, err := kv.Get(ctx, hashKeyName)
	if err != nil {
		return nil, fmt.Errorf("read hash key: %w", err)
	}
	return e.Value(), nil
}

// isWrongLastSequence reports whether err is the stream's refusal of a
// write that expected another last revision.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
