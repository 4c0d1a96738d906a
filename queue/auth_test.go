package queue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/internal/testtls"
	"github.com/simgate/simgate/keyfile"
	"github.com/simgate/simgate/natsauth"
)

// roleKeys creates the two role seeds in dir and returns their paths and
// public keys.
func roleKeys(t testing.TB, dir string) (daemonSeed, publisherSeed, daemonKey, publisherKey string) {
	t.Helper()
	daemonSeed = natsauth.SeedFile(dir, natsauth.RoleDaemon)
	publisherSeed = natsauth.SeedFile(dir, natsauth.RolePublisher)
	var err error
	if daemonKey, err = natsauth.RoleKey(daemonSeed); err != nil {
		t.Fatal(err)
	}
	if publisherKey, err = natsauth.RoleKey(publisherSeed); err != nil {
		t.Fatal(err)
	}
	return
}

func TestEmbeddedAuth(t *testing.T) {
	dir := t.TempDir()
	daemonSeed, publisherSeed, daemonKey, publisherKey := roleKeys(t, dir)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("embedded-pw-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Name: "auth",
		Daemon: daemonKey, Publisher: publisherKey, Auth: natsauth.Embedded{User: "svc", PasswordFile: pw}}
	ns, err := StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	connect := func(c natsauth.Client, extra ...nats.Option) (*nats.Conn, error) {
		opts, err := natsauth.ClientOptions(c)
		if err != nil {
			t.Fatal(err)
		}
		return nats.Connect(ns.ClientURL(), append(opts, extra...)...)
	}
	for _, c := range []natsauth.Client{
		{NkeySeedFile: daemonSeed},
		{NkeySeedFile: publisherSeed},
		{User: "svc", PasswordFile: pw},
	} {
		nc, err := connect(c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		nc.Close()
	}
	// The daemon's in-process connection.
	opts, _ := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: daemonSeed})
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()

	// Without credentials, with a wrong password, with a foreign nkey:
	// refused, and no error holds a secret.
	other := filepath.Join(t.TempDir(), "other.nk")
	natsauth.RoleKey(other)
	for name, c := range map[string][]nats.Option{
		"none":           nil,
		"wrong password": {nats.UserInfo("svc", "guess")},
		"foreign nkey":   must(natsauth.ClientOptions(natsauth.Client{NkeySeedFile: other})),
	} {
		nc, err := nats.Connect(ns.ClientURL(), c...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if strings.Contains(err.Error(), "embedded-pw-7") {
			t.Errorf("%s: error %q holds the password", name, err)
		}
	}
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}); err == nil {
		t.Error("a listening server without role keys started")
	}
	// A password file others can read is refused, without its contents.
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.StoreDir = t.TempDir()
	if _, err := StartEmbedded(cfg); !errors.Is(err, keyfile.ErrLoose) || strings.Contains(err.Error(), "embedded-pw-7") {
		t.Errorf("a loose password file: %v", err)
	}
}

func must(opts []nats.Option, err error) []nats.Option {
	if err != nil {
		panic(err)
	}
	return opts
}

func TestEmbeddedTLS(t *testing.T) {
	dir := t.TempDir()
	_, publisherSeed, daemonKey, publisherKey := roleKeys(t, dir)
	cert, key, ca := testtls.SelfSigned(t, dir)
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Name: "tls",
		Daemon: daemonKey, Publisher: publisherKey, Auth: natsauth.Embedded{CertFile: cert, KeyFile: key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	opts, err := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: publisherSeed, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("connection not over TLS")
	}
	nc.Close()
	// A client that will not do TLS is refused.
	plain, _ := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: publisherSeed})
	if nc, err := nats.Connect(ns.ClientURL(), plain...); err == nil {
		nc.Close()
		t.Error("connected in clear to a TLS listener")
	}
}

// TestEmbeddedMovesGlobalStore: streams a server wrote before the roles
// had accounts (in the global account) are the daemon account's after the
// upgrade, with their messages.
func TestEmbeddedMovesGlobalStore(t *testing.T) {
	store := t.TempDir()
	old, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: store, Name: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(old))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "keep", []byte("queued job")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	old.Shutdown()
	old.WaitForShutdown()

	daemonSeed, _, daemonKey, publisherKey := roleKeys(t, t.TempDir())
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: store, Name: "upgrade", Daemon: daemonKey, Publisher: publisherKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	opts, _ := natsauth.ClientOptions(natsauth.Client{NkeySeedFile: daemonSeed})
	nc, err = nats.Connect("", append(opts, nats.InProcessServer(ns))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(t.Context(), "KEEP")
	if err != nil {
		t.Fatalf("the stream after the upgrade: %v", err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil || string(m.Data) != "queued job" {
		t.Fatalf("its message: %v %q", m, err)
	}
}

// TestMoveGlobalStore: the store of a version before the accounts is moved
// once; a store holding both is left for a person to sort out, with an
// error that names both directories.
func TestMoveGlobalStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new bool
		err      bool
	}{
		{name: "fresh"},
		{name: "old only", old: true},
		{name: "moved before", new: true},
		{name: "both", old: true, new: true, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := t.TempDir()
			old := filepath.Join(store, server.JetStreamStoreDir, server.DEFAULT_GLOBAL_ACCOUNT)
			moved := filepath.Join(store, server.JetStreamStoreDir, AccountDaemon)
			for _, d := range []struct {
				dir  string
				make bool
			}{{old, tc.old}, {moved, tc.new}} {
				if d.make {
					if err := os.MkdirAll(filepath.Join(d.dir, "streams", "OTP_JOBS"), 0o750); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := moveGlobalStore(store)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want one: %v", err, tc.err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), moved) {
					t.Errorf("error %q does not name both directories", err)
				}
				return
			}
			if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the old directory is still there: %v", err)
			}
			if _, err := os.Stat(filepath.Join(moved, "streams", "OTP_JOBS")); (err == nil) != (tc.old || tc.new) {
				t.Errorf("the moved store: %v", err)
			}
		})
	}
}
