package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// syncModes are the embedded server's nats.embedded.sync settings the
// benchmarks compare: every write fsynced before its acknowledgement (the
// default), and nats-server's own default interval.
var syncModes = []string{"always", "2m"}

// BenchmarkPublishToCMGS measures the latency from publishing a job on
// otp.send to the simulated modem answering +CMGS, with an idle modem and no
// network delay: one job in flight at a time, so ns/op is the latency. It
// runs once per nats.embedded.sync setting:
//
//	go test ./daemon -run '^$' -bench 'PublishToCMGS|RequestThroughput'
func BenchmarkPublishToCMGS(b *testing.B) {
	for _, sync := range syncModes {
		b.Run("sync="+sync, func(b *testing.B) { benchPublishToCMGS(b, sync) })
	}
}

func benchPublishToCMGS(b *testing.B, sync string) {
	s := startSim(b, "m1", 0)
	cfg := testConfig(b.TempDir(), s)
	cfg.NATS.Embedded.Sync = sync
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

// BenchmarkRequestThroughput measures otp.request answers per second with
// 32 callers at once, each job accepted (a fresh number, no limits) and
// queued: the admission's KV writes and the queue's publish are on disk
// (fsynced, with sync always) before each answer. It reports req/s.
func BenchmarkRequestThroughput(b *testing.B) {
	for _, sync := range syncModes {
		b.Run("sync="+sync, func(b *testing.B) { benchRequestThroughput(b, sync) })
	}
}

func benchRequestThroughput(b *testing.B, sync string) {
	s := startSim(b, "m1", 0)
	cfg := testConfig(b.TempDir(), s)
	cfg.NATS.Embedded.Sync = sync
	cfg.Policy.CountryPerHour, cfg.Policy.Countries, cfg.Policy.GlobalPerMinute = 0, nil, 0
	cfg.NATS.Limits.JobsBytes = 1 << 30
	h := start(b, cfg)
	var n atomic.Int64
	b.SetParallelism(16) // 32 callers on 2 cores
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Appendf(nil, `{"id":"rq-%d","to":"+4526%06d","code":"%d"}`, i, i%1000000, 100000+i%900000)
			msg, err := h.nc.Request(otp.SubjectRequest, body, 10*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			var r otp.Reply
			if json.Unmarshal(msg.Data, &r) != nil || r.Status != otp.ReplyAccepted {
				b.Errorf("reply %s", msg.Data)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "req/s")
}
