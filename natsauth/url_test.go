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

func TestClearTextHosts(t *testing.T) {
	pw := Client{User: "gw", PasswordFile: "/run/pw"}
	for _, tc := range []struct {
		name string
		urls string
		c    Client
		want string
	}{
		{"password over plain nats to a remote host", "nats://nats1:4222", pw, "nats1"},
		{"password in the URL", "nats://gw:pw@nats1", Client{}, "nats1"},
		{"no port", "nats://nats1", Client{Token: "t"}, "nats1"},
		{"loopback", "nats://127.0.0.1:4222,nats://localhost:4222", pw, ""},
		{"tls scheme", "tls://nats1:4222", pw, ""},
		{"tls configured", "nats://nats1:4222", Client{User: "gw", Password: "p", CAFile: "/ca"}, ""},
		{"no secret", "nats://nats1:4222", Client{}, ""},
		{"nkey sends no secret", "nats://nats1:4222", Client{NkeySeedFile: "/seed"}, ""},
		{"list", "nats://a:4222,tls://b:4222,nats://c:4222", pw, "a,c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(ClearTextHosts(tc.urls, tc.c), ","); got != tc.want {
				t.Errorf("ClearTextHosts(%q) = %q, want %q", tc.urls, got, tc.want)
			}
		})
	}
}
