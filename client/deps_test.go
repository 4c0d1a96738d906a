package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the client light for auth services: the wire
// contract (package otp) and nats.go, nothing of the daemon's (the NATS
// server, the serial port, the modem driver).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/nats-io/nats-server",
			"go.bug.st/serial",
			"github.com/warthog618/",
			"github.com/simgate/simgate/queue",
			"github.com/simgate/simgate/gateway",
			"github.com/spf13/",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("client depends on %s", dep)
			}
		}
	}
}
