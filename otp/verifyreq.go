package otp

// SubjectVerify is the subject on which an auth service asks simgate to
// make a code, send it and keep it for otp.check (managed codes, package
// verify).
const SubjectVerify = "otp.verify"

// VerifyRequest starts a managed verification: a job without its code,
// which simgate makes. Digits is the code's length (6-10; 6 when zero);
// New asks for a new code even when the number has a valid one (which is
// otherwise sent again, as a resend).
type VerifyRequest struct {
	ID       string   `json:"id"`
	To       string   `json:"to"`
	Region   string   `json:"region,omitempty"`
	TTL      Duration `json:"ttl,omitzero"`
	Template string   `json:"template,omitempty"`
	Locale   string   `json:"locale,omitempty"`
	Origin   string   `json:"origin,omitempty"`
	AppHash  string   `json:"app_hash,omitempty"`
	Digits   int      `json:"digits,omitempty"`
	New      bool     `json:"new,omitempty"`
}

// Job returns the job that sends code for r.
func (r VerifyRequest) Job(code string) Job {
	return Job{ID: r.ID, To: r.To, Region: r.Region, Code: code, TTL: r.TTL, Template: r.Template,
		Locale: r.Locale, Origin: r.Origin, AppHash: r.AppHash}
}

// MinManagedDigits is the fewest digits of a code simgate makes
// (otp.verify), whatever an operator allows for codes of its own
// (Limits.MinCodeDigits).
const MinManagedDigits = 6

// DecodeVerify reads a verification request strictly, as DecodeJob reads
// a job, with the same rejections for the fields they share.
func DecodeVerify(data []byte) (VerifyRequest, error) {
	var r VerifyRequest
	if err := decodeObject(data, MaxJobSize, "request", &r, verifyFields); err != nil {
		return r, err
	}
	if r.Digits != 0 && (r.Digits < MinManagedDigits || r.Digits > MaxCodeDigits) {
		return r, reject(ReasonInvalidCode, "digits", "digits must be %d to %d", MinManagedDigits, MaxCodeDigits)
	}
	// The fields a job has are a job's: checked as one, a code standing
	// in for the one simgate makes.
	j := r.Job("000000")
	return r, j.validate()
}
