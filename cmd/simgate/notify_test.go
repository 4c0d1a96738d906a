package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/simgate/simgate/config"
)

// fakeSystemd listens on a notify socket like systemd and returns the
// datagrams it receives.
func fakeSystemd(t *testing.T) <-chan string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

// expect returns the next datagram containing want, skipping others.
func expect(t *testing.T, msgs <-chan string, want string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q from the daemon", want)
			return ""
		}
	}
}

func TestServeNotifiesSystemd(t *testing.T) {
	msgs := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd(io.Discard, io.Discard)
		cmd.SetArgs([]string{"serve", "--simulate", "1", "--state-dir", t.TempDir(),
			"--nats-listen", freeAddr(t), "--metrics-listen", "127.0.0.1:0"})
		done <- cmd.ExecuteContext(ctx)
	}()

	var first string
	select {
	case first = <-msgs:
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no notification")
	}
	if !strings.Contains(first, "READY=1") || !strings.Contains(first, "STATUS=") || !strings.Contains(first, "/1 modems ready") {
		t.Errorf("first notification %q, want READY=1 and a status", first)
	}
	expect(t, msgs, "WATCHDOG=1")
	expect(t, msgs, "WATCHDOG=1")
	cancel()
	expect(t, msgs, "STOPPING=1")
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestNotifierWithoutSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "200000")
	n := newNotifier()
	if err := n.Notify("READY=1"); err != nil || n.WatchdogInterval() != 0 {
		t.Errorf("without NOTIFY_SOCKET: %v, watchdog %s", err, n.WatchdogInterval())
	}
	fakeSystemd(t)
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if iv := newNotifier().WatchdogInterval(); iv != 0 {
		t.Errorf("watchdog of another pid: %s", iv)
	}
}

// fakeDaemon records reloads.
type fakeDaemon struct {
	mu      sync.Mutex
	brands  []string
	healthy error
	checked chan struct{} // gets a value at each Healthy call, if not nil
}

func (f *fakeDaemon) Reload(cfg config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.brands = append(f.brands, cfg.OTP.Brand)
	return nil
}
func (f *fakeDaemon) Healthy() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.checked != nil {
		f.checked <- struct{}{}
	}
	return f.healthy
}
func (f *fakeDaemon) ModemsReady() int           { return 1 }
func (f *fakeDaemon) Modems() int                { return 2 }
func (f *fakeDaemon) Stop(context.Context) error { return nil }

func (f *fakeDaemon) reloaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.brands...)
}

func TestSIGHUPReloadsTheConfiguration(t *testing.T) {
	msgs := fakeSystemd(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "simgate.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte("simulate: 1\nstate_dir: "+dir+"\n"+s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("otp: {brand: One}\n")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	if err := fs.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	d := &fakeDaemon{}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &service{d: d, log: slog.New(slog.DiscardHandler), level: level, notify: newNotifier(),
		load: func() (config.Config, error) { return config.Load(fs) }, hup: hup, stopTimeout: time.Second}
	go func() { done <- s.run(ctx) }()
	if m := expect(t, msgs, "READY=1"); !strings.Contains(m, "STATUS=1/2 modems ready") {
		t.Errorf("ready: %q", m)
	}

	for _, bad := range []string{"otp: {brnd: Two}\n", "log: {level: loud}\n", "otp: [\n"} {
		write(bad)
		hup <- os.Interrupt // any value: the channel stands for SIGHUP
		if m := expect(t, msgs, "RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
			t.Errorf("reloading: %q", m)
		}
		expect(t, msgs, "READY=1")
	}
	if got := d.reloaded(); len(got) != 0 || level.Level() != slog.LevelInfo {
		t.Errorf("bad files applied: reloads %v, level %s", got, level.Level())
	}

	write("otp: {brand: Three}\nlog: {level: debug}\n")
	hup <- os.Interrupt
	expect(t, msgs, "RELOADING=1")
	expect(t, msgs, "READY=1")
	if got := d.reloaded(); len(got) != 1 || got[0] != "Three" || level.Level() != slog.LevelDebug {
		t.Errorf("good file: reloads %v, level %s", got, level.Level())
	}

	cancel()
	expect(t, msgs, "STOPPING=1")
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestWatchdogOnlyWhileHealthy(t *testing.T) {
	msgs := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	d := &fakeDaemon{healthy: errors.New("1 of 2 modem workers running"), checked: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &service{d: d, log: slog.New(slog.DiscardHandler), notify: newNotifier(), stopTimeout: time.Second,
		statusEvery: time.Hour}
	go func() { done <- s.run(ctx) }()
	if m := expect(t, msgs, "READY=1"); !strings.Contains(m, "1 of 2 modem workers running") {
		t.Errorf("ready while unhealthy: %q", m)
	}
	for range 5 { // the ready status and four watchdog ticks
		<-d.checked
	}
	d.mu.Lock()
	d.healthy = nil
	d.mu.Unlock()
	for m := expect(t, msgs, "="); !strings.Contains(m, "WATCHDOG=1"); m = expect(t, msgs, "=") {
		t.Errorf("unexpected %q", m)
	}
	cancel()
	go func() {
		for range d.checked {
		}
	}()
	expect(t, msgs, "STOPPING=1")
	<-done
}
