package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/hashkey"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

var clusterChaosFull = flag.Bool("cluster-chaos", false,
	"run TestClusterChaos at full length: 300 jobs, a daemon killed twice, a NATS node killed and restarted")

// chaosEnv, set to a chaosSpec in JSON, makes the test binary a daemon
// (see TestMain): the chaos test kills it with SIGKILL.
const chaosEnv = "SIMGATE_CHAOS_DAEMON"

func TestMain(m *testing.M) {
	if spec := os.Getenv(chaosEnv); spec != "" {
		os.Exit(chaosDaemon(spec))
	}
	if spec := os.Getenv(floodEnv); spec != "" {
		os.Exit(floodGenerator(spec))
	}
	os.Exit(m.Run())
}

// chaosSpec is a daemon the chaos test runs in a process of its own, with
// one simulated modem of its own.
type chaosSpec struct {
	Node, URL, StateDir, KeyFile string
	SendDelay                    time.Duration
	// SentLog is a file the modem appends every SMS it takes to, one
	// JSON line each (sentSMS), written before it answers +CMGS.
	SentLog string
}

// sentSMS is one line of chaosSpec.SentLog.
type sentSMS struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// chaosDaemon runs the daemon spec describes until SIGTERM; it prints
// "ready" once it takes jobs.
func chaosDaemon(specJSON string) int {
	var spec chaosSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sent, err := os.OpenFile(spec.SentLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sim, err := modemsim.Start(modemsim.Config{Name: spec.Node + "-m", SendDelay: spec.SendDelay, ReportDelay: 200 * time.Millisecond,
		OnMessage: func(m modemsim.Message) {
			b, _ := json.Marshal(sentSMS{To: m.To, Text: m.Text})
			sent.Write(append(b, '\n'))
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer sim.Close()
	cfg := config.Default()
	cfg.Node, cfg.StateDir, cfg.Policy.HashKeyFile = spec.Node, spec.StateDir, spec.KeyFile
	cfg.NATS.URL, cfg.NATS.Replicas = spec.URL, 3
	cfg.Metrics.Listen = ""
	cfg.OTP.RetryDelay = 20 * time.Millisecond
	cfg.OTP.DeliveryTimeout = 10 * time.Second
	cfg.Policy.Cooldown, cfg.Policy.Number, cfg.Policy.Prefix.Distinct = 0, nil, 0
	cfg.Policy.CountryPerHour, cfg.Policy.Countries, cfg.Policy.GlobalPerMinute = 0, nil, 0
	cfg.Modems = []config.Modem{{Name: sim.Name(), Device: sim.Path(),
		CommandTimeout: 2 * time.Second, SendTimeout: 10 * time.Second, HealthInterval: 100 * time.Millisecond}}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, cfg, log, "chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.Stop(sctx)
	return 0
}

// chaosProcess is a running chaos daemon.
type chaosProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startChaosDaemon starts spec in a process of its own and waits until it
// takes jobs; its log goes to <StateDir>/daemon.log.
func startChaosDaemon(t *testing.T, spec chaosSpec) *chaosProcess {
	t.Helper()
	b, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), chaosEnv+"="+string(b))
	logFile, err := os.OpenFile(filepath.Join(spec.StateDir, "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &chaosProcess{cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	go func() { cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("daemon %s exited before it was ready; see %s", spec.Node, logFile.Name())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon %s not ready in 60s", spec.Node)
	}
	return p
}

// kill kills the daemon with SIGKILL and waits until it is gone.
func (p *chaosProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// natsCluster is a JetStream cluster of nodes on loopback ports, as
// nats-server's own tests start them.
type natsCluster struct {
	opts []*server.Options
	urls []string

	mu    sync.Mutex
	nodes []*server.Server
}

func startCluster(t *testing.T, n int) *natsCluster {
	t.Helper()
	c := &natsCluster{}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	dir := t.TempDir()
	for i := range n {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprint(i+1)), NoLog: true, NoSigs: true}
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "chaos", "127.0.0.1", routePorts[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.opts = append(c.opts, o)
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
		c.nodes = append(c.nodes, nil)
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ns := range c.nodes {
			if ns != nil {
				ns.Shutdown()
				ns.WaitForShutdown()
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !c.hasLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// start starts node i (again, on its store).
func (c *natsCluster) start(i int) error {
	ns, err := server.NewServer(c.opts[i])
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("node %d not ready", i+1)
	}
	c.mu.Lock()
	c.nodes[i] = ns
	c.mu.Unlock()
	return nil
}

func (c *natsCluster) stop(i int) {
	c.mu.Lock()
	ns := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	ns.Shutdown()
	ns.WaitForShutdown()
}

func (c *natsCluster) hasLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ns := range c.nodes {
		if ns != nil && ns.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

func (c *natsCluster) url() string { return strings.Join(c.urls, ",") }

// jobLog keeps the live events of every job, as they come.
type jobLog struct {
	mu     sync.Mutex
	events map[string][]otp.Event
	at     map[string]time.Time // when the job's final event came
	change chan struct{}
}

func (l *jobLog) add(ev otp.Event) {
	l.mu.Lock()
	l.events[ev.ID] = append(l.events[ev.ID], ev)
	if ev.Type.Final() && ev.Type != otp.StateDelivered && !ev.Type.DeliveryFinal() {
		if _, ok := l.at[ev.ID]; !ok {
			l.at[ev.ID] = time.Now()
		}
	}
	l.mu.Unlock()
	select {
	case l.change <- struct{}{}:
	default:
	}
}

// wait waits until cond holds of the log, failing after d.
func (l *jobLog) wait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.change:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

// TestClusterChaos runs two daemons, each in a process of its own with a
// modem of its own, on a three-node JetStream cluster (replicas 3), under
// a steady load of jobs. While they send, it kills one daemon with SIGKILL,
// stops the node that leads the events stream and starts the daemon again
// during the election; the node comes back after a while. With
// -cluster-chaos: more jobs, the node away for 30 s, and a second kill.
//
// Every job must end with exactly one final event in OTP_EVENTS, after one
// accepted, and at most one delivery verdict after it (one for every
// message sent with a report asked); no number may get two different codes;
// the SMS sent twice (wire duplicates) may be no more than the messages in
// flight at the kills; and the jobs the killed daemon held must be sent by
// another within 10 s.
func TestClusterChaos(t *testing.T) {
	jobs, kills, away := 90, 1, 5*time.Second
	if *clusterChaosFull {
		jobs, kills, away = 1200, 2, 30*time.Second
	}
	cluster := startCluster(t, 3)
	keyFile := filepath.Join(t.TempDir(), "policy.key")
	if _, _, err := hashkey.LoadOrCreate(keyFile); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	spec := func(node string) chaosSpec {
		return chaosSpec{Node: node, URL: cluster.url(), StateDir: t.TempDir(), KeyFile: keyFile,
			SendDelay: 50 * time.Millisecond, SentLog: filepath.Join(logs, node+".sms")}
	}
	specA, specB := spec("a"), spec("b")
	// a's modem is slow, so that the job it holds when it is killed is
	// still in its hands when the kill lands, however late the test sees
	// its events.
	specA.SendDelay = 300 * time.Millisecond
	a := startChaosDaemon(t, specA)
	startChaosDaemon(t, specB)

	nc, err := nats.Connect(cluster.url(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	log := &jobLog{events: map[string][]otp.Event{}, at: map[string]time.Time{}, change: make(chan struct{}, 1)}
	if _, err := nc.Subscribe(otp.SubjectEvents+".>", func(m *nats.Msg) {
		var ev otp.Event
		if json.Unmarshal(m.Data, &ev) == nil {
			log.add(ev)
		}
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	// A steady load, about what the two modems send (20/s each): a
	// publish that fails (an election) is tried again under the same
	// message id, a request under the same job id.
	ids := make([]string, jobs)
	codes := map[string]string{} // code -> job id
	for i := range jobs {
		ids[i] = fmt.Sprintf("chaos-%04d", i)
		codes[fmt.Sprint(100000+i)] = ids[i]
	}
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for i, id := range ids {
			b, _ := json.Marshal(otp.Job{ID: id, To: fmt.Sprintf("+45262%05d", i), Code: fmt.Sprint(100000 + i)})
			for {
				// Half the jobs through otp.request, answered at once;
				// an answer that is no acceptance (error, or none) is
				// asked again under the same id.
				if i%2 == 0 {
					msg, err := nc.Request(otp.SubjectRequest, b, 2*time.Second)
					var r otp.Reply
					if err == nil && json.Unmarshal(msg.Data, &r) == nil && r.Status == otp.ReplyAccepted {
						break
					}
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := js.Publish(ctx, otp.SubjectSend, b, jetstream.WithMsgID(id))
				cancel()
				if err == nil {
					break
				}
			}
			<-tick.C
		}
	}()
	finals := func() int { return len(log.at) }

	var failover time.Duration
	for k := range kills {
		// heldByA lists the jobs daemon a took and has not ended.
		heldByA := func() []string {
			var held []string
			for id, evs := range log.events {
				if _, ended := log.at[id]; !ended && evs[0].Type == otp.StateAccepted && evs[0].Node == "a" {
					held = append(held, id)
				}
			}
			return held
		}
		target := jobs * (k + 1) / (kills + 2)
		log.wait(t, 120*time.Second, fmt.Sprintf("%d jobs ended and one held by a", target), func() bool {
			return finals() >= target && len(heldByA()) > 0
		})
		a.kill()
		killed := time.Now()
		log.mu.Lock()
		held, ended := heldByA(), finals()
		log.mu.Unlock()
		t.Logf("kill %d: daemon a killed after %d jobs ended, holding %v", k+1, ended, held)
		if len(held) == 0 {
			t.Fatal("daemon a ended its job before the kill: nothing to fail over")
		}
		if k == 0 {
			// The events stream's leader goes, and a starts again
			// during the election; the node comes back later.
			n := 0
			if es, err := js.Stream(t.Context(), otp.StreamEvents); err == nil && es.CachedInfo().Cluster != nil {
				fmt.Sscanf(es.CachedInfo().Cluster.Leader, "n%d", &n)
				n--
			}
			n = max(n, 0)
			t.Logf("NATS node n%d (leader of %s) stopped for %s", n+1, otp.StreamEvents, away)
			cluster.stop(n)
			restarted := make(chan error, 1)
			time.AfterFunc(away, func() { restarted <- cluster.start(n) })
			defer func() {
				if err := <-restarted; err != nil {
					t.Error(err)
				}
			}()
		}
		a = startChaosDaemon(t, specA)
		log.wait(t, 30*time.Second, "the killed daemon's jobs ended", func() bool {
			for _, id := range held {
				if _, ok := log.at[id]; !ok {
					return false
				}
			}
			return true
		})
		log.mu.Lock()
		for _, id := range held {
			failover = max(failover, log.at[id].Sub(killed))
		}
		log.mu.Unlock()
	}
	<-loadDone
	// Live events are at most once: one published while the test's
	// connection moves to another node is not seen live. Every 5 s the
	// stream (the record) tells what a job lacks and was not seen: await
	// waits, for a minute at most, until no job lacks (lacks, called with
	// log.mu held) an event that ok takes.
	leader, err := nc.JetStream() // its GetMsg and GetLastMsg ask the stream's leader
	if err != nil {
		t.Fatal(err)
	}
	await := func(what string, lacks func(id string) bool, ok func(otp.Event) bool) {
		t.Helper()
		lacking := func() []string {
			log.mu.Lock()
			defer log.mu.Unlock()
			return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !lacks(id) })
		}
		for deadline := time.Now().Add(time.Minute); ; {
			soon := time.Now().Add(5 * time.Second)
			log.wait(t, 65*time.Second, what, func() bool {
				return !slices.ContainsFunc(ids, lacks) || time.Now().After(soon) || time.Now().After(deadline)
			})
			for _, id := range lacking() {
				msg, err := leader.GetLastMsg(otp.StreamEvents, otp.EventSubject(id))
				var ev otp.Event
				if err != nil || json.Unmarshal(msg.Data, &ev) != nil || !ok(ev) {
					continue
				}
				t.Logf("%s: %s not seen live; the stream has it", id, ev.Type)
				log.mu.Lock()
				if _, ended := log.at[id]; !ended {
					log.at[id] = ev.Time
				}
				log.events[id] = append(log.events[id], ev)
				log.mu.Unlock()
			}
			left := lacking()
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				log.mu.Lock()
				defer log.mu.Unlock()
				for _, id := range left {
					t.Errorf("%s: %s not within a minute: %+v", id, what, log.events[id])
				}
				return
			}
		}
	}
	await("its end", func(id string) bool {
		_, ended := log.at[id]
		return !ended
	}, func(ev otp.Event) bool { return ev.Type.Final() || ev.Type.DeliveryFinal() })
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("failover: the jobs a killed daemon held were ended by another within %s (target 10s)", failover.Round(time.Millisecond))
	if failover > 10*time.Second {
		t.Errorf("failover took %s, want at most 10s", failover)
	}
	// Recovery: the longest time no job ended, while jobs waited.
	var ends []time.Time
	log.mu.Lock()
	for _, at := range log.at {
		ends = append(ends, at)
	}
	log.mu.Unlock()
	slices.SortFunc(ends, func(x, y time.Time) int { return x.Compare(y) })
	var stall time.Duration
	for i := 1; i < len(ends); i++ {
		stall = max(stall, ends[i].Sub(ends[i-1]))
	}

	// Delivery verdicts: a message sent with a report asked gets one;
	// the killed daemon's journal brings back those it sent (they end
	// delivery_unknown: its modem died with it).
	wantsVerdict := func(evs []otp.Event) bool {
		return slices.ContainsFunc(evs, func(ev otp.Event) bool { return ev.Type == otp.StateSent && ev.Report }) &&
			!slices.ContainsFunc(evs, func(ev otp.Event) bool { return ev.Type.DeliveryFinal() })
	}
	await("its delivery verdict", func(id string) bool { return wantsVerdict(log.events[id]) },
		func(ev otp.Event) bool { return ev.Type.DeliveryFinal() })

	// The stream is the record: read every stored event, from the
	// stream's leader (a direct get may be answered by a replica that
	// lags; the legacy API's GetMsg asks the leader). A subscriber may see
	// an event before the stream has it stored (replicated): the verdicts
	// seen live must be stored too, a moment later at most.
	es, err := js.Stream(t.Context(), otp.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	readStored := func() (stored map[string][]otp.Event, events int) {
		info, err := es.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		stored = map[string][]otp.Event{}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			msg, err := leader.GetMsg(otp.StreamEvents, seq)
			if errors.Is(err, nats.ErrMsgNotFound) {
				continue // dropped: a job's events past nats.limits.events_per_job
			}
			if err != nil {
				t.Fatalf("stored event %d: %v", seq, err)
			}
			var ev otp.Event
			if err := json.Unmarshal(msg.Data, &ev); err != nil {
				t.Fatal(err)
			}
			stored[ev.ID] = append(stored[ev.ID], ev)
			events++
		}
		return stored, events
	}
	var stored map[string][]otp.Event
	var events int
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		stored, events = readStored()
		log.mu.Lock()
		unstored := slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
			live := slices.ContainsFunc(log.events[id], func(ev otp.Event) bool { return ev.Type.DeliveryFinal() })
			return !live || slices.ContainsFunc(stored[id], func(ev otp.Event) bool { return ev.Type.DeliveryFinal() })
		})
		log.mu.Unlock()
		if len(unstored) == 0 {
			break
		}
		if time.Now().After(wait) {
			t.Errorf("delivery verdicts seen live, never stored: %v", unstored)
			break
		}
	}
	finalEvents := 0
	for _, id := range ids {
		evs := stored[id]
		var accepted, final, verdicts int
		var order []string
		for _, ev := range evs {
			order = append(order, string(ev.Type))
			switch {
			case ev.Type == otp.StateAccepted:
				accepted++
			case ev.Type.DeliveryFinal():
				verdicts++
				if final == 0 {
					t.Errorf("%s: a delivery verdict before the final event: %v", id, order)
				}
			case ev.Type.Final():
				final++
			}
		}
		finalEvents += final
		if wantsVerdict(evs) {
			log.mu.Lock()
			t.Errorf("%s: sent with a report asked, but no delivery verdict stored: %v (seen live: %+v)", id, order, log.events[id])
			log.mu.Unlock()
		}
		if accepted != 1 || final != 1 || verdicts > 1 || len(evs) == 0 || evs[0].Type != otp.StateAccepted {
			t.Errorf("%s: stored events %v; want one accepted first, one final, at most one verdict", id, order)
		}
	}

	// What the modems sent: every job's code to its own number, and no
	// more twice than the messages in flight at the kills (one modem per
	// daemon).
	perJob := map[string]int{}
	numberCodes := map[string]map[string]bool{}
	sms := 0
	for _, node := range []string{"a", "b"} {
		b, err := os.ReadFile(filepath.Join(logs, node+".sms"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			var m sentSMS
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				continue // a line cut by the kill
			}
			sms++
			code := otpCode.FindString(m.Text)
			perJob[codes[code]]++
			if numberCodes[m.To] == nil {
				numberCodes[m.To] = map[string]bool{}
			}
			numberCodes[m.To][code] = true
		}
	}
	duplicates := 0
	for id, n := range perJob {
		if id == "" {
			t.Errorf("%d SMS with a code of no job", n)
		}
		duplicates += max(n-1, 0)
	}
	for to, cs := range numberCodes {
		if len(cs) != 1 {
			t.Errorf("number %s got %d different codes", otp.MaskRaw(to), len(cs))
		}
	}
	t.Logf("chaos: %d jobs, %d final events (%d events stored), %d SMS, %d wire duplicates (kills %d), failover %s, longest stall %s",
		jobs, finalEvents, events, sms, duplicates, kills, failover.Round(time.Millisecond), stall.Round(time.Millisecond))
	if duplicates > kills {
		t.Errorf("%d wire duplicates, want at most %d (one message in flight per kill)", duplicates, kills)
	}
}

// otpCode finds the code in a rendered message.
var otpCode = regexp.MustCompile(`\b[0-9]{6}\b`)
