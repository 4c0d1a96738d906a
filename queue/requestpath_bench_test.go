package queue

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

// BenchmarkRequestPath measures what the NATS server alone lets a flood of
// otp.request answers cost: 64 callers in a process of their own ask, and
// a responder answers each at once with a refusal. "roles" is the server
// simgate runs, where a publisher's request crosses into the daemon's
// account by a service import; "one account" a server without accounts,
// for comparison. Issue #12 wants 20,000 refusals/s (each a request and
// one read of the job's record) with real users' latency within 2x of
// idle, that is with the machine at most about half busy: these figures
// say how much of that the server takes.
//
//	go test ./queue -run '^$' -bench RequestPath -benchtime 1x
//
// Do not run it with -race (it measures speed).
func BenchmarkRequestPath(b *testing.B) {
	b.Run("roles", func(b *testing.B) { benchRequestPath(b, true) })
	b.Run("one account", func(b *testing.B) { benchRequestPath(b, false) })
}

func benchRequestPath(b *testing.B, roles bool) {
	var (
		ns                  *server.Server
		err                 error
		responder, callerAs natsauth.Client
	)
	if roles {
		dir := b.TempDir()
		daemonSeed, publisherSeed, daemonKey, publisherKey := roleKeys(b, dir)
		ns, err = StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), Name: "path",
			Daemon: daemonKey, Publisher: publisherKey})
		responder, callerAs = natsauth.Client{NkeySeedFile: daemonSeed}, natsauth.Client{NkeySeedFile: publisherSeed}
	} else {
		ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if err == nil {
			go ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				err = fmt.Errorf("server not ready")
			}
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	opts, err := natsauth.ClientOptions(responder)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	refusal := []byte(`{"status":"rejected","id":"f0-0","reason":"rate_limited","field":"to","scope":"country","retry_after":3600}`)
	if _, err := nc.Subscribe(otp.SubjectRequest, func(m *nats.Msg) { _ = m.Respond(refusal) }); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(requestPathSpec{URL: ns.ClientURL(), As: callerAs, Callers: 64, For: 5 * time.Second})
	var rate float64
	for b.Loop() {
		caller := exec.Command(os.Args[0], "-test.run=^$")
		caller.Env = append(os.Environ(), requestPathEnv+"="+string(spec))
		caller.Stderr = os.Stderr
		out, err := caller.Output()
		if err != nil {
			b.Fatalf("callers: %v", err)
		}
		if _, err := fmt.Sscan(string(out), &rate); err != nil {
			b.Fatalf("callers said %q: %v", out, err)
		}
	}
	b.ReportMetric(rate, "requests/s")
	b.ReportMetric(0, "ns/op") // an iteration's time says nothing here
	b.Logf("for issue #12's flood: 20000 refusals/s in at most half the machine, each a request like these and one read of the job's record")
}

// requestPathEnv, set to a requestPathSpec in JSON, makes the test binary
// the callers of BenchmarkRequestPath (see TestMain).
const requestPathEnv = "SIMGATE_REQUEST_PATH_CALLERS"

type requestPathSpec struct {
	URL     string
	As      natsauth.Client
	Callers int
	For     time.Duration
}

// requestPathCallers runs the callers of spec and prints the requests
// answered per second.
func requestPathCallers(specJSON string) int {
	var spec requestPathSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts, err := natsauth.ClientOptions(spec.As)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	nc, err := nats.Connect(spec.URL, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer nc.Close()
	var answered atomic.Int64
	body := []byte(`{"id":"f0-0","to":"+447400123456","code":"123456"}`)
	start := time.Now()
	end := start.Add(spec.For)
	var wg sync.WaitGroup
	for range spec.Callers {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := nc.Request(otp.SubjectRequest, body, 10*time.Second); err == nil {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Println(float64(answered.Load()) / time.Since(start).Seconds())
	return 0
}
