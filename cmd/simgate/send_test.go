package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// TestSendURLFromEnvironment: without --nats-url, $SIMGATE_NATS_URL is used.
func TestSendURLFromEnvironment(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv(config.EnvNATSURL, "nats://"+addr)
	_, err := run("send", "--to", "+4526227921", "--code", "123456", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("send: %v, want a connection error naming %s", err, addr)
	}
}
