package gateway_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/queue"
)

// BenchmarkPublishToCMGS measures the latency from publishing a job on
// otp.send to the simulated modem answering +CMGS, with an idle modem and no
// network delay: one job in flight at a time, so ns/op is the latency.
func BenchmarkPublishToCMGS(b *testing.B) {
	s := startSim(b, "m1", 0)
	h := start(b, testConfig(b.TempDir(), s))
	ctx := context.Background()
	// Warm up: the first job opens pull requests and JetStream paths.
	h.publish(map[string]any{"id": "warm", "to": "+4526227921", "code": "123456"})
	waitMessage(b, s)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		body := fmt.Appendf(nil, `{"id":%q,"to":"+4526227921","code":"123456"}`, id)
		if _, err := h.js.Publish(ctx, queue.SubjectSend, body, jetstream.WithMsgID(id)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-s.msgs:
		case <-time.After(10 * time.Second):
			b.Fatal("no message")
		}
	}
}
