package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/internal/testtls"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/optout"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/queue"
)

// TestRolesOnEmbeddedServer runs the attacker suite against the default
// daemon: embedded server, zero configuration.
func TestRolesOnEmbeddedServer(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	publisher, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: natsauth.SeedFile(cfg.StateDir, natsauth.RolePublisher)})
	if err != nil {
		t.Fatal(err)
	}
	attack(t, h.d.ClientURL(), publisher, nil, h.daemonJS())
}

// probe is a NATS connection that records the server's permission
// violations.
type probe struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu         sync.Mutex
	violations []string
	seen       chan struct{}
}

func dial(t *testing.T, url string, opts []nats.Option) (*probe, error) {
	p := &probe{seen: make(chan struct{}, 1024)}
	opts = append(append([]nats.Option(nil), opts...),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				p.mu.Lock()
				p.violations = append(p.violations, err.Error())
				p.mu.Unlock()
				p.seen <- struct{}{}
			}
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	p.nc = nc
	p.js, _ = jetstream.New(nc)
	return p, nil
}

// violated waits until the server reported a permission violation
// naming subject.
func (p *probe) violated(subject string) bool {
	deadline := time.After(3 * time.Second)
	for {
		p.mu.Lock()
		for _, v := range p.violations {
			if strings.Contains(v, `"`+subject+`"`) {
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-deadline:
			return false
		}
	}
}

// attack tries, with publisher credentials and with none, every action the
// publisher role must not take against the NATS server at url, where a
// daemon runs, and asserts each is refused and changed nothing (checked in
// the daemon's role, through daemonJS), while every action the role needs
// works. anonymous are the options of a client without credentials (the
// server's CA, where it takes TLS).
func attack(t *testing.T, url string, publisher, anonymous []nats.Option, daemonJS jetstream.JetStream) {
	ctx := t.Context()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }

	t.Run("no credentials", func(t *testing.T) {
		// Refused by authentication, not by anything before it (TLS).
		if _, err := dial(t, url, anonymous); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("without credentials: %v, want %v", err, nats.ErrAuthorization)
		}
		guess := append([]nats.Option{nats.UserInfo("publisher", "guess")}, anonymous...)
		if _, err := dial(t, url, guess); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("with a guessed password: %v, want %v", err, nats.ErrAuthorization)
		}
	})

	p, err := dial(t, url, publisher)
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}

	t.Run("allowed", func(t *testing.T) {
		// Live events.
		live := make(chan *nats.Msg, 16)
		if _, err := p.nc.ChanSubscribe(otp.SubjectEvents+".>", live); err != nil {
			t.Fatal(err)
		}
		p.nc.Flush()
		// otp.request with its reply.
		b, _ := json.Marshal(otp.Job{ID: "role-req", To: "+4526227931", Code: "123456"})
		msg, err := p.nc.Request(otp.SubjectRequest, b, 10*time.Second)
		if err != nil {
			t.Fatalf("otp.request: %v", err)
		}
		var r otp.Reply
		if json.Unmarshal(msg.Data, &r) != nil || r.Status != otp.ReplyAccepted {
			t.Fatalf("otp.request reply %s", msg.Data)
		}
		// otp.send with its PubAck.
		b, _ = json.Marshal(otp.Job{ID: "role-pub", To: "+4526227932", Code: "123456"})
		if _, err := p.js.Publish(ctx, otp.SubjectSend, b); err != nil {
			t.Fatalf("otp.send: %v", err)
		}
		select {
		case m := <-live:
			if !strings.HasPrefix(m.Subject, otp.SubjectEvents+".role-") {
				t.Errorf("live event on %s", m.Subject)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no live event")
		}
		// Replay of a job's stored events, as the Go client does it.
		c, err := client.New(p.nc)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"role-req", "role-pub"} {
			if ev, err := c.Wait(ctx, id); err != nil || ev.Type != otp.StateSent {
				t.Errorf("replay %s: %+v %v", id, ev, err)
			}
		}
		// A direct read of the last event of a job.
		es, err := p.js.Stream(ctx, otp.StreamEvents)
		if err != nil {
			t.Fatalf("events stream: %v", err)
		}
		if _, err := es.GetLastMsgForSubject(ctx, otp.EventSubject("role-pub")); err != nil {
			t.Errorf("read the last event: %v", err)
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		// Reading jobs, which hold codes: subscribing to the job subjects or
		// to everything, or to the daemon's inbox.
		// Nor the messages people send to the SIMs.
		for _, subject := range []string{otp.SubjectSend, otp.SubjectRequest, ">", "otp.>", queue.DaemonInboxPrefix + ".>", "$KV.>", otp.SubjectReceived + ".>"} {
			sub, err := p.nc.SubscribeSync(subject)
			if err == nil {
				p.nc.Flush()
				if !p.violated(subject) {
					t.Errorf("subscribe %s: no permission violation", subject)
				}
				sub.Unsubscribe()
			}
		}
		// Writing events, keys or daemon-only API subjects.
		for _, subject := range []string{
			otp.EventSubject("victim"),
			"$KV." + queue.BucketPolicy + ".global",
			"$KV." + queue.BucketConfig + ".policy_hash_key",
			"$KV." + optout.Bucket + ".victim", // opting a number out, or in
			"$JS.API.STREAM.DELETE." + otp.StreamEvents,
			"$JS.API.STREAM.PURGE." + otp.StreamJobs,
		} {
			if err := p.nc.Publish(subject, []byte(`{"type":"delivered","id":"victim"}`)); err != nil {
				t.Fatal(err)
			}
			p.nc.Flush()
			if !p.violated(subject) {
				t.Errorf("publish %s: no permission violation", subject)
			}
		}
		// JetStream calls (each fails as a timeout: the server drops the
		// request). In parallel, to keep the run short.
		calls := map[string]func(ctx context.Context) error{
			"read OTP_JOBS (consumer)": func(ctx context.Context) error {
				_, err := p.js.CreateConsumer(ctx, otp.StreamJobs, jetstream.ConsumerConfig{Name: "steal"})
				return err
			},
			"read OTP_JOBS (direct)": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+otp.StreamJobs, []byte(`{"seq":1}`))
				return err
			},
			"read SMS_IN (direct)": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+otp.StreamInbound, []byte(`{"seq":1}`))
				return err
			},
			"read OTP_JOBS (msg get)": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+otp.StreamJobs, []byte(`{"seq":1}`))
				return err
			},
			"fetch from the daemons' consumer": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT."+otp.StreamJobs+"."+queue.Consumer, []byte(`{"batch":1}`))
				return err
			},
			"delete the daemons' consumer": func(ctx context.Context) error {
				return p.js.DeleteConsumer(ctx, otp.StreamJobs, queue.Consumer)
			},
			"delete OTP_EVENTS": func(ctx context.Context) error { return p.js.DeleteStream(ctx, otp.StreamEvents) },
			"delete OTP_JOBS":   func(ctx context.Context) error { return p.js.DeleteStream(ctx, otp.StreamJobs) },
			"purge OTP_EVENTS": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+otp.StreamEvents, nil)
				return err
			},
			"update OTP_EVENTS": func(ctx context.Context) error {
				_, err := p.js.UpdateStream(ctx, jetstream.StreamConfig{Name: otp.StreamEvents, Subjects: []string{otp.SubjectEvents + ".>"}, MaxAge: time.Second})
				return err
			},
			"create a stream": func(ctx context.Context) error {
				_, err := p.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SNOOP", Subjects: []string{"otp.send"}})
				return err
			},
			"read the policy bucket": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_"+queue.BucketPolicy+".$KV."+queue.BucketPolicy+".global", nil)
				return err
			},
			"read the config bucket": func(ctx context.Context) error {
				_, err := p.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_"+queue.BucketConfig, []byte(`{"last_by_subj":"$KV.`+queue.BucketConfig+`.policy_hash_key"}`))
				return err
			},
			"read the delivery journal": func(ctx context.Context) error {
				_, err := p.js.KeyValue(ctx, queue.BucketDelivery)
				return err
			},
			"delete the policy bucket": func(ctx context.Context) error {
				return p.js.DeleteKeyValue(ctx, queue.BucketPolicy)
			},
			"an event consumer": func(ctx context.Context) error {
				_, err := p.js.OrderedConsumer(ctx, otp.StreamEvents, jetstream.OrderedConsumerConfig{})
				if err != nil {
					return err
				}
				_, err = p.js.CreateConsumer(ctx, otp.StreamEvents, jetstream.ConsumerConfig{Name: "svc-events"})
				return err
			},
			"a push consumer delivering events into otp.send": func(ctx context.Context) error {
				m, err := p.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE."+otp.StreamEvents+".inject",
					[]byte(`{"stream_name":"`+otp.StreamEvents+`","config":{"name":"inject","deliver_subject":"otp.send","ack_policy":"none"}}`))
				if err != nil {
					return err
				}
				return apiError(nil, string(m.Data))
			},
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for name, call := range calls {
			wg.Go(func() {
				cctx, cancel := short()
				defer cancel()
				err := call(cctx)
				if err == nil {
					mu.Lock()
					t.Errorf("%s: allowed", name)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	})

	t.Run("chosen reply subjects", func(t *testing.T) {
		// Every subject a publisher may publish to is answered, by the
		// daemon or by the server itself (PubAck, API answers, stored
		// events). A request whose reply subject names a key or an event
		// must not have its answer written there. (An answer to a subject
		// the publisher may publish to, otp.send say, is no more than a
		// publish of its own: the server forwards it as one.)
		policyKV, err := daemonJS.KeyValue(ctx, queue.BucketPolicy)
		if err != nil {
			t.Fatal(err)
		}
		configKV, err := daemonJS.KeyValue(ctx, queue.BucketConfig)
		if err != nil {
			t.Fatal(err)
		}
		keyCheck, err := configKV.Get(ctx, "policy_key_check")
		if err != nil {
			t.Fatal(err)
		}
		targets := []string{
			"$KV." + queue.BucketPolicy + ".global",
			"$KV." + queue.BucketPolicy + ".injected",
			"$KV." + queue.BucketConfig + ".policy_key_check",
			otp.EventSubject("victim"),
		}
		bodies := map[string]string{
			otp.SubjectRequest:                           `{"id":"reply-req","to":"not a number","code":"123456"}`,
			"$JS.API.STREAM.MSG.GET." + otp.StreamEvents: `{"seq":1}`,
			"$JS.API.DIRECT.GET." + otp.StreamEvents:     `{"seq":1,"batch":3}`,
		}
		for _, subject := range queue.PublisherPublish() {
			for i, reply := range targets {
				body := bodies[subject]
				switch subject {
				case otp.SubjectSend:
					b, _ := json.Marshal(otp.Job{ID: fmt.Sprintf("reply-%d", i), To: fmt.Sprintf("+452622795%d", i), Code: "123456"})
					body = string(b)
				case "$JS.API.DIRECT.GET." + otp.StreamEvents + ".>":
					subject = "$JS.API.DIRECT.GET." + otp.StreamEvents + "." + otp.EventSubject("role-pub")
				}
				if err := p.nc.PublishRequest(subject, reply, []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Answered requests on the same connection prove the ones before
		// were handled; a job admitted now proves the policy's global
		// counter still reads.
		if _, err := p.nc.Request("$JS.API.DIRECT.GET."+otp.StreamEvents+"."+otp.EventSubject("role-pub"), nil, 10*time.Second); err != nil {
			t.Fatalf("direct get: %v", err)
		}
		b, _ := json.Marshal(otp.Job{ID: "reply-after", To: "+4526227959", Code: "123456"})
		msg, err := p.nc.Request(otp.SubjectRequest, b, 10*time.Second)
		if err != nil {
			t.Fatalf("otp.request: %v", err)
		}
		if r := (otp.Reply{}); json.Unmarshal(msg.Data, &r) != nil || r.Status != otp.ReplyAccepted {
			t.Errorf("a job after the attempts: %s", msg.Data)
		}
		if e, err := configKV.Get(ctx, "policy_key_check"); err != nil || e.Revision() != keyCheck.Revision() {
			t.Errorf("config key policy_key_check written: %v", err)
		}
		if _, err := policyKV.Get(ctx, "injected"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("policy key injected written: %v", err)
		}
		es, err := daemonJS.Stream(ctx, otp.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := es.GetLastMsgForSubject(ctx, otp.EventSubject("victim")); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("an answer was stored as an event of victim: %v", err)
		}
	})

	t.Run("jobs dressed as server status", func(t *testing.T) {
		// A job with an empty body and a Status header looks, to nats.go's
		// consumer, like the server's own "no messages" or "timeout": it
		// would never be handed over and would come back at every ack
		// wait, each time holding a worker. Each must be taken and
		// refused like any bad job, and real jobs still go out.
		live := make(chan *nats.Msg, 256)
		sub, err := p.nc.ChanSubscribe(otp.SubjectEvents+".>", live)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		p.nc.Flush()
		statuses := []struct{ status, desc string }{
			{"100", "Idle Heartbeat"}, {"404", "No Messages"}, {"408", "Request Timeout"},
			{"409", "Consumer Deleted"}, {"409", "Leadership Change"}, {"503", ""},
		}
		const each = 5
		for i := range each {
			for j, st := range statuses {
				msg := nats.NewMsg(otp.SubjectSend)
				msg.Header.Set("Status", st.status)
				if st.desc != "" {
					msg.Header.Set("Description", st.desc)
				}
				msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("status-%d-%d", i, j))
				if _, err := p.js.PublishMsg(ctx, msg); err != nil {
					t.Fatalf("otp.send: %v", err)
				}
			}
		}
		refused := map[string]bool{}
		for len(refused) < each*len(statuses) {
			select {
			case m := <-live:
				if !strings.HasPrefix(m.Subject, otp.EventSubject("status-")) || m.Subject == otp.EventSubject("status-after") {
					continue
				}
				var ev otp.Event
				if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Type != otp.StateRejected || ev.Reason != otp.ReasonMalformed {
					t.Fatalf("event on %s: %s, want rejected (malformed)", m.Subject, m.Data)
				}
				refused[ev.ID] = true
			case <-time.After(20 * time.Second):
				t.Fatalf("%d of %d status-dressed jobs refused; the others are stuck", len(refused), each*len(statuses))
			}
		}
		b, _ := json.Marshal(otp.Job{ID: "status-after", To: "+4526227960", Code: "123456"})
		if _, err := p.js.Publish(ctx, otp.SubjectSend, b); err != nil {
			t.Fatal(err)
		}
		c, _ := client.New(p.nc)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if ev, err := c.Wait(wctx, "status-after"); err != nil || ev.Type != otp.StateSent {
			t.Errorf("a job after them: %+v %v", ev, err)
		}
	})

	t.Run("nothing changed", func(t *testing.T) {
		for _, name := range []string{otp.StreamJobs, otp.StreamEvents, "KV_" + queue.BucketPolicy, "KV_" + queue.BucketConfig} {
			s, err := daemonJS.Stream(ctx, name)
			if err != nil {
				t.Errorf("stream %s: %v", name, err)
				continue
			}
			if name == otp.StreamEvents && s.CachedInfo().Config.MaxAge == time.Second {
				t.Error("events stream updated")
			}
		}
		if _, err := daemonJS.Stream(ctx, "SNOOP"); err == nil {
			t.Error("a stream was created")
		}
		js, _ := daemonJS.Stream(ctx, otp.StreamJobs)
		if _, err := js.Consumer(ctx, queue.Consumer); err != nil {
			t.Errorf("the daemons' consumer: %v", err)
		}
		es, _ := daemonJS.Stream(ctx, otp.StreamEvents)
		if _, err := es.GetLastMsgForSubject(ctx, otp.EventSubject("victim")); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("forged event stored: %v", err)
		}
		if info, err := es.Info(ctx); err == nil {
			for _, c := range []string{"inject", "svc-events"} {
				if _, err := es.Consumer(ctx, c); err == nil {
					t.Errorf("consumer %s exists on %s (%d consumers)", c, otp.StreamEvents, info.State.Consumers)
				}
			}
		}
	})
}

// apiError returns the JetStream API error in a reply body, if any.
func apiError(err error, body string) error {
	if err != nil {
		return err
	}
	if strings.Contains(body, `"error"`) {
		return fmt.Errorf("api error: %s", body)
	}
	return nil
}

// TestRolesOnExampleCluster runs the attacker suite against a daemon on a
// three-node JetStream cluster configured with configs/nats (node.conf and
// simgate-accounts.conf, as shipped but for paths and loopback ports), and
// holds the example's publisher permissions to the ones the embedded
// server grants.
func TestRolesOnExampleCluster(t *testing.T) {
	dir := t.TempDir()
	seeds := map[string]string{}
	for _, role := range []string{"daemon", "publisher", "system"} {
		seeds[role] = filepath.Join(dir, role+".nk")
		pub, err := natsauth.RoleKey(seeds[role])
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("SIMGATE_"+strings.ToUpper(role)+"_NKEY", pub)
	}
	pki := testtls.NewPKI(t, dir, "nats")
	ca := pki.CAFile
	urls := startExampleCluster(t, dir, pki)

	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.NATS.URL = strings.Join(urls, ",")
	cfg.NATS.NkeySeedFile = seeds["daemon"]
	cfg.NATS.TLS.CAFile = ca
	cfg.NATS.Replicas = 3
	h := start(t, cfg)
	publisher, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: seeds["publisher"], CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	anonymous, err := natsauth.ClientOptions(natsauth.Client{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	attack(t, cfg.NATS.URL, publisher, anonymous, h.daemonJS())
}

// startExampleCluster starts three nats-servers from configs/nats on
// loopback ports, with the certificates of pki and their stores under dir,
// and returns their client URLs once JetStream has a leader.
func startExampleCluster(t *testing.T, dir string, pki testtls.PKI) []string {
	t.Helper()
	node, err := os.ReadFile("../configs/nats/node.conf")
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := os.ReadFile("../configs/nats/simgate-accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("/etc/nats/server.pem", pki.ServerCert,
		"/etc/nats/server-key.pem", pki.ServerKey,
		"/etc/nats/ca.pem", pki.CAFile).Replace(string(node))
	if err := os.WriteFile(filepath.Join(dir, "node.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "simgate-accounts.conf"), accounts, 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 3
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	var servers []*server.Server
	var urls []string
	for i := range n {
		opts, err := server.ProcessConfigFile(filepath.Join(dir, "node.conf"))
		if err != nil {
			t.Fatalf("the example configuration: %v", err)
		}
		if i == 0 {
			checkPublisherPermissions(t, opts)
		}
		opts.ServerName = fmt.Sprintf("nats-%d", i+1)
		opts.Host, opts.Port = "127.0.0.1", clientPorts[i]
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePorts[i]
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		opts.StoreDir = filepath.Join(dir, opts.ServerName)
		opts.NoLog, opts.NoSigs = true, true
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		servers = append(servers, ns)
		urls = append(urls, fmt.Sprintf("tls://127.0.0.1:%d", clientPorts[i]))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader := false
		for _, ns := range servers {
			if !ns.ReadyForConnections(10 * time.Second) {
				t.Fatalf("%s not ready", ns.Name())
			}
			leader = leader || ns.JetStreamIsLeader()
		}
		if leader {
			checkAccounts(t, servers[0])
			return urls
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream leader in 30s")
		}
		time.Sleep(50 * time.Millisecond) // no event to wait on: poll the election
	}
}

// checkPublisherPermissions holds the example's publisher permissions to
// the embedded server's.
func checkPublisherPermissions(t *testing.T, opts *server.Options) {
	t.Helper()
	pub := os.Getenv("SIMGATE_PUBLISHER_NKEY")
	for _, u := range opts.Nkeys {
		if u.Nkey != pub {
			continue
		}
		want := queue.PublisherPermissions()
		if u.Permissions == nil || !slices.Equal(u.Permissions.Publish.Allow, want.Publish.Allow) ||
			!slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe.Allow) ||
			len(u.Permissions.Publish.Deny)+len(u.Permissions.Subscribe.Deny) != 0 {
			t.Errorf("configs/nats publisher permissions differ from queue.PublisherPermissions:\n got %+v %+v\nwant %+v %+v",
				u.Permissions.Publish, u.Permissions.Subscribe, want.Publish, want.Subscribe)
		}
		return
	}
	t.Fatal("configs/nats has no publisher user")
}

// checkAccounts holds the example's accounts, exports and imports (on
// ns, a server running it) to the embedded server's.
func checkAccounts(t *testing.T, ns *server.Server) {
	t.Helper()
	dir := t.TempDir()
	daemonKey, err := natsauth.RoleKey(filepath.Join(dir, "daemon.nk"))
	if err != nil {
		t.Fatal(err)
	}
	publisherKey, err := natsauth.RoleKey(filepath.Join(dir, "publisher.nk"))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := queue.StartEmbedded(queue.EmbeddedConfig{Listen: "-", StoreDir: dir, Name: "shape", Daemon: daemonKey, Publisher: publisherKey})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { embedded.Shutdown(); embedded.WaitForShutdown() }()
	if got, want := accountShape(t, ns), accountShape(t, embedded); !slices.Equal(got, want) {
		t.Errorf("configs/nats accounts differ from the embedded server's:\n got %q\nwant %q", got, want)
	}
}

// accountShape lists the accounts of the two roles on ns, the exports of
// the daemon's and the imports from it, one line each, sorted.
func accountShape(t *testing.T, ns *server.Server) []string {
	t.Helper()
	var lines []string
	for _, name := range []string{queue.AccountDaemon, queue.AccountPublishers} {
		z, err := ns.Accountz(&server.AccountzOptions{Account: name})
		if err != nil || z.Account == nil {
			t.Fatalf("account %s: %v", name, err)
		}
		lines = append(lines, fmt.Sprintf("account %s jetstream=%v", name, z.Account.JetStream))
		for _, e := range z.Account.Exports {
			lines = append(lines, fmt.Sprintf("%s exports %s %s %s to %v", name, e.Type, e.Subject, e.ResponseType, e.ApprovedAccounts))
		}
		for _, i := range z.Account.Imports {
			if i.Account != queue.AccountDaemon {
				continue // the server's own, from its system account
			}
			lines = append(lines, fmt.Sprintf("%s imports %s %s from %s as %s", name, i.Type, i.Subject, i.Account, i.LocalSubject))
		}
	}
	slices.Sort(lines)
	return lines
}

// freePorts returns n TCP ports free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestRequestAnswersOnlyInboxes: otp.request with a reply subject outside
// _INBOX and _R_ (an event subject) is not answered, so the daemon's rights
// cannot write an event there. Publishers cannot name such a subject in the
// daemon's account (their replies come through the server as _R_); the
// check guards a setup that puts them in it, tried here from the daemon's
// own account.
func TestRequestAnswersOnlyInboxes(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	js := h.daemonJS()
	b, _ := json.Marshal(otp.Job{ID: "rq1", To: "+4526227941", Code: "123456"})
	if err := js.Conn().PublishRequest(otp.SubjectRequest, otp.EventSubject("victim"), b); err != nil {
		t.Fatal(err)
	}
	// A request answered afterwards proves the first was handled.
	if r := h.request(map[string]any{"id": "rq2", "to": "+4526227942", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("reply %+v", r)
	}
	es, err := js.Stream(t.Context(), otp.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.GetLastMsgForSubject(t.Context(), otp.EventSubject("victim")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("an answer was stored as an event of victim: %v", err)
	}
}
