package otp

import "time"

// EventType names a state of a job. The set is part of the public contract.
type EventType string

// Event types, in the order a job can go through them.
const (
	EventAccepted EventType = "accepted" // validated and durably queued
	EventRejected EventType = "rejected" // refused before queueing or when taken from the queue; final
	EventRetrying EventType = "retrying" // an attempt failed and the job is queued again
	EventSent     EventType = "sent"     // a modem confirmed +CMGS for every part; final for sending
	EventFailed   EventType = "failed"   // will not be sent; final
	EventExpired  EventType = "expired"  // its ttl passed before a modem could send it; final
	// EventDuplicate: the same code already went to the same number (see
	// DuplicateOf); nothing is sent for this job. Final.
	EventDuplicate EventType = "duplicate"
	// EventSuperseded: a newer code for the same number was accepted before
	// this one was sent; only the newest is sent. Final.
	EventSuperseded EventType = "superseded"
)

// Final reports whether no further sending event follows t.
func (t EventType) Final() bool {
	switch t {
	case EventRejected, EventSent, EventFailed, EventExpired, EventDuplicate, EventSuperseded:
		return true
	}
	return false
}

// Event is published as JSON on otp.events.<job id> at every state change of
// a job. It never contains the code, the text or the full number.
type Event struct {
	Type EventType `json:"type"`
	ID   string    `json:"id"`
	// To is the masked destination ("+45******21").
	To   string    `json:"to,omitempty"`
	Time time.Time `json:"time"`
	// Reason and Detail explain rejected, retrying and failed events.
	Reason Reason `json:"reason,omitempty"`
	// Field names the job field at fault in a rejected event.
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Scope says which limit a rate_limited rejection hit: number, prefix,
	// country or global.
	Scope string `json:"scope,omitempty"`
	// DuplicateOf names the job whose SMS stands for this one (duplicate).
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// SupersededBy names the newer job that replaced this one (superseded).
	SupersededBy string `json:"superseded_by,omitempty"`
	// Resend is true on accepted when the number was sent a code that is
	// still valid: the user asked again.
	Resend bool `json:"resend,omitempty"`
	// RetryAfter (seconds) tells when a rejected job may be tried again, or
	// when a retrying job will be.
	RetryAfter float64 `json:"retry_after,omitempty"`
	// Attempt counts deliveries of the job to a modem worker, from 1.
	Attempt int `json:"attempt,omitempty"`
	// Modem, Refs and Parts describe a sent message: the modem's name, the
	// TP-MR of each part as returned by +CMGS, and the number of parts.
	Modem string `json:"modem,omitempty"`
	Refs  []int  `json:"refs,omitempty"`
	Parts int    `json:"parts,omitempty"`
	// Node names the daemon that published the event.
	Node string `json:"node,omitempty"`
}
