package otp

// The wire contract: where auth services publish jobs and read answers and
// events. The JSON documents on these subjects are Job, Reply and Event,
// described for other languages by the JSON Schemas in schema/.
const (
	// SubjectSend is where auth services publish jobs to be queued
	// durably (JetStream; the job id as Nats-Msg-Id).
	SubjectSend = "otp.send"
	// SubjectRequest is the request-reply endpoint that validates a job,
	// queues it and answers at once with a Reply.
	SubjectRequest = "otp.request"
	// SubjectEvents prefixes the event subjects: otp.events.<job id>.
	SubjectEvents = "otp.events"
	// SubjectRejectedNoID carries rejected events of jobs without a usable
	// id (ids never start with '_').
	SubjectRejectedNoID = SubjectEvents + "._invalid"

	// StreamJobs is the work-queue stream holding jobs on SubjectSend
	// until they end.
	StreamJobs = "OTP_JOBS"
	// StreamEvents keeps the events on SubjectEvents.> for late readers:
	// a client may follow a job's events from the first one.
	StreamEvents = "OTP_EVENTS"
)

// EventSubject returns the subject of job id's events.
func EventSubject(id string) string { return SubjectEvents + "." + id }
