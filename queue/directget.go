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
//
// Reads that arrive while maxBatches requests are out wait, and go out
// together in the next request, when one is answered: under a flood,
// every refusal reads its job's record, and a few requests carry them all
// (to the server, one request costs about as much as a short batch); a
// lone read goes out at once.
type directGet struct {
	nc     *nats.Conn
	api    string // $JS.API.DIRECT.GET.<stream>
	prefix string // what keys are subjects after ($KV.<bucket>.)
	inbox  string // the answers' subjects: inbox + call number
	sub    *nats.Subscription

	mu    sync.Mutex
	next  uint64
	calls map[string]chan *nats.Msg
	// waiting are the reads for the next request; out is how many
	// requests are out.
	waiting []*read
	out     int
}

// maxBatches is how many direct gets one directGet has out at once, and
// maxBatchKeys how many keys one carries at most (the server answers at
// most 1024 messages to one).
const (
	maxBatches   = 2
	maxBatchKeys = 256
)

// read is one caller's keys, and where their entries go.
type read struct {
	keys    []string
	entries []policy.Entry
	// done gets the read's outcome, after entries are filled unless
	// abandoned; abandoned (under directGet.mu) is true once the caller
	// stopped waiting, and its entries must not be written.
	done      chan error
	abandoned bool
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
// deletion. The keys are read in one request, possibly with other
// callers' keys: what one get reads is one moment of the stream.
func (g *directGet) get(ctx context.Context, keys []string, entries []policy.Entry) error {
	if len(keys) == 0 {
		return nil
	}
	if len(keys) > maxBatchKeys {
		return fmt.Errorf("direct get: %d keys, more than %d", len(keys), maxBatchKeys)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	r := &read{keys: keys, entries: entries, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, r)
	if g.out < maxBatches {
		g.out++
		go g.run(g.takeLocked())
	}
	g.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
	}
	g.mu.Lock()
	r.abandoned = true
	g.mu.Unlock()
	select {
	case err := <-r.done: // answered meanwhile
		return err
	default:
		return fmt.Errorf("direct get: %w", ctx.Err())
	}
}

// takeLocked takes the waiting reads for a request: all of them, or as
// many as fit in maxBatchKeys.
func (g *directGet) takeLocked() []*read {
	n, keys := 0, 0
	for n < len(g.waiting) && keys+len(g.waiting[n].keys) <= maxBatchKeys {
		keys += len(g.waiting[n].keys)
		n++
	}
	batch := g.waiting[:n:n]
	g.waiting = append([]*read(nil), g.waiting[n:]...)
	return batch
}

// run reads batch's keys, hands each read its entries, and goes on with
// the reads that came meanwhile.
func (g *directGet) run(batch []*read) {
	for batch != nil {
		g.mu.Lock()
		var keys []string
		for _, r := range batch {
			if !r.abandoned {
				keys = append(keys, r.keys...)
			}
		}
		g.mu.Unlock()
		found, err := g.request(keys)
		g.mu.Lock()
		for _, r := range batch {
			if !r.abandoned && err == nil {
				for i, k := range r.keys {
					r.entries[i] = found[k]
				}
			}
			r.done <- err
		}
		batch = nil
		if len(g.waiting) > 0 {
			batch = g.takeLocked()
		} else {
			g.out--
		}
		g.mu.Unlock()
	}
}

// request asks for the last messages of keys (which may repeat) and
// returns the entries of those that have one.
func (g *directGet) request(keys []string) (map[string]policy.Entry, error) {
	subjects := make([]string, 0, len(keys))
	seen := make(map[string]policy.Entry, len(keys))
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = policy.Entry{}
			subjects = append(subjects, g.prefix+k)
		}
	}
	clear(seen)
	if len(subjects) == 0 {
		return seen, nil
	}
	// One key is asked for in the subject (the server's fast path);
	// several in a batch request.
	api, req := g.api+"."+subjects[0], []byte(nil)
	if len(subjects) > 1 {
		var err error
		api = g.api
		req, err = json.Marshal(struct {
			MultiLast []string `json:"multi_last"`
			Batch     int      `json:"batch"`
		}{subjects, len(subjects)})
		if err != nil {
			return nil, err
		}
	}
	ch := make(chan *nats.Msg, len(subjects)+1)
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
		return nil, fmt.Errorf("direct get: %w", err)
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for got := 0; ; got++ {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-timeout.C:
			return nil, fmt.Errorf("%w in 5s", errNoAnswer)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch {
			case status == "204", status == "404" && got == 0:
				return seen, nil // the end of the batch; no message at all
			}
			return nil, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
		subject := m.Header.Get(nats.JSSubject)
		seq, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
		if err != nil || !strings.HasPrefix(subject, g.prefix) {
			return nil, fmt.Errorf("%w: malformed message for %q", errNoAnswer, subject)
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
		seen[subject[len(g.prefix):]] = e
		if len(subjects) == 1 {
			return seen, nil // the one answer
		}
	}
}
