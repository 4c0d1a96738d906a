package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// countingStore counts a policy.Store's round trips.
type countingStore struct {
	policy.Store
	n atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) (policy.Entry, error) {
	s.n.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) GetMany(ctx context.Context, keys []string, entries []policy.Entry) error {
	s.n.Add(1)
	return s.Store.GetMany(ctx, keys, entries)
}

func (s *countingStore) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	s.n.Add(1)
	return s.Store.Create(ctx, key, value)
}

func (s *countingStore) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.n.Add(1)
	return s.Store.Update(ctx, key, value, rev)
}

func (s *countingStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	s.n.Add(1)
	return s.Store.Put(ctx, key, value)
}

func (s *countingStore) Delete(ctx context.Context, key string, rev uint64) error {
	s.n.Add(1)
	return s.Store.Delete(ctx, key, rev)
}

func (s *countingStore) Apply(ctx context.Context, writes []policy.Write) {
	s.n.Add(1)
	s.Store.Apply(ctx, writes)
}

// BenchmarkAdmitKV measures policy decisions against the JetStream
// key-value store of an embedded server (file storage, fsync on every
// write), every decision for a new number with the default limits
// (country and global included), and reports the round trips to the store
// per decision (target: 2) and the bucket's bytes per tracked number.
func BenchmarkAdmitKV(b *testing.B) {
	kv, js := policyStore(b)
	ctx := context.Background()
	store := &countingStore{Store: kv}
	cfg := policy.DefaultConfig()
	cfg.Key = []byte("0123456789abcdef0123456789abcdef")
	cfg.CountryPerHour, cfg.GlobalPerMinute = 1<<30, 1<<30
	p, err := policy.New(cfg, store)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	i := 0
	p.SetClock(func() time.Time { return t0.Add(time.Duration(i) * 86 * time.Millisecond) })
	for b.Loop() {
		e164 := fmt.Sprintf("+45%08d", 20000000+i*2654435761%10000000)
		j := otp.Prepared{
			Job:    otp.Job{ID: fmt.Sprintf("b%d", i), To: e164, Code: "123456"},
			Number: otp.Number{E164: e164, CountryCode: 45, Region: "DK"},
			TTL:    10 * time.Minute,
		}
		if _, err := p.Admit(ctx, j); err != nil {
			if _, ok := otp.AsReject(err); !ok {
				b.Fatal(err)
			}
		}
		i++
	}
	s, err := js.Stream(ctx, "KV_"+BucketPolicy)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(store.n.Load())/float64(i), "round-trips/op")
	b.ReportMetric(float64(info.State.Bytes)/float64(i), "B/number")
	b.Logf("target: at most 2 round-trips/op")
}
