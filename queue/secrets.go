package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/policy"
)

// BucketSecrets keeps the sealed codes and code hashes of managed
// verifications (verify.Secrets), each for no longer than its
// verification: the server deletes a key at its ttl.
const BucketSecrets = "simgate_verify"

// SecretsStore is a verify.Secrets in a JetStream key-value bucket with
// per-key ttls (nats-server 2.11 or later).
type SecretsStore struct {
	kv jetstream.KeyValue
}

// secretsMarkerTTL is how long the bucket keeps the marker of a key its
// ttl removed.
const secretsMarkerTTL = time.Minute

// OpenSecrets creates or binds the secrets bucket.
func OpenSecrets(ctx context.Context, js jetstream.JetStream, replicas int) (*SecretsStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         BucketSecrets,
		Description:    "simgate: sealed codes and code hashes of managed verifications, until they end",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       max(replicas, 1),
		MaxValueSize:   1 << 10,
		LimitMarkerTTL: secretsMarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketSecrets, err)
	}
	return &SecretsStore{kv: kv}, nil
}

// Create implements verify.Secrets. A ttl under a second is a second: the
// server's least.
func (s *SecretsStore) Create(ctx context.Context, id string, value []byte, ttl time.Duration) error {
	_, err := s.kv.Create(ctx, id, value, jetstream.KeyTTL(max(ttl, time.Second)))
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return policy.ErrExists
	}
	return err
}

// Get implements verify.Secrets.
func (s *SecretsStore) Get(ctx context.Context, id string) ([]byte, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, policy.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// Delete implements verify.Secrets: the key is purged, and the purge's
// marker goes in a minute.
func (s *SecretsStore) Delete(ctx context.Context, id string) error {
	return s.kv.Purge(ctx, id, jetstream.PurgeTTL(secretsMarkerTTL))
}
