package queue

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// Puller takes the jobs of the durable consumer one at a time.
//
// It speaks JetStream's pull protocol itself rather than through
// jetstream.Consumer: nats.go takes any message with an empty body and a
// Status header for a status of the server's own (no messages, timeout,
// heartbeat) and drops it. Anyone who may publish jobs could then queue
// such a message, which nats.go never hands over and the server delivers
// again at every ack wait, each time holding a worker for a whole fetch;
// some tens of them stall the fleet. A message the server delivers from
// the stream carries an ack subject; a status of the server carries none.
// So here a message with an ack subject is a job, whatever its headers,
// and the worker rejects a bad one like any other.
type Puller struct {
	nc      *nats.Conn
	subject string
}

// NewPuller returns a Puller of the consumer Setup creates, on nc (the
// daemon's connection).
func NewPuller(nc *nats.Conn) *Puller {
	return &Puller{nc: nc, subject: "$JS.API.CONSUMER.MSG.NEXT." + otp.StreamJobs + "." + Consumer}
}

// pullRequest is the body of a pull request ($JS.API.CONSUMER.MSG.NEXT).
type pullRequest struct {
	Batch   int           `json:"batch"`
	Expires time.Duration `json:"expires"`
}

// Next waits up to wait for a job and returns it. When none came it
// returns jetstream.ErrNoMessages. The request expires on the server: a
// job is never handed to a request the caller has stopped waiting for.
func (p *Puller) Next(wait time.Duration) (jetstream.Msg, error) {
	wait = max(wait, 10*time.Millisecond)
	// A channel, not NextMsg: that too takes a message with an empty body
	// and Status 503 for the server's "no responders".
	msgs := make(chan *nats.Msg, 4)
	sub, err := p.nc.ChanSubscribe(p.nc.NewInbox(), msgs)
	if err != nil {
		return nil, fmt.Errorf("pull job: %w", err)
	}
	defer sub.Unsubscribe()
	body, _ := json.Marshal(pullRequest{Batch: 1, Expires: wait})
	if err := p.nc.PublishRequest(p.subject, sub.Subject, body); err != nil {
		return nil, fmt.Errorf("pull job: %w", err)
	}
	// The server answers by the expiry (408): allow it time to.
	timeout := time.NewTimer(wait + time.Second)
	defer timeout.Stop()
	for {
		var msg *nats.Msg
		select {
		case msg = <-msgs:
		case <-timeout.C:
			return nil, fmt.Errorf("pull job: no answer from the server: %w", nats.ErrTimeout)
		}
		if strings.HasPrefix(msg.Reply, "$JS.ACK.") {
			return Job(p.nc, msg), nil
		}
		switch status, desc := msg.Header.Get("Status"), msg.Header.Get("Description"); status {
		case "404", "408":
			return nil, jetstream.ErrNoMessages
		case "100":
			continue // a heartbeat
		case "503":
			return nil, fmt.Errorf("pull job: %w", nats.ErrNoResponders)
		case "":
			continue // not for this request (only the daemon's account can publish here)
		default:
			return nil, fmt.Errorf("pull job: %s %s", status, desc)
		}
	}
}
