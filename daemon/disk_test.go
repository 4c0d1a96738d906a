package daemon_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/otp"
)

var diskFull = flag.Bool("diskfull", false,
	"run TestRealDiskFull: fills a tmpfs mounted for it (needs root)")

// waitLog waits until the daemon's logs hold line, failing after 10 s.
func (h *harness) waitLog(line string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), line) {
		if time.Now().After(deadline) {
			h.t.Fatalf("no log line %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoreDiskFull: while the embedded store's disk is full, otp.request
// answers error at once (never accepted); when space returns, the daemon
// reloads its streams and takes jobs again by itself.
func TestStoreDiskFull(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	var free atomic.Uint64
	free.Store(10 << 30)
	logs, log := testLogger(t)
	d, err := daemon.Start(context.Background(), cfg, log, "test", daemon.WithDiskSpace(func(string) (uint64, uint64, error) {
		return free.Load(), 20 << 30, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	h := attach(t, cfg, d, logs)
	if r := h.request(otp.Job{ID: "before", To: "+4526227921", Code: "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("before: %+v", r)
	}
	waitMetrics(t, d.MetricsAddr(), "simgate_store_disk_free_bytes 1.073741824e+10", "simgate_store_disk_up 1")

	free.Store(1 << 20)
	h.waitLog("the store's disk is full")
	for i, id := range []string{"full-1", "full-2"} {
		r := h.request(otp.Job{ID: id, To: "+452622793" + string(rune('0'+i)), Code: "123456"})
		if r.Status != otp.ReplyError || !strings.Contains(r.Detail, "disk is full") {
			t.Errorf("%s while full: %+v, want error", id, r)
		}
	}

	free.Store(10 << 30)
	h.waitLog("the store's disk has space again; streams reloaded")
	r := h.request(otp.Job{ID: "after", To: "+4526227940", Code: "654321"})
	if r.Status != otp.ReplyAccepted || r.Duplicate {
		t.Fatalf("after: %+v", r)
	}
	if got := types(h.waitFinal("after")); got != "accepted,sent" {
		t.Errorf("after: %s", got)
	}
	// The refused ids left nothing: they are usable.
	if r := h.request(otp.Job{ID: "full-1", To: "+4526227930", Code: "123456"}); r.Status != otp.ReplyAccepted || r.Duplicate {
		t.Errorf("a refused id afterwards: %+v", r)
	}
}

// TestRealDiskFull (-diskfull, as root): the store on a small tmpfs that a
// file then fills. JetStream's writes fail (a stream that failed one
// refuses all later ones); otp.request answers error; when the file goes,
// the daemon reloads the streams and jobs flow again.
func TestRealDiskFull(t *testing.T) {
	if !*diskFull {
		t.Skip("fills a tmpfs it mounts: run with -diskfull as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	s := startSim(t, "m1", 0)
	cfg := testConfig(filepath.Join(dir, "state"), s)
	cfg.NATS.Limits.EventsBytes, cfg.NATS.Limits.PolicyBytes, cfg.NATS.Limits.JobsBytes, cfg.NATS.Limits.JournalBytes = 4<<20, 4<<20, 4<<20, 4<<20
	h := start(t, cfg)
	if r := h.request(otp.Job{ID: "before", To: "+4526227921", Code: "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("before: %+v", r)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	h.waitLog("the store's disk is full")
	if r := h.request(otp.Job{ID: "full", To: "+4526227930", Code: "123456"}); r.Status != otp.ReplyError {
		t.Errorf("while full: %+v, want error", r)
	}
	// A publisher's job hits the full disk: OTP_JOBS fails a write, and
	// would refuse every later one without the reload.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	_, err = h.js.Publish(ctx, otp.SubjectSend, bytes.Repeat([]byte("x"), 4000))
	cancel()
	if err == nil {
		t.Fatal("a job was stored on a full disk")
	}
	os.Remove(filler)
	h.waitLog("the store's disk has space again; streams reloaded")
	r := h.request(otp.Job{ID: "after", To: "+4526227940", Code: "654321"})
	if r.Status != otp.ReplyAccepted {
		t.Fatalf("after: %+v", r)
	}
	if got := types(h.waitFinal("after")); got != "accepted,sent" {
		t.Errorf("after: %s", got)
	}
}
