// Package client is a small Go client for simgate, for auth services: it
// sends OTP jobs (with an immediate, typed decision, or durably queued) and
// follows their events, or has simgate make, send and check the codes
// (managed codes: Verify and Check).
//
//	c, _ := client.New(nc)
//	reply, err := c.Request(ctx, otp.Job{ID: loginID, To: "+4526227921", Code: code})
//	if reply.Status == otp.ReplyRejected { ... reply.Reason, reply.RetryAfter ... }
//	final, err := c.Wait(ctx, reply.Follow())
//
//	reply, err = c.Verify(ctx, otp.VerifyRequest{ID: loginID, To: "+4526227921"})
//	answer, err := c.Check(ctx, otp.CheckRequest{ID: reply.Verification, Code: typed})
//	if answer.Status == otp.CheckApproved { ... }
package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// ErrNoDaemon is returned by Request when no simgate daemon answers.
// Verify and Check return an error that matches it (errors.Is) and names
// their own subject: a daemon older than managed codes answers
// otp.request only.
var ErrNoDaemon = errors.New("no simgate daemon answers " + otp.SubjectRequest)

// noDaemon is ErrNoDaemon for a subject other than otp.request.
type noDaemon struct{ subject string }

func (e noDaemon) Error() string        { return "no simgate daemon answers " + e.subject }
func (e noDaemon) Is(target error) bool { return target == ErrNoDaemon }

// Client talks to simgate over a NATS connection it does not own.
type Client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// New returns a Client using nc.
func New(nc *nats.Conn) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Client{nc: nc, js: js}, nil
}

// Request sends job to otp.request and returns simgate's decision: accepted
// (queued), accepted with Duplicate set (nothing new queued), rejected with a
// Reason (and RetryAfter for rate limits), or error (try again). ctx bounds
// the wait; give it a deadline.
func (c *Client) Request(ctx context.Context, job otp.Job) (otp.Reply, error) {
	var r otp.Reply
	if err := c.call(ctx, otp.SubjectRequest, "request", job, &r); err != nil {
		return otp.Reply{}, err
	}
	return r, nil
}

// Verify sends req to otp.verify: simgate makes the code, sends it and
// keeps it for Check. The decision is a Request's: accepted (queued; the
// job's events follow under req.ID), accepted with Duplicate set (a retry
// of req.ID: nothing new queued), rejected with a Reason (and RetryAfter
// for rate limits), or error (try again). An accepted reply names in
// Verification the verification whose code the SMS carries: req.ID, or
// for a resend of a code still valid (Resend set) the number's pending
// verification; Check takes either id. The code itself is never in the
// reply. ctx bounds the wait; give it a deadline.
func (c *Client) Verify(ctx context.Context, req otp.VerifyRequest) (otp.Reply, error) {
	var r otp.Reply
	if err := c.call(ctx, otp.SubjectVerify, "verify", req, &r); err != nil {
		return otp.Reply{}, err
	}
	return r, nil
}

// Check sends req to otp.check and returns simgate's answer: approved (the
// right code, checked for the first time), denied (AttemptsLeft tells how
// many more may be tried), expired, locked, not_found, rejected with a
// Reason (a malformed request, or rate_limited with RetryAfter), or error
// (try again). Only approved lets the user in. ctx bounds the wait; give it
// a deadline.
func (c *Client) Check(ctx context.Context, req otp.CheckRequest) (otp.CheckReply, error) {
	var r otp.CheckReply
	if err := c.call(ctx, otp.SubjectCheck, "check", req, &r); err != nil {
		return otp.CheckReply{}, err
	}
	return r, nil
}

// call sends v as JSON to subject and decodes the answer into answer; op
// names the call in errors.
func (c *Client) call(ctx context.Context, subject, op string, v, answer any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		if subject == otp.SubjectRequest {
			return ErrNoDaemon
		}
		return noDaemon{subject}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := json.Unmarshal(msg.Data, answer); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}

// Publish queues job durably on otp.send. Validation and limits apply when
// a daemon takes the job: follow its events for the outcome. A second
// Publish of the same job is recognised by the daemon as a duplicate (by
// its id and body), the same id with another body is refused
// (id_conflict).
//
// The message id (Nats-Msg-Id) is the job id and a random suffix, new for
// each call: the stream then drops only a repeat of this very publish,
// and a message published earlier under the job's id by anyone else can
// never stand in for this one. duplicate reports such a repeat.
func (c *Client) Publish(ctx context.Context, job otp.Job) (duplicate bool, err error) {
	if !otp.ValidID(job.ID) {
		return false, badID(job.ID)
	}
	body, err := json.Marshal(job)
	if err != nil {
		return false, err
	}
	ack, err := c.js.Publish(ctx, otp.SubjectSend, body, jetstream.WithMsgID(job.ID+"."+rand.Text()))
	if err != nil {
		return false, fmt.Errorf("publish: %w", err)
	}
	return ack.Duplicate, nil
}

// Events yields the events of job id from the first one (they are kept in
// the OTP_EVENTS stream, so nothing is missed by subscribing late) until the
// last one (see otp.Event.Last: past sent to the delivery outcome when a
// status report was requested) or until ctx ends, which is yielded as an
// error.
//
// It needs no JetStream consumer (publishers may create none): it
// subscribes to the job's live events, then reads the stored ones with
// direct gets, and yields the stored ones first and then the live ones it
// has not yielded yet. An event published just before the subscription
// may be stored only after that first read: a daemon stores each event of
// a job before it publishes the next, so before a live event is yielded
// the stored ones are read again from where the last read ended (briefly:
// a read that fails or is slow is let go, and a replica that lags may not
// have them yet).
func (c *Client) Events(ctx context.Context, id string) iter.Seq2[otp.Event, error] {
	return func(yield func(otp.Event, error) bool) {
		if !otp.ValidID(id) {
			// A wildcard id would follow every job's events.
			yield(otp.Event{}, badID(id))
			return
		}
		subject := otp.EventSubject(id)
		live := make(chan *nats.Msg, 64)
		sub, err := c.nc.ChanSubscribe(subject, live)
		if err != nil {
			yield(otp.Event{}, fmt.Errorf("follow events: %w", err))
			return
		}
		defer sub.Unsubscribe()
		// The subscription is live on the server before the replay.
		if err := flush(ctx, c.nc); err != nil {
			yield(otp.Event{}, fmt.Errorf("follow events: %w", err))
			return
		}
		seen := map[string]bool{}
		emit := func(data []byte) (more bool) {
			if seen[string(data)] {
				return true
			}
			seen[string(data)] = true
			var ev otp.Event
			if err := json.Unmarshal(data, &ev); err != nil || ev.Type == "" || ev.ID != id {
				// Not an event of this job: a message of another contract
				// version, or an answer another publisher had sent to this
				// subject (a reply subject is the requester's choice).
				return true
			}
			return yield(ev, nil) && !ev.Last()
		}
		next := uint64(1) // the stream sequence to read on from
		stored, err := c.stored(ctx, subject, &next)
		if err != nil {
			yield(otp.Event{}, fmt.Errorf("replay events: %w", err))
			return
		}
		for _, data := range stored {
			if !emit(data) {
				return
			}
		}
		for {
			select {
			case m := <-live:
				if seen[string(m.Data)] {
					continue
				}
				// The events before this one are stored by now. Live ones
				// do not wait long on the stream.
				rctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
				stored, _ := c.stored(rctx, subject, &next)
				cancel()
				for _, data := range stored {
					if !emit(data) {
						return
					}
				}
				if !emit(m.Data) {
					return
				}
			case <-ctx.Done():
				yield(otp.Event{}, fmt.Errorf("follow events: %w", ctx.Err()))
				return
			}
		}
	}
}

// flush is nc.FlushWithContext, which wants a deadline, or nc.Flush.
func flush(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); ok {
		return nc.FlushWithContext(ctx)
	}
	return nc.Flush()
}

// catchUpTimeout bounds Events' read of the stored events before a live
// one.
const catchUpTimeout = 2 * time.Second

// stored returns the bodies of the messages on subject in the events
// stream from sequence *next on, oldest first, read with batched direct
// gets, and moves *next past the last one read. On an error it returns
// those read before it too.
func (c *Client) stored(ctx context.Context, subject string, next *uint64) ([][]byte, error) {
	var out [][]byte
	for {
		inbox := c.nc.NewRespInbox()
		sub, err := c.nc.SubscribeSync(inbox)
		if err != nil {
			return out, err
		}
		req, _ := json.Marshal(struct {
			Seq        uint64 `json:"seq"`
			NextBySubj string `json:"next_by_subj"`
			Batch      int    `json:"batch"`
		}{*next, subject, 64})
		if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+otp.StreamEvents, inbox, req); err != nil {
			sub.Unsubscribe()
			return out, err
		}
		n, done, err := readBatch(ctx, sub, &out, next)
		sub.Unsubscribe()
		if err != nil || done || n == 0 {
			return out, err
		}
	}
}

// readBatch reads one direct-get batch from sub into out, moving next past
// the last sequence read. done reports that the stream holds no more.
func readBatch(ctx context.Context, sub *nats.Subscription, out *[][]byte, next *uint64) (n int, done bool, err error) {
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return n, false, err
		}
		switch m.Header.Get("Status") {
		case "":
		case "404": // nothing (more) on the subject
			return n, true, nil
		case "204": // end of the batch
			return n, m.Header.Get("Nats-Num-Pending") == "0", nil
		case "503":
			return n, false, nats.ErrNoResponders
		default:
			return n, false, fmt.Errorf("direct get: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || seq < *next {
			// Without a sequence the next batch would start over.
			return n, false, fmt.Errorf("direct get: message without a sequence past %d", *next-1)
		}
		*next = seq + 1
		*out = append(*out, m.Data)
		n++
	}
}

// WaitDelivery returns the last event of job id: its delivery outcome
// when it was sent with a status report requested, otherwise its final
// event.
func (c *Client) WaitDelivery(ctx context.Context, id string) (otp.Event, error) {
	for ev, err := range c.Events(ctx, id) {
		if err != nil {
			return otp.Event{}, err
		}
		if ev.Last() {
			return ev, nil
		}
	}
	return otp.Event{}, ctx.Err()
}

// Wait returns the final event of job id: sent, or how it ended unsent.
// Where the stream no longer holds the final event but holds the delivery
// verdict that came after it, Wait returns the verdict.
func (c *Client) Wait(ctx context.Context, id string) (otp.Event, error) {
	var last otp.Event
	for ev, err := range c.Events(ctx, id) {
		if err != nil {
			return otp.Event{}, err
		}
		if ev.Type.Final() {
			return ev, nil
		}
		last = ev
	}
	if err := ctx.Err(); err != nil {
		return otp.Event{}, err
	}
	return last, nil
}

func badID(id string) error { return fmt.Errorf("job id %q: want 1-64 of A-Z a-z 0-9 _ -", id) }

// Status asks every daemon on the connection's NATS for its status
// (simgate.status) and returns their answers, sorted by node, once no
// answer came for quiet (at the latest when ctx ends): each daemon answers
// once. ErrNoDaemon when none does.
func (c *Client) Status(ctx context.Context, quiet time.Duration) ([]otp.Status, error) {
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(otp.SubjectStatus, inbox, []byte("{}")); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var out []otp.Status
	for {
		wait := quiet
		if len(out) == 0 {
			wait = time.Until(deadlineOf(ctx, 5*time.Second)) // the first answer
		}
		msg, err := sub.NextMsg(max(wait, time.Millisecond))
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil {
			break
		}
		if err != nil {
			return out, fmt.Errorf("status: %w", err)
		}
		if len(msg.Data) == 0 {
			continue // a status of the server (no responders)
		}
		var st otp.Status
		if err := json.Unmarshal(msg.Data, &st); err != nil {
			return out, fmt.Errorf("decode status: %w", err)
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, noDaemon{otp.SubjectStatus}
	}
	slices.SortFunc(out, func(a, b otp.Status) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// deadlineOf returns ctx's deadline, or d from now when it has none.
func deadlineOf(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}
