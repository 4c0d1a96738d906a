package daemon_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/simgate/simgate/daemon"
)

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// authServer starts a NATS server with JetStream and the authentication
// of opts, and returns its port.
func authServer(t *testing.T, opts server.Options) string {
	t.Helper()
	return strconv.Itoa(startNATS(t, opts).Addr().(*net.TCPAddr).Port)
}

// TestNATSURLSecretsNeverPrinted: a password or token in nats.url shows in
// no log line and no error of the daemon, whether the server is down, the
// URL does not parse, or the daemon connects; and sending one in clear to a
// remote host is warned about.
func TestNATSURLSecretsNeverPrinted(t *testing.T) {
	closed := closedAddr(t)
	pwPort := authServer(t, server.Options{Users: []*server.User{{Username: "gw", Password: "s3cret-pw"}}})
	tokPort := authServer(t, server.Options{Authorization: "s3cret-tok"})
	for _, tc := range []struct {
		name    string
		url     string
		started bool
		waited  bool   // for a server that does not answer
		log     string // in the logs
	}{
		{name: "server down", url: "nats://user:s3cret@" + closed, waited: true},
		{name: "token, server down", url: "nats://s3cret@" + closed, waited: true},
		{name: "no scheme", url: "user:s3cret@" + closed, waited: true},
		{name: "list", url: "nats://" + closed + ",nats://user:s3cret@" + closed, waited: true},
		{name: "bad port", url: "nats://user:s3cret@127.0.0.1:port"},
		{name: "bad escape", url: "nats://user:s3cret%zz@" + closed},
		{name: "space", url: "nats://user:s3c ret@" + closed},
		{name: "connected with a password", url: "nats://gw:s3cret-pw@127.0.0.1:" + pwPort, started: true, log: "connected to nats"},
		{name: "connected with a token", url: "nats://s3cret-tok@127.0.0.1:" + tokPort, started: true, log: "connected to nats"},
		{name: "wrong password", url: "nats://gw:s3cret-wrong@127.0.0.1:" + pwPort},
		{name: "wrong token", url: "nats://s3cret-wrong@127.0.0.1:" + tokPort},
		{name: "password in clear to a remote host", url: "nats://user:s3cret@192.0.2.1:4222", waited: true,
			log: "nats credentials go in clear over plain nats:// to a remote host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, "m1", 0)
			cfg := testConfig(t.TempDir(), s)
			cfg.NATS.URL = tc.url
			logs := &logBuffer{t: t}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			// A daemon waits for a server that is down or away: take its
			// first status line, then end the wait.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var status []string
			d, err := daemon.Start(ctx, cfg, log, "test", daemon.WithStatus(func(s string) {
				status = append(status, s)
				cancel()
			}))
			if err == nil {
				d.Stop(context.Background())
			}
			if started := err == nil; started != tc.started {
				t.Errorf("started %v, want %v (%v)", started, tc.started, err)
			}
			if waited := len(status) > 0; waited != tc.waited {
				t.Errorf("waited %v, want %v (%q)", waited, tc.waited, status)
			}
			out := logs.String() + "\nstatus: " + strings.Join(status, "\nstatus: ")
			if err != nil {
				out += "\nerror: " + err.Error()
			}
			if strings.Contains(out, "s3c") {
				t.Errorf("a secret is shown:\n%s", out)
			}
			if !strings.Contains(out, tc.log) {
				t.Errorf("logs lack %q:\n%s", tc.log, out)
			}
		})
	}
}
