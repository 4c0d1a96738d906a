package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serve runs "simgate serve --simulate 1" in-process and returns once its
// simulated modem is ready.
func serve(t *testing.T) (natsURL string) {
	t.Helper()
	return serveWith(t, "--simulate", "1")
}

// serveWith runs "simgate serve" with args in-process and returns once a
// modem is ready.
func serveWith(t *testing.T, args ...string) (natsURL string) {
	t.Helper()
	addr := freeAddr(t)
	// The default state directory, where send finds the publisher's
	// credentials by itself.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("STATE_DIRECTORY", "")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd(io.Discard, pw)
		cmd.SetArgs(append([]string{"serve", "--nats-listen", addr, "--metrics-listen", "127.0.0.1:0"}, args...))
		done <- cmd.ExecuteContext(ctx)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="modem ready"`) {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready")
	}
	return "nats://" + addr
}

func run(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCmd(&out, io.Discard)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestServeAndSend(t *testing.T) {
	url := serve(t)

	out, err := run("send", "--nats-url", url, "--to", "+45 26 22 79 21", "--code", "034812", "--id", "cli-1", "--wait")
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var reply otp.Reply
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &reply) != nil || reply.Status != otp.ReplyAccepted {
		t.Fatalf("output:\n%s", out)
	}
	var sent otp.Event
	if json.Unmarshal([]byte(lines[2]), &sent) != nil || sent.Type != otp.StateSent || sent.Modem != "sim1" {
		t.Errorf("last line %s", lines[2])
	}

	// The simulated network reports delivery: --wait-delivery follows it.
	// (The code from standard input, out of the shell's history.)
	out, _, err = runIn("034813\n", "send", "--nats-url", url, "--to", "+4526227922", "--code", "-", "--wait-delivery")
	if err != nil {
		t.Fatalf("send --wait-delivery: %v\n%s", err, out)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var delivered otp.Event
	if len(lines) != 4 || json.Unmarshal([]byte(lines[3]), &delivered) != nil || delivered.Type != otp.StateDelivered {
		t.Errorf("--wait-delivery output:\n%s", out)
	}

	_, err = run("send", "--nats-url", url, "--to", "1-800-FLOWERS", "--code", "034812")
	if exitCode(err) != exitRejected {
		t.Errorf("rejected send: exit %d (%v), want %d", exitCode(err), err, exitRejected)
	}
	_, err = run("send", "--nats-url", url, "--to", "+4540404040", "--code", "999999", "--ttl", "1ns", "--wait")
	// 1ns is a valid ttl that always runs out before a modem takes the job.
	if exitCode(err) != exitFailed || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired send: exit %d (%v), want %d expired", exitCode(err), err, exitFailed)
	}
}

func TestSendWithoutDaemon(t *testing.T) {
	_, err := run("send", "--nats-url", "nats://"+freeAddr(t), "--to", "+4526227921", "--code", "123456", "--timeout", "5s")
	if err == nil || exitCode(err) != 1 {
		t.Errorf("send without a server: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil || !strings.HasPrefix(out, "simgate ") {
		t.Errorf("version: %q %v", out, err)
	}
}

func TestCheckConfig(t *testing.T) {
	out, err := run("check-config", "--config", "../../configs/simgate.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	for _, want := range []string{"cooldown: 1m0s", "listen: 127.0.0.1:4222", "name: modem1", "limit: 5"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A password from the environment is reported as set, never shown.
	ext := filepath.Join(t.TempDir(), "ext.yaml")
	os.WriteFile(ext, []byte("simulate: 1\nnats: {url: nats://127.0.0.1:4222, user: gw}\n"), 0o600)
	t.Setenv("SIMGATE_NATS_PASSWORD", "s3cret-pw")
	out, err = run("check-config", "--config", ext)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "s3cret-pw") || !strings.Contains(out, "password: '[redacted]'") {
		t.Errorf("password shown or not reported:\n%s", out)
	}
	t.Setenv("SIMGATE_NATS_PASSWORD", "")
	// A password in the URL is never printed, and going in clear to a
	// remote host is warned about.
	inURL := filepath.Join(t.TempDir(), "inurl.yaml")
	os.WriteFile(inURL, []byte("simulate: 1\nnats: {url: 'nats://gw:pw-in-url@nats1.example:4222'}\n"), 0o600)
	var stdout, stderr bytes.Buffer
	cmd := newRootCmd(&stdout, &stderr)
	cmd.SetArgs([]string{"check-config", "--config", inURL})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String()+stderr.String(), "pw-in-url") || !strings.Contains(stdout.String(), "nats://gw:xxxxx@nats1.example:4222") {
		t.Errorf("URL password shown or URL missing:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "in clear") || !strings.Contains(stderr.String(), "nats1.example") {
		t.Errorf("no clear-text warning: %q", stderr.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("log: {level: loud}\notp: {max_attempts: 0}\nnatz: {url: x}\n"), 0o600)
	_, err = run("check-config", "--config", bad)
	if err == nil || !strings.Contains(err.Error(), "natz") {
		t.Fatalf("bad config: %v", err)
	}
	_, err = run("check-config", "--config", strings.Replace(bad, "bad", "missing", 1))
	if err == nil {
		t.Error("missing file accepted")
	}
	good := filepath.Join(t.TempDir(), "bad2.yaml")
	os.WriteFile(good, []byte("simulate: 1\nlog: {level: loud}\notp: {max_attempts: 0}\n"), 0o600)
	_, err = run("check-config", "--config", good)
	if err == nil || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "otp.max_attempts") {
		t.Errorf("every problem listed? %v", err)
	}
}

func TestModemsProbe(t *testing.T) {
	sim, err := modemsim.Start(modemsim.Config{Name: "probe", PIN: ""})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	locked, err := modemsim.Start(modemsim.Config{Name: "locked", PIN: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	out, err := run("modems", "--probe", "--timeout", "2s", sim.Path(), locked.Path())
	if err != nil {
		t.Fatalf("modems: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	probed := lines[len(lines)-2:]
	for _, want := range []string{sim.Path(), "simgate SIM-1", "356938035643809", "READY", "home", "Simulated", "-73 dBm"} {
		if !strings.Contains(probed[0], want) {
			t.Errorf("probe line lacks %q: %s", want, probed[0])
		}
	}
	// The PIN is never entered by a probe.
	if !strings.Contains(probed[1], "SIM PIN") {
		t.Errorf("locked SIM: %s", probed[1])
	}
}

func TestNkey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.nk")
	out, err := run("nkey", path)
	if err != nil || !strings.HasPrefix(out, "U") || len(strings.TrimSpace(out)) != 56 {
		t.Fatalf("nkey: %q %v", out, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", st, err)
	}
	// Again: the same seed, the same key.
	if again, err := run("nkey", path); err != nil || again != out {
		t.Errorf("second run: %q %v, want %q", again, err, out)
	}
}
