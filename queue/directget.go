package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/policy"
)

// directGet reads the last messages of several subjects of a stream in
// one request (a batched direct get, "multi_last"): the policy reads the
// records of a decision in one round trip. Its answers come on one
// subscription of the connection's inbox.
type directGet struct {
	nc     *nats.Conn
	api    string // $JS.API.DIRECT.GET.<stream>
	prefix string // what keys are subjects after ($KV.<bucket>.)
	inbox  string // the answers' subjects: inbox + call number
	sub    *nats.Subscription

	mu    sync.Mutex
	next  uint64
	calls map[string]chan *nats.Msg
}

func newDirectGet(nc *nats.Conn, stream, prefix string) (*directGet, error) {
	g := &directGet{nc: nc, api: "$JS.API.DIRECT.GET." + stream, prefix: prefix,
		inbox: nc.NewInbox() + ".", calls: map[string]chan *nats.Msg{}}
	sub, err := nc.Subscribe(g.inbox+"*", g.answer)
	if err != nil {
		return nil, fmt.Errorf("subscribe to direct get answers: %w", err)
	}
	g.sub = sub
	return g, nil
}

func (g *directGet) close() error { return g.sub.Unsubscribe() }

// answer hands an answer's message to its call.
func (g *directGet) answer(m *nats.Msg) {
	g.mu.Lock()
	ch := g.calls[m.Subject[len(g.inbox):]]
	g.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default: // more messages than the call asked for: not ours
		}
	}
}

// errNoAnswer is the error of a direct get that got no complete answer.
var errNoAnswer = errors.New("direct get: no complete answer")

// get reads the last message of each key into entries: a missing key has
// no value and revision 0; a deleted one no value and the revision of its
// deletion.
func (g *directGet) get(ctx context.Context, keys []string, entries []policy.Entry) error {
	if len(keys) == 0 {
		return nil
	}
	subjects := make([]string, len(keys))
	for i, k := range keys {
		subjects[i] = g.prefix + k
		entries[i] = policy.Entry{}
	}
	// One key is asked for in the subject (the server's fast path);
	// several in a batch request.
	api, req := g.api+"."+subjects[0], []byte(nil)
	if len(keys) > 1 {
		var err error
		api = g.api
		req, err = json.Marshal(struct {
			MultiLast []string `json:"multi_last"`
			Batch     int      `json:"batch"`
		}{subjects, len(keys)})
		if err != nil {
			return err
		}
	}
	ch := make(chan *nats.Msg, len(keys)+1)
	g.mu.Lock()
	g.next++
	token := strconv.FormatUint(g.next, 36)
	g.calls[token] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.calls, token)
		g.mu.Unlock()
	}()
	if err := g.nc.PublishRequest(api, g.inbox+token, req); err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for got := 0; ; got++ {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("direct get: %w", ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("%w in 5s", errNoAnswer)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch {
			case status == "204", status == "404" && got == 0:
				return nil // the end of the batch; no message at all
			}
			return fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
		subject := m.Header.Get(nats.JSSubject)
		seq, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
		if err != nil || !strings.HasPrefix(subject, g.prefix) {
			return fmt.Errorf("%w: malformed message for %q", errNoAnswer, subject)
		}
		e := policy.Entry{Rev: seq}
		switch m.Header.Get("KV-Operation") {
		case "DEL", "PURGE":
		default:
			e.Value = m.Data
			if e.Value == nil {
				e.Value = []byte{}
			}
		}
		for i, k := range keys {
			if subject[len(g.prefix):] == k {
				entries[i] = e
			}
		}
		if len(keys) == 1 {
			return nil // the one answer
		}
	}
}
