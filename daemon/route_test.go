package daemon_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

func TestRoutingPrefersModemsAndFallsBack(t *testing.T) {
	dk := startSim(t, "dk", 20*time.Millisecond)
	other := startSim(t, "other", 20*time.Millisecond)
	cfg := testConfig(t.TempDir(), dk, other)
	cfg.Modems[0].Routes = []string{"DK"}
	h := start(t, cfg)
	waitReady := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for h.d.ModemsReady() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d modems ready, want %d", h.d.ModemsReady(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReady(2)

	sentBy := func(id string) string {
		t.Helper()
		evs := h.waitFinal(id)
		last := evs[len(evs)-1]
		if last.Type != otp.StateSent {
			t.Fatalf("%s: %s", id, types(evs))
		}
		return last.Modem
	}
	// One at a time, so that the preferred modem is always free: every
	// Danish job goes through it, whichever worker took it.
	for i := range 8 {
		id := fmt.Sprint("dk-", i)
		h.publish(map[string]any{"id": id, "to": fmt.Sprintf("+452622790%d", i), "code": fmt.Sprint(400000 + i)})
		if m := sentBy(id); m != "dk" {
			t.Fatalf("%s sent by %s, want dk", id, m)
		}
	}
	// A burst: nothing is stranded, whichever modem sends.
	for i := range 20 {
		h.publish(map[string]any{"id": fmt.Sprint("burst-", i), "to": fmt.Sprintf("+45262280%02d", i), "code": fmt.Sprint(410000 + i)})
	}
	for i := range 20 {
		sentBy(fmt.Sprint("burst-", i))
	}
	// The preferred modem loses its network: the others take its jobs.
	dk.SetRegistration(0)
	waitReady(1)
	h.publish(map[string]any{"id": "fallback", "to": "+4526227999", "code": "420000"})
	if m := sentBy("fallback"); m != "other" {
		t.Fatalf("fallback sent by %s, want other", m)
	}
}
