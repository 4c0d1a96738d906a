package queue

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// TestStreamLimits: the job queue refuses a job over MaxJobSize and, when
// full, new jobs (never dropping a queued one); the events stream keeps at
// most EventsPerJob events per job, dropping the oldest.
func TestStreamLimits(t *testing.T) {
	js := embedded(t)
	ctx := t.Context()
	cfg := StreamConfig{DedupWindow: time.Minute, AckWait: 5 * time.Second,
		JobsMaxBytes: 64 << 10, EventsMaxBytes: 1 << 20, EventsPerJob: 8}
	if _, err := Setup(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}

	big := append([]byte(`{"id":"big","text":"`), bytes.Repeat([]byte("x"), MaxJobSize)...)
	_, err := js.Publish(ctx, otp.SubjectSend, big)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("a job over %d bytes: %v, want an API error", MaxJobSize, err)
	}
	t.Logf("a job too big: %v", err)

	job := bytes.Repeat([]byte("j"), 4<<10)
	queued := 0
	for ; queued < 100; queued++ {
		if _, err = js.Publish(ctx, otp.SubjectSend, job); err != nil {
			break
		}
	}
	if !errors.As(err, &apiErr) || queued == 0 || queued >= 16 {
		t.Fatalf("after %d jobs of 4KiB in a queue of 64KiB: %v, want a full queue", queued, err)
	}
	t.Logf("a full queue: %v", err)
	s, _ := js.Stream(ctx, otp.StreamJobs)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(queued) || info.State.FirstSeq != 1 {
		t.Errorf("queue holds %d jobs from %d, want the %d queued from 1", info.State.Msgs, info.State.FirstSeq, queued)
	}

	for i := range 12 {
		if _, err := js.Publish(ctx, otp.EventSubject("x"), fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := js.Stream(ctx, otp.StreamEvents)
	info, err = es.Info(ctx, jetstream.WithSubjectFilter(otp.EventSubject("x")))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[otp.EventSubject("x")]; n != 8 {
		t.Errorf("%d events kept for the job, want 8", n)
	}
	first, err := es.GetMsg(ctx, info.State.FirstSeq)
	if err != nil || string(first.Data) != `{"n":4}` {
		t.Errorf("oldest kept event %q (%v), want the fifth", first.Data, err)
	}
}
