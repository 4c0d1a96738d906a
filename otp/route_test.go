package otp

import "testing"

func TestRoute(t *testing.T) {
	dk, err := ParseNumber("+4526227921", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		route      Route
		valid, hit bool
	}{
		{"DK", true, true},
		{"SE", true, false},
		{"+45", true, true},
		{"+4526", true, true},
		{"+4530", true, false},
		{"+4526227921", true, true},
		{"dk", false, false},
		{"DNK", false, false},
		{"+", false, false},
		{"+045", false, false},
		{"45", false, false},
		{"+4526227921123456", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		if err := tc.route.Validate(); (err == nil) != tc.valid {
			t.Errorf("%q.Validate() = %v, want valid %v", tc.route, err, tc.valid)
		}
		if tc.valid && tc.route.Match(dk) != tc.hit {
			t.Errorf("%q.Match(+4526227921) = %v", tc.route, !tc.hit)
		}
	}
}
