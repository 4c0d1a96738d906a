package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/config"
)

// TestSendAuthRules: send and check-config apply the same rules to the
// same settings, naming flags and configuration keys respectively. Before,
// send let $SIMGATE_NATS_PASSWORD silently win over --password-file.
func TestSendAuthRules(t *testing.T) {
	const secret = "s3cret-from-env"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No server listens there: a connection attempt would fail otherwise.
	url := "nats://" + freeAddr(t)
	t.Setenv(config.EnvNATSPassword, secret)

	_, err := run("send", "--nats-url", url, "--to", "+4526227921", "--code", "123456", "--timeout", "5s",
		"--user", "gw", "--password-file", pwFile)
	const want = "--password-file and $SIMGATE_NATS_PASSWORD: set one"
	if err == nil || err.Error() != want {
		t.Errorf("send: %v, want %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("send: a secret in %q", err)
	}
	// verify and check connect as send does.
	for _, args := range [][]string{
		{"verify", "--to", "+4526227921"},
		{"check", "--id", "v1", "--code", "123456"},
	} {
		_, err := run(append(args, "--nats-url", url, "--timeout", "5s", "--user", "gw", "--password-file", pwFile)...)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args[0], err, want)
		}
	}

	file := filepath.Join(dir, "simgate.yaml")
	body := "simulate: 1\nnats: {url: " + url + ", user: gw, password_file: " + pwFile + "}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = run("check-config", "--config", file)
	const wantKeys = "invalid configuration:\n  - nats.password_file and SIMGATE_NATS_PASSWORD: set one"
	if err == nil || err.Error() != wantKeys {
		t.Errorf("check-config: %v, want %q", err, wantKeys)
	}

	// More than one problem: all of them, in the same order.
	t.Setenv(config.EnvNATSToken, "tok-from-env")
	_, err = run("send", "--nats-url", url, "--to", "+4526227921", "--code", "123456",
		"--password-file", pwFile, "--tls-cert", pwFile)
	const wantAll = "--password-file and $SIMGATE_NATS_PASSWORD: set one\n" +
		"--password-file, $SIMGATE_NATS_TOKEN: use at most one way to authenticate\n" +
		"--password-file needs --user\n" +
		"--tls-cert and --tls-key: set both or neither"
	if err == nil || err.Error() != wantAll {
		t.Errorf("send: %v, want %q", err, wantAll)
	}
}

// TestSendURLFromEnvironment: without --nats-url, $SIMGATE_NATS_URL is
// used (by verify and check too).
func TestSendURLFromEnvironment(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv(config.EnvNATSURL, "nats://"+addr)
	_, err := run("send", "--to", "+4526227921", "--code", "123456", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("send: %v, want a connection error naming %s", err, addr)
	}
	_, err = run("verify", "--to", "+4526227921", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("verify: %v, want a connection error naming %s", err, addr)
	}
	_, err = run("check", "--id", "v1", "--code", "123456", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("check: %v, want a connection error naming %s", err, addr)
	}
}

// TestNATSURLSecretsNeverPrinted: a password or token in --nats-url shows
// nowhere in what serve, send, verify, check and check-config print or
// return, whether the
// server is down or the URL does not parse.
func TestNATSURLSecretsNeverPrinted(t *testing.T) {
	closed := freeAddr(t)
	for _, url := range []string{
		"nats://user:s3cret@" + closed,
		"nats://s3cret@" + closed,
		"user:s3cret@" + closed,
		"nats://user:s3cret@127.0.0.1:port",
		"nats://user:s3cret%zz@" + closed,
		"nats://user:s3c ret@" + closed,
	} {
		for _, args := range [][]string{
			{"serve", "--simulate", "1", "--state-dir", t.TempDir(), "--metrics-listen", "127.0.0.1:0", "--nats-url", url},
			{"send", "--nats-url", url, "--to", "+4526227921", "--code", "1234", "--timeout", "5s"},
			{"verify", "--nats-url", url, "--to", "+4526227921", "--timeout", "5s"},
			{"check", "--nats-url", url, "--id", "v1", "--code", "123456", "--timeout", "5s"},
			{"check-config", "--simulate", "1", "--state-dir", t.TempDir(), "--nats-url", url},
		} {
			var stdout, stderr bytes.Buffer
			cmd := newRootCmd(&stdout, &stderr)
			cmd.SetArgs(args)
			ctx := context.Background()
			if args[0] == "serve" {
				// serve waits for an unreachable server (logging why)
				// until it is stopped.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
				defer cancel()
			}
			err := cmd.ExecuteContext(ctx)
			if wantErr := args[0] != "check-config"; (err != nil) != wantErr {
				t.Errorf("%s %s: error %v, want one %v", args[0], url, err, wantErr)
			}
			out := stdout.String() + stderr.String()
			if err != nil {
				out += "\nerror: " + err.Error()
			}
			if strings.Contains(out, "s3c") {
				t.Errorf("%s %s shows the secret:\n%s", args[0], url, out)
			}
		}
	}
	// Sent in clear to a remote host: a warning, naming the host only.
	var stderr bytes.Buffer
	cmd := newRootCmd(io.Discard, &stderr)
	cmd.SetArgs([]string{"send", "--nats-url", "nats://user:s3cret@192.0.2.1:4222", "--to", "+4526227921", "--code", "1234", "--timeout", "5s"})
	cmd.ExecuteContext(context.Background())
	if s := stderr.String(); !strings.Contains(s, "warning: nats credentials go in clear over plain nats:// to 192.0.2.1") || strings.Contains(s, "s3c") {
		t.Errorf("send: %q", s)
	}
}
