package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketFleet keeps, per modem that has routes, what its daemon says of it
// (the destinations it is preferred for, whether it takes jobs now), so
// that every daemon can route a job to a modem of another.
const BucketFleet = "simgate_fleet"

// FleetTTL is how long an announcement lives: a daemon announces its
// modems every few seconds; one that stopped is forgotten.
const FleetTTL = 30 * time.Second

// OpenFleet creates or binds the fleet bucket.
func OpenFleet(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketFleet,
		Description:  "simgate: modems with routes, as their daemons announce them",
		History:      1,
		TTL:          FleetTTL,
		Storage:      jetstream.MemoryStorage,
		Replicas:     max(replicas, 1),
		MaxBytes:     1 << 20,
		MaxValueSize: 4 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketFleet, err)
	}
	return kv, nil
}
