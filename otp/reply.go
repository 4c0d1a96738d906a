package otp

// ReplyStatus is the immediate answer to a job sent on otp.request:
// accepted, rejected or error. (A job's later states are State.)
type ReplyStatus string

// Statuses of a Reply.
const (
	ReplyAccepted ReplyStatus = "accepted" // validated and durably queued
	ReplyRejected ReplyStatus = "rejected" // refused; see Reason
	ReplyError    ReplyStatus = "error"    // simgate could not queue the job; try again
)

// Reply is the JSON answer on otp.request.
type Reply struct {
	Status ReplyStatus `json:"status"`
	ID     string      `json:"id,omitempty"`
	// To is the masked, normalised destination.
	To string `json:"to,omitempty"`
	// Duplicate is true when the job id was queued before: nothing new was
	// queued and the first job's events tell its fate.
	Duplicate bool `json:"duplicate,omitempty"`
	// DuplicateOf is no longer set (jobs are told apart by id only); it
	// stays for older clients. State is a repeated id's current state:
	// accepted, sent, failed, ...
	DuplicateOf string `json:"duplicate_of,omitempty"`
	State       State  `json:"state,omitempty"`
	// Resend is true when the number was sent a code that is still valid.
	Resend     bool    `json:"resend,omitempty"`
	Scope      Scope   `json:"scope,omitempty"`
	Reason     Reason  `json:"reason,omitempty"`
	Field      string  `json:"field,omitempty"`
	Detail     string  `json:"detail,omitempty"`
	RetryAfter float64 `json:"retry_after,omitempty"`
	// Verification names, in the answer to otp.verify, the verification
	// whose code the SMS carries: the request's id, or for a resend the
	// number's pending verification. A check may name either.
	Verification string `json:"verification,omitempty"`
}

// RejectReply returns the reply for a rejected job.
func RejectReply(id string, re *RejectError) Reply {
	return Reply{
		Status:     ReplyRejected,
		ID:         id,
		Reason:     re.Reason,
		Field:      re.Field,
		Detail:     re.Detail,
		Scope:      re.Scope,
		RetryAfter: re.RetryAfter.Seconds(),
	}
}

// Follow returns the id whose events tell this job's fate: the job's own
// (or DuplicateOf, which older daemons set for the same code under another
// id).
func (r Reply) Follow() string {
	if r.DuplicateOf != "" {
		return r.DuplicateOf
	}
	return r.ID
}
