package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// BenchmarkPublishToCMGS measures the latency from publishing a job on
// otp.send to the simulated modem answering +CMGS, with an idle modem and no
// network delay: one job in flight at a time, so ns/op is the latency.
func BenchmarkPublishToCMGS(b *testing.B) {
	s := startSim(b, "m1", 0)
	cfg := testConfig(b.TempDir(), s)
	// Thousands of jobs in a minute: no country or global cap.
	cfg.Policy.CountryPerHour, cfg.Policy.GlobalPerMinute = 0, 0
	// And no health check cutting pulls short in the measurement.
	cfg.Modems[0].HealthInterval = time.Minute
	h := start(b, cfg)
	ctx := context.Background()
	// Warm up: the first job opens pull requests and JetStream paths.
	h.publish(map[string]any{"id": "warm", "to": "+4526227921", "code": "123456"})
	waitMessage(b, s)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		// A new code each time, as a real sequence of logins would send.
		body := fmt.Appendf(nil, `{"id":%q,"to":"+4526227921","code":"%d"}`, id, 100000+i)
		if _, err := h.js.Publish(ctx, otp.SubjectSend, body, jetstream.WithMsgID(id)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-s.msgs:
		case <-time.After(10 * time.Second):
			b.Fatal("no message")
		}
	}
}
