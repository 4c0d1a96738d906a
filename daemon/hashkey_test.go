package daemon_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/simgate/simgate/queue"
)

// natsServer starts a NATS server with JetStream that outlives the daemons
// of a test, and returns its client URL.
func natsServer(t *testing.T) string {
	t.Helper()
	return startNATS(t, server.Options{}).ClientURL()
}

// startNATS starts a JetStream server with opts on a free loopback port
// for the length of a test.
func startNATS(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	if opts.Port == 0 {
		opts.Port = -1 // any free port
	}
	opts.JetStream, opts.StoreDir, opts.Host, opts.NoSigs = true, t.TempDir(), "127.0.0.1", true
	ns, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// numberKey is the policy store's key of a number hashed with key.
func numberKey(key []byte, e164 string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(e164))
	return "num." + hex.EncodeToString(m.Sum(nil)[:16])
}

// TestHashKeyStaysOutOfNATS is the attack of issue #10: a client of the
// daemon's NATS server read the policy hash key from bucket simgate_config,
// recomputed the hashes of numbers and so reversed them. Now the key is in
// a file only: no message of any stream holds it (the key an earlier
// version kept in NATS is removed at start), and the daemon's hashes and
// journal are those of the file's key and of no other.
func TestHashKeyStaysOutOfNATS(t *testing.T) {
	url := natsServer(t)
	ctx := context.Background()
	attacker, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	ajs, err := jetstream.New(attacker)
	if err != nil {
		t.Fatal(err)
	}
	// An earlier version kept a random key in simgate_config.
	legacy := make([]byte, 32)
	rand.Read(legacy)
	old, err := ajs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: queue.BucketConfig, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Create(ctx, "policy_hash_key", legacy); err != nil {
		t.Fatal(err)
	}

	// No report comes: the sent messages wait, and are journalled at stop.
	s := startReportingSim(t, "m1", modemsim.Config{ReportDropRate: 1})
	dir := t.TempDir()
	cfg := testConfig(dir, s)
	cfg.NATS.URL = url // the state directory holds the key with an external server too
	h := start(t, cfg)
	numbers := []string{"+4526227921", "+4526227922", "+4530123456"}
	for i, n := range numbers {
		id := "job-" + string(rune('a'+i))
		if r := h.request(map[string]any{"id": id, "to": n, "code": "034812"}); r.Status != otp.ReplyAccepted {
			t.Fatalf("request: %+v", r)
		}
		if evs := h.waitFinal(id); evs[len(evs)-1].Type != otp.StateSent {
			t.Fatalf("job %s: %s", id, types(evs))
		}
	}
	h.stop()

	file := filepath.Join(dir, hashkey.FileName)
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.TrimSpace(text)
	raw, err := hex.DecodeString(string(key))
	if err != nil || len(raw) != 32 {
		t.Fatalf("key file: not 32 bytes in hex (%v)", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "removed the policy hash key an earlier version kept in NATS"); n != 1 {
		t.Errorf("legacy key removal logged %d times, want once:\n%s", n, logs)
	}
	for _, secret := range [][]byte{key, raw, legacy, []byte(hex.EncodeToString(legacy))} {
		if strings.Contains(logs, string(secret)) {
			t.Error("a key in the logs")
		}
	}

	// Every message of every stream, history included, as any client
	// reads it: none holds the key, in any form, nor the legacy key.
	streams := ajs.ListStreams(ctx)
	var seen []string
	for info := range streams.Info() {
		seen = append(seen, info.Config.Name)
		st, err := ajs.Stream(ctx, info.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			for what, secret := range map[string][]byte{"key": key, "raw key": raw, "legacy key": legacy} {
				if bytes.Contains(m.Data, secret) {
					t.Errorf("stream %s, message %d on %s holds the %s", info.Config.Name, seq, m.Subject, what)
				}
				for k, vs := range m.Header {
					for _, v := range vs {
						if strings.Contains(v, string(secret)) {
							t.Errorf("stream %s, message %d, header %s holds the %s", info.Config.Name, seq, k, what)
						}
					}
				}
			}
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(seen, " "), "KV_"+queue.BucketConfig) {
		t.Fatalf("streams %v: no %s", seen, queue.BucketConfig)
	}
	cfgKV, err := ajs.KeyValue(ctx, queue.BucketConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfgKV.Get(ctx, "policy_hash_key"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("legacy key: %v, want removed", err)
	}
	if e, err := cfgKV.Get(ctx, "policy_key_check"); err != nil || string(e.Value()) != hashkey.Fingerprint(key) {
		t.Errorf("fingerprint: %v", err)
	}

	// The daemon hashed numbers with the file's key, and with no other:
	// not the legacy key, not a fresh one.
	pol, err := ajs.KeyValue(ctx, queue.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	rand.Read(other)
	for _, n := range numbers {
		if _, err := pol.Get(ctx, numberKey(key, n)); err != nil {
			t.Errorf("%s hashed with the file's key: %v", n, err)
		}
		for _, k := range [][]byte{legacy, other, raw} {
			if _, err := pol.Get(ctx, numberKey(k, n)); err == nil {
				t.Errorf("%s hashed with another key", n)
			}
		}
	}
	// The journal's key comes from the file's key: the file reads the
	// journalled numbers, another key reads nothing.
	for _, tc := range []struct {
		name string
		key  []byte
		want int
	}{{"file key", key, len(numbers)}, {"legacy key", legacy, 0}, {"other key", other, 0}} {
		j, err := queue.OpenDeliveryJournal(ctx, ajs, cfg.Node, tc.key, cfg.OTP.DeliveryTimeout+time.Hour, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		msgs, skipped, err := j.Load(ctx)
		if err != nil || len(msgs) != tc.want || len(msgs)+skipped != len(numbers) {
			t.Errorf("journal with the %s: %d read, %d skipped (%v), want %d read", tc.name, len(msgs), skipped, err, tc.want)
		}
	}

	// A restart reuses the file: same key, no new fingerprint, nothing
	// removed.
	h = start(t, cfg)
	h.stop()
	if b, _ := os.ReadFile(file); !bytes.Equal(b, text) {
		t.Error("key file changed by a restart")
	}
	if strings.Contains(h.logs.String(), "removed the policy hash key") || strings.Contains(h.logs.String(), "policy hash key created") {
		t.Errorf("restart logs:\n%s", h.logs.String())
	}
}

// TestClusterNeedsTheSameHashKeyFile: daemons sharing NATS must share the
// key file; one with another key, or with a key file anyone may read,
// refuses to start, naming the file and never showing a key.
func TestClusterNeedsTheSameHashKeyFile(t *testing.T) {
	url := natsServer(t)
	s1 := startSim(t, "a1", 0)
	cfgA := testConfig(t.TempDir(), s1)
	cfgA.Node, cfgA.NATS.URL, cfgA.Metrics.Listen = "a", url, ""
	a := start(t, cfgA)
	keyA, err := os.ReadFile(cfgA.PolicyKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	other := []byte("another key of thirty-two bytes!\n")

	for _, tc := range []struct {
		name string
		// file is the second daemon's key file; nil content: none (a key
		// is generated in its state directory).
		content    []byte
		mode       os.FileMode
		configured bool // policy.hash_key_file names it
		err        string
	}{
		{name: "copied into the state directory", content: keyA, mode: 0o600},
		{name: "copied and configured", content: keyA, mode: 0o600, configured: true},
		{name: "generated anew", err: "copy the same key file to every daemon of the cluster"},
		{name: "another key", content: other, mode: 0o600, configured: true, err: "another policy hash key"},
		{name: "readable by others", content: keyA, mode: 0o644, err: "readable or writable by group or others (want mode 0600)"},
		{name: "short", content: []byte("tiny-key\n"), mode: 0o600, configured: true, err: "shorter than 16 bytes"},
		{name: "configured but missing", configured: true, err: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s2 := startSim(t, "b1", 0)
			cfgB := testConfig(t.TempDir(), s2)
			cfgB.Node, cfgB.NATS.URL, cfgB.Metrics.Listen = "b", url, ""
			file := filepath.Join(cfgB.StateDir, hashkey.FileName)
			if tc.configured {
				file = filepath.Join(t.TempDir(), "simgate.key")
				cfgB.Policy.HashKeyFile = file
			}
			if tc.content != nil {
				if err := os.WriteFile(file, tc.content, tc.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(file, tc.mode)
			}
			d, err := daemon.Start(context.Background(), cfgB, nil, "test")
			if tc.err == "" {
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				d.Stop(context.Background())
				return
			}
			if err == nil {
				d.Stop(context.Background())
				t.Fatalf("started, want %q", tc.err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.err) || !strings.Contains(msg, file) {
				t.Errorf("error %q: want %q and the file", msg, tc.err)
			}
			key, _ := os.ReadFile(file)
			for _, secret := range [][]byte{bytes.TrimSpace(keyA), bytes.TrimSpace(other), bytes.TrimSpace(key)} {
				if len(secret) > 0 && strings.Contains(msg, string(secret)) {
					t.Errorf("error %q shows a key", msg)
				}
			}
		})
	}
	// The first daemon still works.
	if r := a.request(map[string]any{"id": "after", "to": "+4526227921", "code": "034812"}); r.Status != otp.ReplyAccepted {
		t.Errorf("first daemon: %+v", r)
	}
}

// copyKeyFile gives the daemon of cfg the key file of the daemon whose
// state directory is from, as the README says to do in a cluster.
func copyKeyFile(t testing.TB, from string, cfg config.Config) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, hashkey.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.PolicyKeyFile(), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
