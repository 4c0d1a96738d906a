package otp

import "time"

// State names a state of a job: the one vocabulary of the type of an
// event, the state in a duplicate's Reply, the policy's record of a job and
// the outcome label of metrics. The set is part of the public contract.
type State string

// States, in the order a job can go through them.
const (
	StateAccepted State = "accepted" // validated and durably queued
	StateRejected State = "rejected" // refused before queueing or when taken from the queue; final
	StateRetrying State = "retrying" // an attempt failed and the job is queued again
	StateSent     State = "sent"     // a modem confirmed +CMGS for every part; final for sending
	StateFailed   State = "failed"   // will not be sent; final
	StateExpired  State = "expired"  // its ttl passed before a modem could send it; final
	// StateDuplicate is no longer published: jobs are told apart by id
	// only, never by their code. It stays in the contract for older
	// clients. Final.
	StateDuplicate State = "duplicate"
	// StateSuperseded: a newer code for the same number was accepted before
	// this one was sent; only the newest is sent. Final.
	StateSuperseded State = "superseded"

	// After sent, status reports tell what became of the message.

	// StateDelivered: every part reached the phone (TP-Status 0x00-0x1F).
	// Final.
	StateDelivered State = "delivered"
	// StateDeliveryPending: the service centre met a temporary error
	// (TP-Status 0x20-0x3F) and still tries; at most once per job.
	StateDeliveryPending State = "delivery_pending"
	// StateDeliveryFailed: the service centre gave up on a part
	// (TP-Status 0x40-0x7F but 0x46, see Event.TPStatus). Final.
	StateDeliveryFailed State = "delivery_failed"
	// StateDeliveryExpired: the message's validity period, the code's
	// remaining ttl, passed before the phone could be reached
	// (TP-Status 0x46). Final.
	StateDeliveryExpired State = "delivery_expired"
	// StateDeliveryUnknown: no final status report came within
	// otp.delivery_timeout. Final.
	StateDeliveryUnknown State = "delivery_unknown"

	// A managed verification (otp.verify) ends with one of these, told
	// on the subject of the verification's id, beside its job's events.

	// StateApproved: the right code was checked. Final for the
	// verification.
	StateApproved State = "approved"
	// StateLocked: too many wrong codes were checked. Final for the
	// verification.
	StateLocked State = "locked"
)

// States lists every State, in the order above.
var States = []State{StateAccepted, StateRejected, StateRetrying, StateSent, StateFailed,
	StateExpired, StateDuplicate, StateSuperseded, StateDelivered, StateDeliveryPending,
	StateDeliveryFailed, StateDeliveryExpired, StateDeliveryUnknown, StateApproved, StateLocked}

// Final reports whether no further sending event follows t.
func (t State) Final() bool {
	switch t {
	case StateRejected, StateSent, StateFailed, StateExpired, StateDuplicate, StateSuperseded:
		return true
	}
	return false
}

// DeliveryFinal reports whether t ends a job's delivery tracking: no event
// follows it. A job that was sent ends with one of delivered,
// delivery_failed, delivery_expired and delivery_unknown, unless its modem
// passes no status reports on (then sent is its last event).
func (t State) DeliveryFinal() bool {
	switch t {
	case StateDelivered, StateDeliveryFailed, StateDeliveryExpired, StateDeliveryUnknown:
		return true
	}
	return t.Final() && t != StateSent
}

// Last reports whether no event follows e: a final event, except a sent
// event that awaits a status report, or a final delivery event.
func (e Event) Last() bool {
	if e.Type == StateSent {
		return !e.Report
	}
	return e.Type.DeliveryFinal()
}

// Event is published as JSON on otp.events.<job id> at every state change of
// a job. It never contains the code, the text or the full number.
type Event struct {
	Type State  `json:"type"`
	ID   string `json:"id"`
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
	Scope Scope `json:"scope,omitempty"`
	// DuplicateOf is no longer set (see StateDuplicate).
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
	// Report is true on sent when a status report was requested: a
	// delivery event (delivered, delivery_failed, delivery_expired or
	// delivery_unknown) will follow.
	Report bool `json:"report,omitempty"`
	// TPStatus is the TP-Status (3GPP TS 23.040 9.2.3.15) of the status
	// report behind a delivery event: 0 received by the phone, 1 forwarded
	// without confirmation, 0x20-0x3F temporary errors, 0x40-0x7F final
	// errors (0x46 validity period expired).
	TPStatus *int `json:"status,omitempty"`
	// Discharge is the service centre's time of that report: when the
	// message was delivered or given up.
	Discharge time.Time `json:"discharge,omitzero"`
	// Latency (seconds) is the time from the job's acceptance to a
	// delivered event.
	Latency float64 `json:"latency,omitempty"`
	// Node names the daemon that published the event.
	Node string `json:"node,omitempty"`
}
