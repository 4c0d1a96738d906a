package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/simgate/simgate/otp"
)

// TestStatus: simgate status prints the running daemon's simulated modem,
// ready, as a table and as JSON, through the publisher's credentials.
func TestStatus(t *testing.T) {
	url := serve(t)
	// The modem is ready once serve returned; its health (SIM, network)
	// comes with its first check.
	out, err := run("status", "--nats-url", url)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "NODE") || !strings.Contains(lines[1], " ready ") || !strings.Contains(lines[1], "sim1") {
		t.Errorf("table:\n%s", out)
	}
	out, err = run("status", "--nats-url", url, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st otp.Status
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(st.Modems) != 1 || st.Modems[0].State != "ready" || st.Modems[0].SIM != "READY" || st.Modems[0].Registration != "home" || st.QueuePending < 0 {
		t.Errorf("json: %+v", st)
	}
}

func TestStatusWithoutDaemon(t *testing.T) {
	_, err := run("status", "--nats-url", "nats://127.0.0.1:1", "--timeout", "1s")
	if err == nil || errors.As(err, new(*exitError)) {
		t.Errorf("no server: %v, want an error", err)
	}
}
