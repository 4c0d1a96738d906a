package natsauth

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://gw:s3cret@nats1:4222", "nats://gw:xxxxx@nats1:4222"},
		{"nats://t0ken@nats1:4222", "nats://xxxxx@nats1:4222"},
		{"nats://a:4222,nats://gw:s3cret@b:4222", "nats://a:4222,nats://gw:xxxxx@b:4222"},
		{"nats://gw:s3cret@[bad", "[redacted]"},
	} {
		got := RedactURL(tc.in)
		if got != tc.want || strings.Contains(got, "s3cret") || strings.Contains(got, "t0ken") {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
