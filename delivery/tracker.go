// Package delivery follows sent SMS to their end: it matches the status
// reports a modem passes on to the messages they report on, and decides
// each message's delivery outcome.
//
// A report names its message by the modem's one-byte message reference
// (TP-MR), which wraps after 256 sends, and by the recipient: a Tracker
// matches on the modem, the reference, the recipient and the time, never on
// the reference alone. A message of several parts is delivered when every
// part is.
package delivery

import (
	"strings"
	"sync"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
)

// Message is a sent message to follow.
type Message struct {
	// ID is the job id.
	ID string
	// Modem is the name of the modem that sent it.
	Modem string
	// To is the recipient in E.164 ("+4526227921").
	To string
	// Masked is To as logs and events show it ("+45******21"); the
	// tracker only passes it on.
	Masked string
	// Seq is the stream sequence of the queued message that carried the
	// job; the tracker only passes it on.
	Seq uint64
	// Refs are the message references +CMGS answered, one per part.
	Refs []int
	// Accepted is when the job was accepted; Sent when its last part was
	// confirmed.
	Accepted, Sent time.Time
	// Restored marks a message followed on from the journal after a
	// restart; the tracker only passes it on.
	Restored bool
}

// Outcome is a change of a message's delivery state.
type Outcome struct {
	Message Message
	// State is the job state the delivery reached: otp.StateDelivered,
	// StateDeliveryPending (not final), StateDeliveryFailed,
	// StateDeliveryExpired or StateDeliveryUnknown.
	State otp.State
	// TPStatus is the TP-Status of the report that decided it; -1 for
	// otp.StateDeliveryUnknown.
	TPStatus int
	// Discharge is the service centre's time of the deciding report
	// (TP-DT); zero for otp.StateDeliveryUnknown.
	Discharge time.Time
	// At is when the tracker decided.
	At time.Time
}

// Config configures a Tracker.
type Config struct {
	// Timeout is how long a message waits for its final report before it
	// is otp.StateDeliveryUnknown. 24 h when zero.
	Timeout time.Duration
	// Early is how long a report that matches no message yet is held for
	// one being tracked (a report can overtake the send's bookkeeping).
	// 30 s when zero.
	Early time.Duration
	// Settling, if set, tells whether a send on the named modem may be
	// confirmed but not yet tracked: only then is a report that matches
	// nothing held (until Settled, or Early). Nil holds every such report.
	Settling func(modemName string) bool
	// Notify receives every outcome: at most one otp.StateDeliveryPending and exactly one
	// final outcome per tracked message, in that order. It is called
	// without locks held, from Report or from a timer.
	Notify func(Outcome)
	// Reported, if set, learns the fate of every report exactly once:
	// matched, or not (after the Early hold).
	Reported func(modemName string, r modem.Report, matched bool)
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Tracker matches status reports to messages. Its methods are safe for
// concurrent use.
type Tracker struct {
	cfg Config

	mu      sync.Mutex
	byRef   map[refKey][]*entry
	early   map[refKey][]heldReport
	pending int
	closed  bool
}

type refKey struct {
	modem string
	mr    int
}

type entry struct {
	msg        Message
	parts      []modem.Delivery // per part; -1 while no report
	statusSeen bool             // a pending outcome went out
	done       bool
	timer      *time.Timer
}

type heldReport struct {
	r  modem.Report
	at time.Time
}

const noReport modem.Delivery = -1

// New returns a Tracker.
func New(cfg Config) *Tracker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 24 * time.Hour
	}
	if cfg.Early <= 0 {
		cfg.Early = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func(Outcome) {}
	}
	return &Tracker{cfg: cfg, byRef: map[refKey][]*entry{}, early: map[refKey][]heldReport{}}
}

// Pending returns how many messages wait for a final report.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending
}

// Track starts following m: its outcome comes through Config.Notify. Its
// timeout counts from m.Sent (from now when zero), so a message journalled
// before a restart can be tracked again. Reports that arrived for it before
// Track are applied now.
func (t *Tracker) Track(m Message) {
	if len(m.Refs) == 0 {
		return
	}
	e := &entry{msg: m, parts: make([]modem.Delivery, len(m.Refs))}
	for i := range e.parts {
		e.parts[i] = noReport
	}
	var out []Outcome
	var held []heldReport
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	for _, ref := range m.Refs {
		k := refKey{m.Modem, ref}
		t.byRef[k] = append(t.byRef[k], e)
	}
	t.pending++
	// The timeout counts from the send: a message restored after a
	// restart has less time left.
	d := t.cfg.Timeout
	if !m.Sent.IsZero() {
		d -= t.cfg.Now().Sub(m.Sent)
	}
	e.timer = time.AfterFunc(max(d, 0), func() { t.expire(e) })
	for _, ref := range m.Refs {
		k := refKey{m.Modem, ref}
		keep := t.early[k][:0]
		for _, h := range t.early[k] {
			if i := partFor(e, ref, h.r); i >= 0 {
				held = append(held, h)
				if o, ok := t.apply(e, i, h.r); ok {
					out = append(out, o)
				}
				continue
			}
			keep = append(keep, h)
		}
		t.setEarly(k, keep)
	}
	t.mu.Unlock()
	for _, h := range held {
		t.reported(m.Modem, h.r, true)
	}
	for _, o := range out {
		t.cfg.Notify(o)
	}
}

// Report applies a status report the named modem passed on.
func (t *Tracker) Report(modemName string, r modem.Report) {
	now := t.cfg.Now()
	k := refKey{modemName, r.MR}
	t.mu.Lock()
	expired := t.dropEarly(now)
	e, part := t.match(k, r)
	var o Outcome
	var notify, held bool
	switch {
	case e != nil:
		o, notify = t.apply(e, part, r)
	case !t.closed && (t.cfg.Settling == nil || t.cfg.Settling(modemName)):
		t.early[k] = append(t.early[k], heldReport{r: r, at: now})
		held = true
	}
	t.mu.Unlock()
	for _, h := range expired {
		t.reported(h.modem, h.r, false)
	}
	if held {
		// Give it up as unmatched if nothing claims it in time.
		time.AfterFunc(t.cfg.Early, t.sweepEarly)
	} else {
		t.reported(modemName, r, e != nil)
	}
	if notify {
		t.cfg.Notify(o)
	}
}

func (t *Tracker) reported(modemName string, r modem.Report, matched bool) {
	if t.cfg.Reported != nil {
		t.cfg.Reported(modemName, r, matched)
	}
}

// match finds the message and part a report is about: same modem and
// reference, same recipient, that part still without a final report. When
// several qualify (the reference wrapped while both waited), the one sent
// nearest the service centre's timestamp wins.
func (t *Tracker) match(k refKey, r modem.Report) (*entry, int) {
	var best *entry
	bestPart := -1
	var bestDist time.Duration
	for _, e := range t.byRef[k] {
		i := partFor(e, k.mr, r)
		if i < 0 {
			continue
		}
		d := e.msg.Sent.Sub(r.SCTS).Abs()
		if r.SCTS.IsZero() {
			d = 0 // keep the oldest
		}
		if best == nil || d < bestDist {
			best, bestPart, bestDist = e, i, d
		}
	}
	return best, bestPart
}

// partFor returns the index of e's part with reference mr that r may
// report on, or -1.
func partFor(e *entry, mr int, r modem.Report) int {
	if e.done || !SameNumber(e.msg.To, r.Recipient) {
		return -1
	}
	for i, ref := range e.msg.Refs {
		if ref == mr && (e.parts[i] == noReport || e.parts[i] == modem.Pending) {
			return i
		}
	}
	return -1
}

// apply records r for part i of e and returns the outcome it causes.
// Called with t.mu held.
func (t *Tracker) apply(e *entry, i int, r modem.Report) (Outcome, bool) {
	d := r.Delivery()
	e.parts[i] = d
	o := Outcome{Message: e.msg, TPStatus: int(r.TPStatus), Discharge: r.Discharge, At: t.cfg.Now()}
	switch d {
	case modem.Pending:
		if e.statusSeen {
			return o, false
		}
		e.statusSeen = true
		o.State = otp.StateDeliveryPending
		return o, true
	case modem.Undeliverable:
		o.State = otp.StateDeliveryFailed
	case modem.ValidityExpired:
		o.State = otp.StateDeliveryExpired
	case modem.Delivered:
		for _, p := range e.parts {
			if p != modem.Delivered {
				return o, false
			}
		}
		o.State = otp.StateDelivered
	}
	t.finish(e)
	return o, true
}

// finish stops tracking e. Called with t.mu held.
func (t *Tracker) finish(e *entry) {
	e.done = true
	e.timer.Stop()
	t.pending--
	for _, ref := range e.msg.Refs {
		k := refKey{e.msg.Modem, ref}
		list := t.byRef[k]
		for j, x := range list {
			if x == e {
				list = append(list[:j], list[j+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(t.byRef, k)
		} else {
			t.byRef[k] = list
		}
	}
}

// expire ends e as otp.StateDeliveryUnknown when its timeout passes without a final report.
func (t *Tracker) expire(e *entry) {
	t.mu.Lock()
	if e.done || t.closed {
		t.mu.Unlock()
		return
	}
	t.finish(e)
	t.mu.Unlock()
	t.cfg.Notify(Outcome{Message: e.msg, State: otp.StateDeliveryUnknown, TPStatus: -1, At: t.cfg.Now()})
}

type expiredReport struct {
	modem string
	r     modem.Report
}

// dropEarly removes held reports older than Early. Called with t.mu held.
func (t *Tracker) dropEarly(now time.Time) []expiredReport {
	var out []expiredReport
	for k, hs := range t.early {
		keep := hs[:0]
		for _, h := range hs {
			if now.Sub(h.at) >= t.cfg.Early {
				out = append(out, expiredReport{k.modem, h.r})
				continue
			}
			keep = append(keep, h)
		}
		t.setEarly(k, keep)
	}
	return out
}

func (t *Tracker) sweepEarly() {
	t.mu.Lock()
	expired := t.dropEarly(t.cfg.Now())
	t.mu.Unlock()
	for _, h := range expired {
		t.reported(h.modem, h.r, false)
	}
}

func (t *Tracker) setEarly(k refKey, hs []heldReport) {
	if len(hs) == 0 {
		delete(t.early, k)
	} else {
		t.early[k] = hs
	}
}

// Settled says that no send on the named modem waits to be tracked any
// more: reports held for it that still match nothing are given up.
func (t *Tracker) Settled(modemName string) {
	t.mu.Lock()
	var out []modem.Report
	for k, hs := range t.early {
		if k.modem != modemName {
			continue
		}
		for _, h := range hs {
			out = append(out, h.r)
		}
		delete(t.early, k)
	}
	t.mu.Unlock()
	for _, r := range out {
		t.reported(modemName, r, false)
	}
}

// Flush reports every held report as unmatched now; for tests and
// shutdown.
func (t *Tracker) Flush() {
	t.mu.Lock()
	var out []expiredReport
	for k, hs := range t.early {
		for _, h := range hs {
			out = append(out, expiredReport{k.modem, h.r})
		}
		delete(t.early, k)
	}
	t.mu.Unlock()
	for _, h := range out {
		t.reported(h.modem, h.r, false)
	}
}

// Close stops the tracker: pending messages get no outcome, held reports
// are reported unmatched.
func (t *Tracker) Close() {
	t.mu.Lock()
	t.closed = true
	for _, list := range t.byRef {
		for _, e := range list {
			e.timer.Stop()
		}
	}
	t.mu.Unlock()
	t.Flush()
}

// SameNumber reports whether a report's recipient (TP-RA) names the E.164
// number e164. Service centres give it in international format, or in
// national format without the country code: then the national number
// must end e164 (with at least six digits to go on).
func SameNumber(e164, ra string) bool {
	want := strings.TrimPrefix(e164, "+")
	if strings.HasPrefix(ra, "+") {
		return ra[1:] == want
	}
	if ra == want {
		return true
	}
	national := strings.TrimLeft(ra, "0")
	return len(national) >= 6 && len(national) < len(want) && strings.HasSuffix(want, national)
}
