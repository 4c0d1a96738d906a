// Package queue is simgate's side of NATS: an embedded JetStream server for
// single-box setups, the streams and the durable consumer that carry jobs and
// events (their subjects and names are the contract, in package otp), and the
// key-value buckets of the policy and the delivery journal.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

// Consumer is the durable pull consumer on otp.StreamJobs every daemon
// binds to: the server spreads jobs among them.
const Consumer = "simgate"

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Listen is the client address, "127.0.0.1:4222". Port 0 picks a free
	// port; "-" listens on no port at all (in-process connections only).
	Listen string
	// StoreDir keeps JetStream's files.
	StoreDir string
	// Name is the server name; it must stay the same across restarts for
	// JetStream to find its data.
	Name string
	// Daemon and Publisher are the nkey public keys (U...) of the two roles'
	// users (see natsauth.RoleKey and PublisherPermissions). Both empty:
	// no authentication, which only a server that does not listen (Listen
	// "-") accepts.
	Daemon, Publisher string
	// Auth adds a publisher login by password and TLS on the listener.
	Auth natsauth.Embedded
	// SyncInterval is how often JetStream fsyncs its files; 0 fsyncs every
	// write before it is acknowledged (nats-server's sync: always).
	SyncInterval time.Duration
	// EncryptionKey, when not empty, encrypts the store at rest (AES-GCM,
	// nats-server's JetStream encryption).
	EncryptionKey string
}

// StartEmbedded starts an in-process NATS server with JetStream and waits
// until it takes connections. Connect to it with nats.InProcessServer or at
// its ClientURL; stop it with Shutdown and WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName:   cfg.Name,
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		NoSigs:       true,
		NoLog:        true,
		SyncAlways:   cfg.SyncInterval == 0,
		SyncInterval: cfg.SyncInterval,
	}
	if cfg.EncryptionKey != "" {
		opts.JetStreamKey, opts.JetStreamCipher = cfg.EncryptionKey, server.AES
	}
	accounts, err := embeddedAuth(opts, cfg)
	if err != nil {
		return nil, err
	}
	if accounts {
		if err := moveGlobalStore(cfg.StoreDir); err != nil {
			return nil, err
		}
	}
	if cfg.Listen == "-" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
		if p == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s not ready after 10s", cfg.Listen)
	}
	if accounts {
		// An account defined in Go has no JetStream until it is enabled on
		// the running server, which then recovers its streams.
		acc, err := ns.LookupAccount(AccountDaemon)
		if err == nil {
			err = acc.EnableJetStream(nil, nil)
		}
		if err != nil {
			ns.Shutdown()
			return nil, fmt.Errorf("embedded nats server: jetstream for account %s: %w", AccountDaemon, err)
		}
	}
	account := AccountDaemon
	if !accounts {
		account = server.DEFAULT_GLOBAL_ACCOUNT
	}
	if err := checkStreamsLoaded(ns, cfg.StoreDir, account); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return ns, nil
}

// checkStreamsLoaded fails when a stream of account's store did not load:
// the server skips a stream it cannot decrypt (another key, or none), and
// the daemon would then create an empty one in its place.
func checkStreamsLoaded(ns *server.Server, storeDir, account string) error {
	dirs, err := os.ReadDir(filepath.Join(storeDir, server.JetStreamStoreDir, account, "streams"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	info, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	loaded := map[string]bool{}
	for _, a := range info.AccountDetails {
		if a.Name == account {
			for _, s := range a.Streams {
				loaded[s.Name] = true
			}
		}
	}
	var missing []string
	for _, d := range dirs {
		if d.IsDir() && !loaded[d.Name()] {
			missing = append(missing, d.Name())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("embedded nats: streams %v are in the store but could not be read: it is encrypted with another key than nats.embedded.encryption_key_file gives (or with one, and none is given)", missing)
	}
	return nil
}

// moveGlobalStore moves the streams of a store written before the roles
// had accounts (in the global account, $G) to the daemon's account, once:
// queued jobs, events and buckets survive the upgrade.
func moveGlobalStore(storeDir string) error {
	old := filepath.Join(storeDir, server.JetStreamStoreDir, server.DEFAULT_GLOBAL_ACCOUNT)
	to := filepath.Join(storeDir, server.JetStreamStoreDir, AccountDaemon)
	_, err := os.Stat(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to move
	}
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	_, err = os.Stat(to)
	if err == nil {
		// Both: a version before the accounts ran on a store that had
		// been moved. Its jobs would be ignored; let a person choose.
		return fmt.Errorf("embedded nats: the store holds both %s (written by a version before the accounts) and %s: move the streams you need into %s and remove %s", old, to, to, old)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("embedded nats: %w", err)
	}
	if err := os.Rename(old, to); err != nil {
		return fmt.Errorf("embedded nats: move the store to account %s: %w", AccountDaemon, err)
	}
	return nil
}

// StreamConfig sizes the streams.
type StreamConfig struct {
	// Replicas of each stream in a JetStream cluster; 1 when zero.
	Replicas int
	// DedupWindow is how long a job id is remembered by Nats-Msg-Id; it
	// should cover a code's longest life.
	DedupWindow time.Duration
	// EventsMaxAge is how long events are kept; 24 h when zero.
	EventsMaxAge time.Duration
	// AckWait is how long a job may be held without an ack or a progress
	// signal before the server redelivers it.
	AckWait time.Duration
	// JobsMaxBytes bounds OTP_JOBS (a full queue refuses new jobs);
	// EventsMaxBytes bounds OTP_EVENTS and EventsPerJob the events kept
	// per job id (the oldest go first). Unbounded when zero.
	JobsMaxBytes, EventsMaxBytes int64
	EventsPerJob                 int64
	// InboundMaxAge is how long received messages are kept in SMS_IN (7
	// days when zero); InboundMaxBytes bounds it (unbounded when zero).
	InboundMaxAge   time.Duration
	InboundMaxBytes int64
}

// MaxJobSize is the largest job OTP_JOBS takes, in bytes: a job is a few
// hundred bytes (a text at most 1,000 characters); more is not a job.
const MaxJobSize = 8 << 10

// limit is n as a JetStream limit: -1 (none) for zero.
func limit(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// EventsDedupWindow is how long OTP_EVENTS recognises an event told again.
const EventsDedupWindow = 2 * time.Minute

// Setup creates or updates the job and event streams and the durable
// consumer, and returns the consumer. Every daemon calls it at start; the
// calls converge on the same configuration.
func Setup(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Consumer, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.EventsMaxAge == 0 {
		cfg.EventsMaxAge = 24 * time.Hour
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 6 * time.Second
	}
	jobs, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        otp.StreamJobs,
		Description: "simgate: OTP send jobs",
		Subjects:    []string{otp.SubjectSend},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DedupWindow,
		// A job nobody took in a day is worthless; keep the disk bounded.
		MaxAge:     24 * time.Hour,
		MaxBytes:   limit(cfg.JobsMaxBytes),
		MaxMsgSize: MaxJobSize,
		// A full queue refuses the new job (its publisher is told),
		// never drops a queued one.
		Discard: jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", otp.StreamJobs, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        otp.StreamEvents,
		Description: "simgate: job events",
		Subjects:    []string{otp.SubjectEvents + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.EventsMaxAge,
		MaxBytes:    limit(cfg.EventsMaxBytes),
		// Per job id: a publisher cannot make one id's history grow
		// without bound by reusing it.
		MaxMsgsPerSubject: limit(cfg.EventsPerJob),
		Discard:           jetstream.DiscardOld,
		// An event of an admitted job is told until the stream confirms
		// it (for a minute at most) and told again by a daemon that
		// finds the job ended but not acknowledged: the copies of one
		// event share a message id, and the stream keeps one.
		Duplicates: EventsDedupWindow,
		// Publishers replay a job's events with direct gets: they may
		// create no consumer (a push consumer could deliver anywhere).
		AllowDirect: true,
	}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", otp.StreamEvents, err)
	}
	if cfg.InboundMaxAge == 0 {
		cfg.InboundMaxAge = 7 * 24 * time.Hour
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        otp.StreamInbound,
		Description: "simgate: messages the modems received",
		Subjects:    []string{otp.SubjectReceived + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.InboundMaxAge,
		MaxBytes:    limit(cfg.InboundMaxBytes),
		Discard:     jetstream.DiscardOld,
		// A message read again (its daemon died between publishing it
		// and deleting it from the modem) has the same message id.
		Duplicates: min(24*time.Hour, cfg.InboundMaxAge),
	}); err != nil {
		return nil, fmt.Errorf("stream %s: %w", otp.StreamInbound, err)
	}
	cons, err := jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "simgate modem workers",
		FilterSubject: otp.SubjectSend,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// Attempts are bounded by the daemon, which ends a job with a
		// failed event; a server-side limit would leave it stuck in the
		// work queue.
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", Consumer, err)
	}
	return cons, nil
}
