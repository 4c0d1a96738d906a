package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/simgate/simgate/otp"
)

func TestMetricsLint(t *testing.T) {
	reg := NewRegistry()
	m := New(reg, "v1.2.3", []string{"m1", "m2"})
	m.Rejected(&otp.RejectError{Reason: otp.ReasonInvalidNumber})
	m.SendFailed("m1", "retryable")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	// Series of configured modems exist before any event.
	if n, err := testutil.GatherAndCount(reg, "simgate_modem_up"); err != nil || n != 2 {
		t.Errorf("modem_up has %d series, want 2", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP simgate_jobs_total Jobs that reached a final state, by outcome (sent, failed, expired, rejected, duplicate, superseded).
# TYPE simgate_jobs_total counter
simgate_jobs_total{outcome="duplicate"} 0
simgate_jobs_total{outcome="expired"} 0
simgate_jobs_total{outcome="failed"} 0
simgate_jobs_total{outcome="rejected"} 1
simgate_jobs_total{outcome="sent"} 0
simgate_jobs_total{outcome="superseded"} 0
`), "simgate_jobs_total"); err != nil {
		t.Error(err)
	}
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	New(reg, "test", nil)
	var ready atomic.Bool
	s, err := Listen("127.0.0.1:0", reg, func() error {
		if !ready.Load() {
			return errors.New("no modem ready")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no modem ready") {
		t.Errorf("/readyz %d %q", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `simgate_build_info{goversion=`) || !strings.Contains(body, "process_start_time_seconds") {
		t.Errorf("/metrics %d", code)
	}
}

func TestQueueCollector(t *testing.T) {
	var fail atomic.Bool
	c := NewQueueCollector(func(ctx context.Context) (QueueState, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("no deadline")
		}
		if fail.Load() {
			return QueueState{}, errors.New("no server")
		}
		return QueueState{Pending: 7, InFlight: 2, Redelivered: 1}, nil
	}, time.Second)
	reg := NewRegistry()
	reg.MustRegister(c)
	want := `
# HELP simgate_queue_inflight_jobs Jobs handed to a worker and not yet acknowledged.
# TYPE simgate_queue_inflight_jobs gauge
simgate_queue_inflight_jobs 2
# HELP simgate_queue_pending_jobs Jobs in the queue waiting for a modem (the shared consumer's pending count).
# TYPE simgate_queue_pending_jobs gauge
simgate_queue_pending_jobs 7
# HELP simgate_queue_up 1 when the queue's state could be read at this scrape.
# TYPE simgate_queue_up gauge
simgate_queue_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "simgate_queue_pending_jobs", "simgate_queue_inflight_jobs", "simgate_queue_up"); err != nil {
		t.Error(err)
	}
	fail.Store(true)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP simgate_queue_up 1 when the queue's state could be read at this scrape.
# TYPE simgate_queue_up gauge
simgate_queue_up 0
`), "simgate_queue_up", "simgate_queue_pending_jobs"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestStoreCollector(t *testing.T) {
	var fail atomic.Bool
	c := NewStoreCollector(func(ctx context.Context) ([]StoreUsage, error) {
		if fail.Load() {
			return nil, errors.New("no server")
		}
		return []StoreUsage{
			{Name: "OTP_JOBS", Bytes: 300, Messages: 2, MaxBytes: 1000},
			{Name: "KV_simgate_config", Bytes: 50, Messages: 1},
		}, nil
	}, time.Second)
	reg := NewRegistry()
	reg.MustRegister(c)
	want := `
# HELP simgate_store_bytes Bytes a JetStream stream or bucket of simgate's holds, per store.
# TYPE simgate_store_bytes gauge
simgate_store_bytes{store="KV_simgate_config"} 50
simgate_store_bytes{store="OTP_JOBS"} 300
# HELP simgate_store_limit_bytes The store's size limit (nats.limits); absent when unbounded. Full, the job queue refuses new jobs, the events stream drops its oldest, a bucket refuses writes.
# TYPE simgate_store_limit_bytes gauge
simgate_store_limit_bytes{store="OTP_JOBS"} 1000
# HELP simgate_store_up 1 when the stores' usage could be read at this scrape.
# TYPE simgate_store_up gauge
simgate_store_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "simgate_store_bytes", "simgate_store_limit_bytes", "simgate_store_up"); err != nil {
		t.Error(err)
	}
	fail.Store(true)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP simgate_store_up 1 when the stores' usage could be read at this scrape.
# TYPE simgate_store_up gauge
simgate_store_up 0
`), "simgate_store_up", "simgate_store_bytes"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestDiskCollector(t *testing.T) {
	var fail atomic.Bool
	reg := NewRegistry()
	reg.MustRegister(NewDiskCollector(func() (DiskUsage, error) {
		if fail.Load() {
			return DiskUsage{}, errors.New("no such directory")
		}
		return DiskUsage{Free: 10, Size: 100, JetStreamBytes: 40}, nil
	}))
	names := []string{"simgate_store_disk_free_bytes", "simgate_store_disk_size_bytes", "simgate_store_disk_jetstream_bytes", "simgate_store_disk_up"}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 4 {
		t.Errorf("%d series (%v), want 4", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP simgate_store_disk_free_bytes Free space of the file system of the embedded NATS server's store. Near zero, JetStream writes fail: otp.request answers error until space returns.
# TYPE simgate_store_disk_free_bytes gauge
simgate_store_disk_free_bytes 10
`), "simgate_store_disk_free_bytes"); err != nil {
		t.Error(err)
	}
	fail.Store(true)
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 1 {
		t.Errorf("%d series when unreadable (%v), want only up", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
