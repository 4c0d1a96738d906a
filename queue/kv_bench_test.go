package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
)

// BenchmarkAdmitKV measures policy decisions against the JetStream
// key-value store of an embedded server (file storage), every decision for
// a new number, and reports the bucket's bytes per tracked number.
func BenchmarkAdmitKV(b *testing.B) {
	js := embedded(b)
	ctx := context.Background()
	store, err := OpenPolicyStore(ctx, js, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	cfg := policy.DefaultConfig()
	cfg.Key = []byte("0123456789abcdef0123456789abcdef")
	cfg.CountryPerHour, cfg.GlobalPerMinute = 0, 0
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
	b.ReportMetric(float64(info.State.Bytes)/float64(i), "B/number")
}
