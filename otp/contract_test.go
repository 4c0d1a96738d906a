package otp

import "testing"

func TestEventSubject(t *testing.T) {
	if got := EventSubject("abc"); got != "otp.events.abc" {
		t.Errorf("EventSubject = %q, want otp.events.abc", got)
	}
	if got := EventSubject("abc"); got == SubjectRejectedNoID {
		t.Errorf("a job's events share the no-id subject %q", got)
	}
}
