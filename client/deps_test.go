package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the client light for auth services: of simgate's
// packages only the wire contract (otp), and nothing of the daemon's (the
// NATS server, the serial port, the modem driver, Prometheus, viper).
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
			"github.com/prometheus/",
			"github.com/spf13/",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("client depends on %s", dep)
			}
		}
		if strings.HasPrefix(dep, "github.com/simgate/simgate/") && dep != "github.com/simgate/simgate/otp" && dep != "github.com/simgate/simgate/client" {
			t.Errorf("client depends on %s: only otp is allowed", dep)
		}
	}
}
