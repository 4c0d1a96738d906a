package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/otp"
)

// TestStartWaitsForNATS: a daemon started while its NATS server is down
// does not exit. It waits, says why on /readyz and in its status, and
// takes jobs once the server is up.
func TestStartWaitsForNATS(t *testing.T) {
	ports := freePorts(t, 2)
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.NATS.URL = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	cfg.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", ports[1])
	logs, log := testLogger(t)
	statuses := make(chan string, 64)
	type started struct {
		d   *daemon.Daemon
		err error
	}
	done := make(chan started, 1)
	go func() {
		d, err := daemon.Start(context.Background(), cfg, log, "test", daemon.WithStatus(func(s string) {
			select {
			case statuses <- s:
			default:
			}
		}))
		done <- started{d, err}
	}()
	select {
	case st := <-statuses:
		if !strings.Contains(st, "waiting for nats") {
			t.Errorf("status %q", st)
		}
	case r := <-done:
		t.Fatalf("Start returned without NATS: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no status while NATS is down")
	}
	resp, err := http.Get("http://" + cfg.Metrics.Listen + "/readyz")
	if err != nil {
		t.Fatalf("/readyz while waiting: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "waiting for nats") {
		t.Errorf("/readyz while waiting: %d %q", resp.StatusCode, body)
	}

	startNATS(t, server.Options{Port: ports[0]})
	var r started
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("not started 30 s after NATS came up")
	}
	if r.err != nil {
		t.Fatalf("start: %v", r.err)
	}
	h := attach(t, cfg, r.d, logs)
	if rep := h.request(map[string]any{"id": "w1", "to": "+4526227961", "code": "123456"}); rep.Status != otp.ReplyAccepted {
		t.Fatalf("reply %+v", rep)
	}
	if evs := h.waitFinal("w1"); evs[len(evs)-1].Type != otp.StateSent {
		t.Errorf("events %+v", evs)
	}
	if err := r.d.Ready(); err != nil {
		t.Errorf("ready: %v", err)
	}
}

// TestStartRefusedCredentials: credentials the server refuses are a
// configuration error: Start ends at once, it does not wait.
func TestStartRefusedCredentials(t *testing.T) {
	ns := startNATS(t, server.Options{Username: "simgate", Password: "right-pw"})
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.NATS.URL = ns.ClientURL()
	cfg.NATS.User, cfg.NATS.Password = "simgate", "wrong-pw"
	_, log := testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := daemon.Start(ctx, cfg, log, "test")
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "uthorization") {
		t.Fatalf("start with a wrong password: %v (ctx %v)", err, ctx.Err())
	}
}
