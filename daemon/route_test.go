package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
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

	sentBy := h.sentBy
	// One at a time, so that the preferred modem is always free: every
	// Danish job goes through it, whichever worker took it.
	h.sendDanish("dk", 8)
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

// TestRoutingAcrossDaemons: a job preferred for a modem of another daemon
// is sent by that modem when it is ready and free, whichever daemon took
// it; when that modem cannot send, or its daemon is gone, by any modem.
func TestRoutingAcrossDaemons(t *testing.T) {
	url := natsServer(t)
	dk, other := startSim(t, "dk", 20*time.Millisecond), startSim(t, "other", 20*time.Millisecond)
	cfgA := testConfig(t.TempDir(), dk)
	cfgA.Node, cfgA.NATS.URL, cfgA.Metrics.Listen = "a", url, ""
	cfgA.Modems[0].Routes = []string{"DK"}
	a := start(t, cfgA)
	cfgB := testConfig(t.TempDir(), other)
	cfgB.Node, cfgB.NATS.URL, cfgB.Metrics.Listen = "b", url, ""
	cfgB.Policy.HashKeyFile = cfgA.PolicyKeyFile()
	b := start(t, cfgB)

	// Wait until a announces its modem ready.
	kv, err := b.daemonJS().KeyValue(t.Context(), queue.BucketFleet)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(t.Context(), "dk")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ready := false; !ready; {
		select {
		case e := <-w.Updates():
			ready = e != nil && strings.Contains(string(e.Value()), `"ready":true`)
		case <-time.After(20 * time.Second):
			t.Fatal("modem dk never announced ready")
		}
	}

	sentBy := b.sentBy
	// One at a time, so that dk is free: every Danish job goes out on dk,
	// whichever daemon's worker took it (both pull from one queue).
	b.sendDanish("dk", 8)
	if n := len(other.Submissions()); n != 0 {
		t.Errorf("modem other sent %d Danish jobs", n)
	}
	// dk loses its network: b sends the Danish jobs itself.
	dk.SetRegistration(0)
	for i := range 3 {
		id := fmt.Sprint("fallback-", i)
		b.publish(map[string]any{"id": id, "to": fmt.Sprintf("+452622791%d", i), "code": fmt.Sprint(410000 + i)})
		if m := sentBy(id); m != "other" {
			t.Fatalf("%s sent by %s, want other", id, m)
		}
	}
	// Its daemon gone (its announcement not yet stale): the same.
	dk.SetRegistration(1)
	a.stop()
	b.publish(map[string]any{"id": "gone", "to": "+4526227920", "code": "420000"})
	if m := sentBy("gone"); m != "other" {
		t.Fatalf("gone: sent by %s, want other", m)
	}
}

// sentBy waits for the final event of job id, which must be sent, and
// returns the modem that sent it.
func (h *harness) sentBy(id string) string {
	h.t.Helper()
	evs := h.waitFinal(id)
	last := evs[len(evs)-1]
	if last.Type != otp.StateSent {
		h.t.Fatalf("%s: %s", id, types(evs))
	}
	return last.Modem
}

// sendDanish queues n jobs to Danish numbers one at a time (the next when
// the last is sent), and fails the test unless modem sent each.
func (h *harness) sendDanish(modem string, n int) {
	h.t.Helper()
	for i := range n {
		id := fmt.Sprint("dk-", i)
		h.publish(map[string]any{"id": id, "to": fmt.Sprintf("+452622790%d", i), "code": fmt.Sprint(400000 + i)})
		if m := h.sentBy(id); m != modem {
			h.t.Fatalf("%s sent by %s, want %s", id, m, modem)
		}
	}
}
