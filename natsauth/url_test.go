package natsauth

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
		{"no scheme is nats://, as for nats.go", "gw:pw@nats1:4222", Client{}, "nats1"},
		{"no scheme, secret in the settings", "nats1:4222", pw, "nats1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(ClearTextHosts(tc.urls, tc.c), ","); got != tc.want {
				t.Errorf("ClearTextHosts(%q) = %q, want %q", tc.urls, got, tc.want)
			}
		})
	}
}

// TestRedactError: what nats.Connect returns for URLs with a password or a
// token, wrapped as callers do, never shows the secret.
func TestRedactError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		url  string
		want string // in the redacted message
	}{
		{"nats://gw:s3cret@" + closed, "no servers available"},
		{"nats://s3cret@" + closed, "no servers available"},
		{"gw:s3cret@" + closed, "no servers available"},
		{"nats://gw:s3cret@127.0.0.1:notaport", `parse [redacted]: invalid port ":notaport" after host`},
		{"nats://gw:s3cret@[::1", "missing ']' in host"},
		{"nats://gw:s3c ret@" + closed, "invalid userinfo"},
		{"nats://gw:s3cret%zz@" + closed, "parse [redacted]: invalid URL escape"},
		{"nats://gw:s3cret%zz@" + closed + ",nats://other:s3cret@" + closed, "invalid URL escape"},
		{"nats://a:4222,nats://gw:s3cret@127.0.0.1:bad", "parse [redacted]: invalid port"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, cerr := nats.Connect(tc.url, nats.Timeout(time.Second))
			if cerr == nil {
				t.Fatal("connected")
			}
			err := fmt.Errorf("connect to nats %s: %w", RedactURL(tc.url), RedactError(cerr, tc.url))
			msg := err.Error()
			if strings.Contains(msg, "s3c") || !strings.Contains(msg, tc.want) {
				t.Errorf("%q: want %q, no secret", msg, tc.want)
			}
		})
	}
	// An error that quotes no secret is kept as it is.
	if err := RedactError(nats.ErrNoServers, "nats://gw:s3cret@h:4222"); !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("RedactError changed a clean error: %v", err)
	}
	if err := RedactError(nil, "nats://gw:s3cret@h:4222"); err != nil {
		t.Errorf("RedactError(nil) = %v", err)
	}
	if err := RedactError(errors.New("dial nats://s3cret@h:4222: refused"), "nats://s3cret@h:4222"); strings.Contains(err.Error(), "s3cret") {
		t.Errorf("token shown: %v", err)
	}
}
