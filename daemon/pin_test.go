package daemon_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/modem/modemsim"
)

// TestSIMWithOneTryLeftIsLeftAlone: a SIM with one PIN try left gets no PIN
// from the daemon; its modem stays down, says why, and the tries left are
// exported.
func TestSIMWithOneTryLeftIsLeftAlone(t *testing.T) {
	s, err := modemsim.Start(modemsim.Config{Name: "m1", PIN: "8642", PINTriesUsed: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("8642\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Modems = []config.Modem{{Name: "m1", Device: s.Path(), PINFile: pinFile,
		CommandTimeout: 2 * time.Second, SendTimeout: 10 * time.Second, HealthInterval: 100 * time.Millisecond}}
	h := start(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), "SIM needs a person") {
		if time.Now().After(deadline) {
			t.Fatalf("modem not disabled:\n%s", h.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log: no event to wait on
	}
	body := scrape(t, h.d.MetricsAddr())
	for _, want := range []string{`simgate_modem_sim_pin_tries_left{modem="m1"} 1`, `simgate_modem_ready{modem="m1"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// As a word: ports and temporary paths hold random digits.
	if regexp.MustCompile(`\b8642\b`).MatchString(h.logs.String()) {
		t.Error("the PIN is in the log")
	}
}
