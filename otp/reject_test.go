package otp

import (
	"errors"
	"fmt"
	"testing"
)

// TestAsReject: AsReject answers as errors.As, whose allocation its fast
// path for an unwrapped *RejectError avoids.
func TestAsReject(t *testing.T) {
	re := &RejectError{Reason: ReasonMalformed}
	var none *RejectError
	for _, err := range []error{nil, re, fmt.Errorf("wrapped: %w", re), errors.New("other"), none} {
		var want *RejectError
		wantOK := errors.As(err, &want)
		if got, ok := AsReject(err); got != want || ok != wantOK {
			t.Errorf("AsReject(%#v) = %v, %v; want %v, %v", err, got, ok, want, wantOK)
		}
	}
}
