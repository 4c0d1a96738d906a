package otp

// SubjectCheck is the subject on which an auth service asks whether a
// code is right for a managed verification (package verify).
const SubjectCheck = "otp.check"

// MaxCheckSize bounds a check request, in bytes of JSON.
const MaxCheckSize = 1 << 10

// CheckRequest asks whether Code is the code of a verification: the one
// named ID, or the newest pending verification of the number To (with
// Region for a national number). Exactly one of ID and To is given.
type CheckRequest struct {
	ID     string `json:"id,omitempty"`
	To     string `json:"to,omitempty"`
	Region string `json:"region,omitempty"`
	Code   string `json:"code"`
}

// CheckStatus is the answer to a check.
type CheckStatus string

// Answers to a check. A request that is not a check is answered
// CheckRejected with a reason, as otp.request answers.
const (
	CheckApproved CheckStatus = "approved"  // the right code, checked for the first time
	CheckDenied   CheckStatus = "denied"    // a wrong code; attempts_left tells how many more may be tried
	CheckExpired  CheckStatus = "expired"   // the code's time ran out
	CheckLocked   CheckStatus = "locked"    // too many wrong codes
	CheckNotFound CheckStatus = "not_found" // no such verification (or not one pending for the number)
	CheckRejected CheckStatus = "rejected"  // the request is malformed: reason, field, detail
	CheckError    CheckStatus = "error"     // simgate could not answer now: try again
)

// CheckReply is the answer to a CheckRequest. It names no code, and
// nothing of any other verification.
type CheckReply struct {
	Status       CheckStatus `json:"status"`
	ID           string      `json:"id,omitempty"`
	AttemptsLeft int         `json:"attempts_left,omitempty"`
	Reason       Reason      `json:"reason,omitempty"`
	Field        string      `json:"field,omitempty"`
	Detail       string      `json:"detail,omitempty"`
	// RetryAfter (seconds) tells, for a check refused because the
	// number's checks ran out (reason rate_limited), when to try again.
	RetryAfter float64 `json:"retry_after,omitempty"`
}

// verifyCode is the form of a managed code: MinManagedDigits to
// MaxCodeDigits ASCII digits.
func verifyCode(code string) bool {
	if len(code) < MinManagedDigits || len(code) > MaxCodeDigits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// DecodeCheck reads a check request strictly, as DecodeJob reads a job:
// bad input is a *RejectError with a reason and the field at fault.
func DecodeCheck(data []byte) (CheckRequest, error) {
	var c CheckRequest
	if err := decodeObject(data, MaxCheckSize, "check", &c, checkFields); err != nil {
		return c, err
	}
	numberErr := numberForm(c.To) // nil for none
	switch {
	case c.ID == "" && c.To == "":
		return c, reject(ReasonMissingField, "id", "give the verification's id, or the number (to)")
	case c.ID != "" && c.To != "":
		return c, reject(ReasonMalformed, "to", "give the verification's id or the number (to), not both")
	case c.ID != "" && !ValidID(c.ID):
		return c, reject(ReasonInvalidID, "id", "id must be 1-64 characters of [A-Za-z0-9_-]")
	case c.ID != "" && c.Region != "":
		return c, reject(ReasonMalformed, "region", "region goes with to, not with id")
	case numberErr != nil:
		return c, numberErr
	case c.Code == "":
		return c, reject(ReasonMissingField, "code", "code is required")
	case !verifyCode(c.Code):
		return c, reject(ReasonInvalidCode, "code", "code must be %d-%d digits", MinManagedDigits, MaxCodeDigits)
	}
	return c, nil
}
