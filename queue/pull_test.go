package queue

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// TestPullerTakesEveryJob: whatever headers a job carries, the Puller hands
// it over, with its metadata, and its acknowledgements reach the server.
func TestPullerTakesEveryJob(t *testing.T) {
	js := embedded(t)
	ctx := t.Context()
	if _, err := Setup(ctx, js, StreamConfig{DedupWindow: time.Hour, AckWait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	p := NewPuller(js.Conn())
	if _, err := p.Next(50 * time.Millisecond); !errors.Is(err, jetstream.ErrNoMessages) {
		t.Fatalf("empty queue: %v, want %v", err, jetstream.ErrNoMessages)
	}
	for _, tc := range []struct {
		name   string
		header nats.Header
		data   string
	}{
		{name: "a job", data: `{"id":"a"}`},
		{name: "no messages", header: nats.Header{"Status": {"404"}, "Description": {"No Messages"}}},
		{name: "timeout", header: nats.Header{"Status": {"408"}, "Description": {"Request Timeout"}}},
		{name: "heartbeat", header: nats.Header{"Status": {"100"}, "Description": {"Idle Heartbeat"}}},
		{name: "consumer deleted", header: nats.Header{"Status": {"409"}, "Description": {"Consumer Deleted"}}},
		{name: "no responders", header: nats.Header{"Status": {"503"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: otp.SubjectSend, Header: tc.header, Data: []byte(tc.data)}
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Next(5 * time.Second)
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			if string(got.Data()) != tc.data || got.Headers().Get("Status") != tc.header.Get("Status") {
				t.Errorf("got %q %v, want %q %v", got.Data(), got.Headers(), tc.data, tc.header)
			}
			meta, err := got.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if meta.Sequence.Stream != ack.Sequence || meta.NumDelivered != 1 || meta.Stream != otp.StreamJobs || meta.Consumer != Consumer {
				t.Errorf("metadata %+v, want stream sequence %d, first delivery", meta, ack.Sequence)
			}
			// A nak brings it back at once, as its second delivery; a
			// double ack ends it.
			if err := got.Nak(); err != nil {
				t.Fatal(err)
			}
			again, err := p.Next(5 * time.Second)
			if err != nil {
				t.Fatalf("after nak: %v", err)
			}
			if meta, _ := again.Metadata(); meta == nil || meta.Sequence.Stream != ack.Sequence || meta.NumDelivered != 2 {
				t.Errorf("after nak: %+v, want its second delivery", meta)
			}
			if err := again.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Next(50 * time.Millisecond); !errors.Is(err, jetstream.ErrNoMessages) {
				t.Errorf("after ack: %v, want an empty queue", err)
			}
		})
	}
}

// TestPullerTerm: a job ended with a reason is gone from the queue.
func TestPullerTerm(t *testing.T) {
	js := embedded(t)
	ctx := t.Context()
	if _, err := Setup(ctx, js, StreamConfig{DedupWindow: time.Hour, AckWait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	p := NewPuller(js.Conn())
	for i := range 2 {
		if _, err := js.Publish(ctx, otp.SubjectSend, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		msg, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			err = msg.Term()
		} else {
			err = msg.TermWithReason("malformed")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, otp.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	// A term is not confirmed: the consumer applies it on its own time.
	// Ask it until it has (or give up after 5 s).
	c, err := s.Consumer(ctx, Consumer)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after term: %d pending, %d waiting for ack", info.NumPending, info.NumAckPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
