package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Job returns the queued job msg carries as a jetstream.Msg whose
// acknowledgements go through nc: a message a Puller took, or one another
// daemon handed over. Its ack subject (msg.Reply) reaches the server from
// any connection of the daemons' account, so a job may be taken by one
// daemon and acknowledged by another.
func Job(nc *nats.Conn, msg *nats.Msg) jetstream.Msg {
	return &job{nc: nc, m: msg}
}

// job is a queued job acknowledged through nc.
type job struct {
	nc *nats.Conn
	m  *nats.Msg

	mu   sync.Mutex
	done bool // acknowledged, nak'd or terminated
}

// progress tells the server the job is being worked on; after the job was
// acknowledged, nak'd or terminated it sends nothing (a progress signal
// after a nak would replace its delay with the whole ack wait).
func (j *job) progress() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.done {
		return jetstream.ErrMsgAlreadyAckd
	}
	return j.publish("+WPI")
}

func (j *job) Metadata() (*jetstream.MsgMetadata, error) { return AckMetadata(j.m.Reply) }
func (j *job) Data() []byte                              { return j.m.Data }
func (j *job) Headers() nats.Header                      { return j.m.Header }
func (j *job) Subject() string                           { return j.m.Subject }
func (j *job) Reply() string                             { return j.m.Reply }
func (j *job) Ack() error                                { return j.reply("+ACK") }
func (j *job) Nak() error                                { return j.reply("-NAK") }
func (j *job) Term() error                               { return j.reply("+TERM") }
func (j *job) TermWithReason(reason string) error        { return j.reply("+TERM " + reason) }
func (j *job) InProgress() error                         { return j.progress() }

func (j *job) NakWithDelay(delay time.Duration) error {
	return j.reply(fmt.Sprintf(`-NAK {"delay": %d}`, delay.Nanoseconds()))
}

// DoubleAck acknowledges the job and waits for the server to confirm.
func (j *job) DoubleAck(ctx context.Context) error {
	j.mu.Lock()
	done := j.done
	j.mu.Unlock()
	if done {
		return jetstream.ErrMsgAlreadyAckd
	}
	if _, err := j.nc.RequestWithContext(ctx, j.m.Reply, []byte("+ACK")); err != nil {
		return err
	}
	j.mu.Lock()
	j.done = true
	j.mu.Unlock()
	return nil
}

// reply sends a final acknowledgement (once).
func (j *job) reply(body string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.done {
		return jetstream.ErrMsgAlreadyAckd
	}
	if err := j.publish(body); err != nil {
		return err
	}
	j.done = true
	return nil
}

func (j *job) publish(body string) error {
	if j.m.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	return j.nc.Publish(j.m.Reply, []byte(body))
}

// errAckSubject is an ack subject that is not one.
var errAckSubject = errors.New("not a JetStream ack subject")

// AckMetadata reads a delivered message's metadata from its ack subject:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>
//	$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>[.<token>]
func AckMetadata(subject string) (*jetstream.MsgMetadata, error) {
	t := strings.Split(subject, ".")
	if len(t) < 9 || t[0] != "$JS" || t[1] != "ACK" {
		return nil, fmt.Errorf("%q: %w", subject, errAckSubject)
	}
	if len(t) == 9 {
		t = append(t[:2], append([]string{"", ""}, t[2:]...)...)
	}
	if len(t) != 11 && len(t) != 12 {
		return nil, fmt.Errorf("%q: %w", subject, errAckSubject)
	}
	var n [5]uint64
	for i := range n {
		v, err := strconv.ParseUint(t[6+i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", subject, errAckSubject)
		}
		n[i] = v
	}
	domain := t[2]
	if domain == "_" {
		domain = ""
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Stream: n[1], Consumer: n[2]},
		NumDelivered: n[0],
		NumPending:   n[4],
		Timestamp:    time.Unix(0, int64(n[3])),
		Stream:       t[4],
		Consumer:     t[5],
		Domain:       domain,
	}, nil
}
