package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/gateway"
	"github.com/simgate/simgate/hashkey"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/optout"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/verify"
)

// Daemon is a running simgate: NATS (embedded or external), the streams, the
// otp.request endpoint, one worker per modem and the metrics endpoint.
type Daemon struct {
	cfg config.Config
	log *slog.Logger

	ns      *server.Server // nil with an external server
	nc      *nats.Conn
	js      jetstream.JetStream
	gw      *gateway.Gateway
	reg     *prometheus.Registry
	metrics *metrics.Server
	sims    []*modemsim.Modem

	// The policy store and hash key stay for the daemon's life; a reload
	// builds new limits over them.
	polKey   []byte
	polStore policy.Store
	optOut   *optout.List

	reloadMu sync.Mutex
	live     config.Config // the configuration last applied (Start or Reload)

	workers  int          // modem workers started
	alive    atomic.Int32 // modem workers still running
	stopping atomic.Bool
	// waiting says why Start is not done yet (nil once it is).
	waiting atomic.Pointer[string]
	// storeFull is true while the embedded store's disk is full (see
	// watchDisk); space reads it (diskSpace, or a test's).
	storeFull atomic.Bool
	space     func(path string) (free, size uint64, err error)

	cancel    context.CancelFunc
	stopFleet context.CancelFunc
	stopDisk  context.CancelFunc
	wg        sync.WaitGroup
}

// Option adjusts how Start brings a daemon up.
type Option func(*options)

type options struct {
	status func(string)
	space  func(string) (free, size uint64, err error)
}

// WithStatus has Start call f with a one-line status whenever it waits for
// NATS (unreachable, electing, refusing), as systemd's STATUS= wants it.
func WithStatus(f func(status string)) Option { return func(o *options) { o.status = f } }

// Start brings a daemon up and returns once it takes jobs. Stop it with
// Stop.
//
// While NATS cannot be reached or its JetStream cannot answer (a cluster
// electing a leader, a node away), Start waits and tries again, with the
// metrics endpoint up and /readyz saying why it is not ready, until ctx
// ends. Only a configuration error ends it early.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger, version string, opts ...Option) (d *Daemon, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d = &Daemon{cfg: cfg, live: cfg, log: log, reg: metrics.NewRegistry(), space: diskSpace}
	if o.space != nil {
		d.space = o.space
	}
	d.setWaiting("starting")
	defer func() {
		if err != nil {
			d.Stop(context.Background())
			d = nil
		}
	}()

	modems, err := d.modemConfigs()
	if err != nil {
		return d, err
	}
	// Templates, number rules and the policy hash key first: a bad one
	// fails the start before anything is created in NATS.
	settings, warnings, err := live(cfg, nil)
	if err != nil {
		return d, err
	}
	for _, w := range warnings {
		log.Warn("template: " + w)
	}
	if err := d.loadHashKey(); err != nil {
		return d, err
	}
	names := make([]string, len(modems))
	for i, m := range modems {
		names[i] = m.Modem.Name
	}
	m := metrics.New(d.reg, version, names)
	if cfg.Metrics.Listen != "" {
		d.metrics, err = metrics.Listen(cfg.Metrics.Listen, d.reg, d.Ready)
		if err != nil {
			return d, fmt.Errorf("metrics listen %s: %w", cfg.Metrics.Listen, err)
		}
		log.Info("metrics", "url", "http://"+d.metrics.Addr()+"/metrics")
	}
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := d.bringUp(ctx, settings, m, version)
		if err == nil {
			break
		}
		var w *waitError
		if !errors.As(err, &w) {
			return d, err
		}
		status := "waiting for nats: " + err.Error()
		d.setWaiting(status)
		if o.status != nil {
			o.status(status)
		}
		log.Warn("nats not ready; trying again", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("%w while waiting for nats: %v", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
	d.waiting.Store(nil)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	d.workers = len(modems)
	for _, mc := range modems {
		d.wg.Add(1)
		d.alive.Add(1)
		go func() {
			defer d.wg.Done()
			defer d.alive.Add(-1)
			d.gw.RunModem(runCtx, mc)
		}()
	}
	log.Info("simgate started", "node", cfg.Node, "modems", len(modems), "version", version)
	return d, nil
}

// waitError is a failure of NATS that time may cure: a server that cannot
// be reached, a JetStream that does not answer. Start waits and tries
// again.
type waitError struct{ err error }

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// transient returns err as a *waitError unless it is a configuration
// error that no wait cures (a JetStream request refused as invalid, more
// replicas than the servers can hold).
func transient(err error) error {
	var api *jetstream.APIError
	if err == nil || errors.As(err, &api) && (api.Code == 400 || api.ErrorCode == errCodeReplicasNotSupported) {
		return err
	}
	return &waitError{err}
}

// errCodeReplicasNotSupported is JetStream's "replicas > 1 not supported
// in non-clustered mode" (nats.go names no constant for it).
const errCodeReplicasNotSupported jetstream.ErrorCode = 10074

// refused reports whether a connection failed for a reason only a change
// of configuration cures: credentials refused, a certificate that does not
// verify, a malformed URL.
func refused(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var u *url.Error
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &u)
}

// setWaiting records why the daemon is not up yet, for Ready.
func (d *Daemon) setWaiting(status string) { d.waiting.Store(&status) }

// bringUp connects to NATS (once), sets up the streams, the policy store
// and the delivery journal, and starts the gateway and its otp.request
// service. Every step converges when repeated, so a failed bring-up is
// tried again from the start; failures time may cure are *waitError.
func (d *Daemon) bringUp(ctx context.Context, settings gateway.Live, m *metrics.Metrics, version string) error {
	cfg, log := d.cfg, d.log
	if d.nc == nil {
		if err := d.connect(); err != nil {
			return err
		}
	}
	if d.js == nil {
		// Events are published without waiting for each acknowledgement
		// (in order, on one connection); a lost one is logged.
		js, err := jetstream.New(d.nc,
			jetstream.WithPublishAsyncMaxPending(4096),
			jetstream.WithPublishAsyncTimeout(10*time.Second),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				log.Warn("publish event", "subject", m.Subject, "err", err)
			}))
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		d.js = js
	}
	// Each try is bounded: a request into an electing cluster may get no
	// answer at all.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cons, err := queue.Setup(ctx, d.js, streamConfig(cfg))
	if err != nil {
		return transient(err)
	}
	if settings.Policy, err = d.policy(ctx, d.js); err != nil {
		return err
	}
	// Sent messages waiting for a status report outlive a restart.
	journal, err := queue.OpenDeliveryJournal(ctx, d.js, cfg.Node, d.polKey, journalTTL(cfg), cfg.NATS.Replicas, int64(cfg.NATS.Limits.JournalBytes))
	if err != nil {
		return transient(err)
	}
	// Modems with routes, announced to the other daemons.
	fleet, err := queue.OpenFleet(ctx, d.js, cfg.NATS.Replicas)
	if err != nil {
		return transient(err)
	}
	// Managed codes: their state beside the policy's, their secrets in a
	// bucket of their own.
	secrets, err := queue.OpenSecrets(ctx, d.js, cfg.NATS.Replicas)
	if err != nil {
		return transient(err)
	}
	verifier, err := verify.New(d.polStore, secrets, verify.Config{Key: d.polKey,
		MaxChecks: cfg.OTP.Verify.MaxChecks, ChecksPerMinute: cfg.OTP.Verify.ChecksPerMinute})
	if err != nil {
		return err
	}
	opts := gatewayOptions(cfg, version)
	opts.NC, opts.JS, opts.Jobs, opts.Fleet = d.nc, d.js, queue.NewPuller(d.nc), fleet
	opts.Verifier = verifier
	opts.Inbound = gateway.Inbound{FullSender: cfg.Inbound.Sender == "full", ReassemblyTimeout: cfg.Inbound.ReassemblyTimeout,
		StopWords: cfg.Inbound.StopWords, StartWords: cfg.Inbound.StartWords, Key: d.polKey}
	if cfg.Inbound.OptOut {
		list, err := optout.Open(ctx, d.js, cfg.NATS.Replicas)
		if err != nil {
			return transient(err)
		}
		if d.optOut != nil {
			d.optOut.Close() // an earlier attempt's
		}
		d.optOut, opts.Inbound.OptOut = list, list
	}
	opts.StoreFull = d.storeFull.Load
	opts.Limits, opts.Renderer, opts.Policy = settings.Limits, settings.Renderer, settings.Policy
	opts.Metrics, opts.Logger, opts.Journal = m, log, journal
	opts.QueueDepth = func(ctx context.Context) (int64, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int64(info.NumPending), nil
	}
	gw := gateway.New(opts)
	if err := gw.Restore(ctx); err != nil {
		return transient(fmt.Errorf("restore delivery tracking: %w", err))
	}
	if err := gw.StartRequests(); err != nil {
		return transient(err)
	}
	fctx, stopFleet := context.WithCancel(context.Background())
	if err := gw.StartFleet(fctx); err != nil {
		stopFleet()
		gw.StopRequests()
		return transient(err)
	}
	d.stopFleet = stopFleet
	d.reg.MustRegister(metrics.NewQueueCollector(func(ctx context.Context) (metrics.QueueState, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return metrics.QueueState{}, err
		}
		return metrics.QueueState{Pending: info.NumPending, InFlight: uint64(info.NumAckPending),
			Redelivered: uint64(info.NumRedelivered)}, nil
	}, 2*time.Second))
	js := d.js
	d.reg.MustRegister(metrics.NewStoreCollector(func(ctx context.Context) ([]metrics.StoreUsage, error) {
		return storeUsage(ctx, js)
	}, 2*time.Second))
	d.gw = gw
	return nil
}

// stores are the streams of simgate's data: the queue, the events and
// the buckets.
var stores = []string{otp.StreamJobs, otp.StreamEvents, otp.StreamInbound, "KV_" + optout.Bucket, "KV_" + queue.BucketPolicy,
	"KV_" + queue.BucketDelivery, "KV_" + queue.BucketConfig, "KV_" + queue.BucketSecrets}

// storeUsage reads how full each of stores is.
func storeUsage(ctx context.Context, js jetstream.JetStream) ([]metrics.StoreUsage, error) {
	var usage []metrics.StoreUsage
	for _, name := range stores {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		u := metrics.StoreUsage{Name: name, Bytes: info.State.Bytes, Messages: info.State.Msgs}
		if info.Config.MaxBytes > 0 {
			u.MaxBytes = uint64(info.Config.MaxBytes)
		}
		usage = append(usage, u)
	}
	return usage, nil
}

// loadHashKey reads the policy hash key from its file, creating the
// default one. The key never goes into NATS.
func (d *Daemon) loadHashKey() error {
	path := d.cfg.PolicyKeyFile()
	var key []byte
	var err error
	if d.cfg.Policy.HashKeyFile != "" {
		// A configured file is the operator's to make and share.
		key, err = hashkey.Load(path)
	} else {
		var created bool
		key, created, err = hashkey.LoadOrCreate(path)
		if created {
			d.log.Info("policy hash key created: copy this file to every other daemon of the cluster", "file", path)
		}
	}
	d.polKey = key
	return err
}

// policy makes sure every daemon of the cluster uses the same policy hash
// key, opens the shared policy store and builds the limits.
func (d *Daemon) policy(ctx context.Context, js jetstream.JetStream) (*policy.Policy, error) {
	path := d.cfg.PolicyKeyFile()
	removed, err := queue.CheckHashKey(ctx, js, hashkey.Fingerprint(d.polKey), d.cfg.NATS.Replicas)
	if removed {
		d.log.Warn("removed the policy hash key an earlier version kept in NATS, where any client could read it; "+
			"rate-limit state and delivery tracking keyed with it are forgotten", "bucket", queue.BucketConfig, "file", path)
	}
	if errors.Is(err, queue.ErrHashKeyMismatch) {
		return nil, fmt.Errorf("policy hash key file %s: %w: copy the same key file to every daemon of the cluster "+
			"(policy.hash_key_file, or %s in each state_dir)", path, err, hashkey.FileName)
	}
	if err != nil {
		return nil, transient(fmt.Errorf("policy hash key: %w", err))
	}
	store, err := queue.OpenPolicyStore(ctx, js, d.cfg.NATS.Replicas, int64(d.cfg.NATS.Limits.PolicyBytes))
	if err != nil {
		return nil, transient(err)
	}
	if old, ok := d.polStore.(*queue.KVStore); ok {
		old.Close() // an earlier attempt's: its reader goes with it
	}
	d.polStore = store
	return d.newPolicy(d.cfg)
}

// newPolicy builds the limits of c over the daemon's policy store.
func (d *Daemon) newPolicy(c config.Config) (*policy.Policy, error) {
	p, err := policy.New(policyConfig(c, d.polKey), d.polStore)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

// connect starts the embedded server when no URL is configured, and
// connects to NATS.
func (d *Daemon) connect() error {
	opts := []nats.Option{
		nats.Name("simgate " + d.cfg.Node),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				d.log.Warn("nats disconnected", "err", err)
			}
		}),
		// Not ConnectedUrlRedacted: it shows a token (nats://token@host).
		nats.ReconnectHandler(func(nc *nats.Conn) { d.log.Info("nats reconnected", "url", natsauth.RedactURL(nc.ConnectedUrl())) }),
		// Replies to the daemon (fetched jobs, key reads) go where no
		// publisher may subscribe.
		nats.CustomInboxPrefix(queue.DaemonInboxPrefix),
	}
	// No nats.RetryOnFailedConnect: wrong credentials or a certificate
	// that does not verify fail the start with the server's error; a
	// server that cannot be reached is waited for (see Start).
	if n := d.cfg.NATS; n.URL != "" {
		client := n.Auth().Client
		auth, err := natsauth.ClientOptions(client)
		if err != nil {
			return err
		}
		if hosts := natsauth.ClearTextHosts(n.URL, client); len(hosts) > 0 {
			d.log.Warn("nats credentials go in clear over plain nats:// to a remote host: use tls:// or nats.tls", "hosts", hosts)
		}
		nc, err := nats.Connect(n.URL, append(opts, auth...)...)
		if err != nil {
			// A parse error quotes the URL, password and all. (Judged
			// before redaction, which keeps the text, not the type.)
			permanent := refused(err)
			err = fmt.Errorf("connect to nats %s: %w", natsauth.RedactURL(n.URL), natsauth.RedactError(err, n.URL))
			if permanent {
				return err
			}
			return &waitError{err}
		}
		d.nc = nc
		d.log.Info("connected to nats", "url", natsauth.RedactURL(nc.ConnectedUrl()))
		return nil
	}
	store := filepath.Join(d.cfg.StateDir, "jetstream")
	if err := os.MkdirAll(store, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// The two roles' credentials: generated on first start, kept in the
	// state directory.
	daemonSeed := natsauth.SeedFile(d.cfg.StateDir, natsauth.RoleDaemon)
	publisherSeed := natsauth.SeedFile(d.cfg.StateDir, natsauth.RolePublisher)
	daemonKey, err := natsauth.RoleKey(daemonSeed)
	if err != nil {
		return err
	}
	publisherKey, err := natsauth.RoleKey(publisherSeed)
	if err != nil {
		return err
	}
	ecfg, err := embeddedConfig(d.cfg, store)
	if err != nil {
		return err
	}
	ecfg.Daemon, ecfg.Publisher = daemonKey, publisherKey
	auth, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: daemonSeed})
	if err != nil {
		return err
	}
	ns, err := queue.StartEmbedded(ecfg)
	if err != nil {
		return err
	}
	d.ns = ns
	d.reg.MustRegister(metrics.NewDiskCollector(func() (metrics.DiskUsage, error) { return d.diskUsage(store) }))
	wctx, stopWatch := context.WithCancel(context.Background())
	d.stopDisk = stopWatch
	go d.watchDisk(wctx, store)
	opts = append(opts, auth...)
	opts = append(opts, nats.InProcessServer(ns))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return fmt.Errorf("connect to embedded nats: %w", err)
	}
	d.nc = nc
	d.log.Info("embedded nats server started", "url", d.ClientURL(), "store", store, "publisher_seed_file", publisherSeed)
	return nil
}

// modemConfigs resolves the configured modems (reading SIM PINs), or starts
// simulated ones.
func (d *Daemon) modemConfigs() ([]gateway.Worker, error) {
	if n := d.cfg.Simulate; n > 0 {
		d.log.Warn("SIMULATED MODEMS: no real SMS is sent", "count", n)
		var out []gateway.Worker
		for i := range n {
			name := fmt.Sprintf("sim%d", i+1)
			sim, err := modemsim.Start(modemsim.Config{
				Name: name,
				// The network confirms delivery a moment later.
				ReportDelay: time.Second,
				Logger:      d.log.With("sim", name),
			})
			if err != nil {
				return nil, fmt.Errorf("simulated modem %s: %w", name, err)
			}
			d.sims = append(d.sims, sim)
			d.log.Info("simulated modem", "name", name, "device", sim.Path())
			out = append(out, simulatedWorker(name, sim.Path()))
		}
		return out, nil
	}
	out := make([]gateway.Worker, 0, len(d.cfg.Modems))
	for _, mc := range d.cfg.Modems {
		w, err := worker(mc)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// ClientURL returns the embedded server's client URL, or "" when simgate
// uses an external server or the embedded one does not listen.
func (d *Daemon) ClientURL() string {
	if d.ns == nil || d.cfg.NATS.Listen == "-" {
		return ""
	}
	return d.ns.ClientURL()
}

// Registry returns the daemon's Prometheus registry.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// MetricsAddr returns the address of the metrics endpoint, or "".
func (d *Daemon) MetricsAddr() string {
	if d.metrics == nil {
		return ""
	}
	return d.metrics.Addr()
}

// Simulated returns the simulated modems started for --simulate.
func (d *Daemon) Simulated() []*modemsim.Modem { return d.sims }

// Ready reports whether the daemon can take jobs: NATS connected and at
// least one modem ready.
func (d *Daemon) Ready() error {
	if w := d.waiting.Load(); w != nil {
		return errors.New(*w)
	}
	switch {
	case d.nc == nil || !d.nc.IsConnected():
		return errors.New("nats not connected")
	case d.gw == nil || d.gw.ModemsReady() == 0:
		return errors.New("no modem ready")
	}
	return nil
}

// ModemsReady returns how many modems are open and initialised.
func (d *Daemon) ModemsReady() int {
	if d.gw == nil {
		return 0
	}
	return d.gw.ModemsReady()
}

// Modems returns how many modems (workers) the daemon runs.
func (d *Daemon) Modems() int { return d.workers }

// Healthy reports whether the process works: every modem worker loop
// running. It is what the systemd watchdog checks. It is weaker than Ready
// on purpose: NATS away (the client reconnects by itself) or no modem
// ready (unplugged, no network) is not a hung daemon, and a restart would
// not help.
func (d *Daemon) Healthy() error {
	switch {
	case d.stopping.Load():
		return errors.New("stopping")
	case int(d.alive.Load()) != d.workers:
		return fmt.Errorf("%d of %d modem workers running", d.alive.Load(), d.workers)
	}
	return nil
}

// Stop stops taking jobs, lets a send in progress finish, and shuts down.
// ctx bounds the wait.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopping.Store(true)
	var errs []error
	if d.gw != nil {
		errs = append(errs, d.gw.StopRequests())
	}
	if d.stopFleet != nil {
		d.stopFleet()
	}
	if d.cancel != nil {
		// Workers stop fetching, give back a job fetched but not started,
		// and finish a send in progress.
		d.cancel()
		d.log.Info("stopping: waiting for sends in progress")
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("modem workers still busy: %w", ctx.Err()))
	}
	if d.gw != nil {
		d.gw.Close(ctx)
	}
	if d.metrics != nil {
		errs = append(errs, d.metrics.Shutdown(ctx))
	}
	if d.optOut != nil {
		d.optOut.Close()
	}
	if d.nc != nil {
		d.nc.Close()
	}
	if d.stopDisk != nil {
		d.stopDisk()
	}
	if d.ns != nil {
		d.ns.Shutdown()
		d.ns.WaitForShutdown()
	}
	for _, s := range d.sims {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
