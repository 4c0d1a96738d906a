package queue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/otp"
)

// crashEnv, set to a store directory, makes the test binary a process that
// queues jobs on an embedded server there and prints "acked <seq>" after
// each PubAck, until it is killed (see TestMain).
const crashEnv = "SIMGATE_QUEUE_CRASH_STORE"

func TestMain(m *testing.M) {
	if store := os.Getenv(crashEnv); store != "" {
		os.Exit(queueUntilKilled(store))
	}
	if spec := os.Getenv(requestPathEnv); spec != "" {
		os.Exit(requestPathCallers(spec))
	}
	os.Exit(m.Run())
}

func queueUntilKilled(store string) int {
	ns, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: store, Name: "crash"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := Setup(ctx, js, StreamConfig{DedupWindow: time.Minute}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		ack, err := js.Publish(ctx, otp.SubjectSend, fmt.Appendf(nil, `{"id":"j%d","to":"+4526227921","code":"123456"}`, i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "acked %d\n", ack.Sequence)
		out.Flush()
	}
}

// openStore starts an embedded server (no listener) with cfg and returns a
// JetStream context on it, and a function that closes both.
func openStore(t *testing.T, cfg EmbeddedConfig) (jetstream.JetStream, func(), error) {
	t.Helper()
	cfg.Listen = "-"
	ns, err := StartEmbedded(cfg)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	return js, func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }, nil
}

// TestAckedJobsSurviveACrash: a process queueing jobs on the embedded
// server (sync always, the default) is killed with SIGKILL right after a
// run of acknowledgements, without any shutdown; the store, opened again,
// holds every job it acknowledged. (This machine cannot drop unsynced
// pages: a killed process leaves them to the kernel. That sync always
// fsyncs each write before its acknowledgement is the server's
// SyncAlways, checked in TestEmbeddedSyncsEveryWrite, and what it costs is
// in BenchmarkPublishToCMGS and BenchmarkRequestThroughput.)
func TestAckedJobsSurviveACrash(t *testing.T) {
	store := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+store)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.ParseUint(sc.Text()[len("acked "):], 10, 64)
		if err != nil {
			t.Fatalf("child: %q", sc.Text())
		}
		acked = n
		if acked == 300 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if acked < 300 {
		t.Fatalf("the child stopped after %d acks: %s", acked, stderr.String())
	}
	js, closeStore, err := openStore(t, EmbeddedConfig{StoreDir: store, Name: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	s, err := js.Stream(t.Context(), otp.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	if st.FirstSeq != 1 || st.LastSeq < acked || st.Msgs < acked {
		t.Errorf("after the crash the queue holds %d jobs (%d..%d), want the %d acknowledged", st.Msgs, st.FirstSeq, st.LastSeq, acked)
	}
	for _, seq := range []uint64{1, acked / 2, acked} {
		if _, err := s.GetMsg(t.Context(), seq); err != nil {
			t.Errorf("acknowledged job %d: %v", seq, err)
		}
	}
}

// TestEmbeddedSyncsEveryWrite: the embedded server fsyncs every write
// unless told an interval.
func TestEmbeddedSyncsEveryWrite(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		always   bool
	}{{0, true}, {2 * time.Minute, false}} {
		ns, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: t.TempDir(), Name: "sync", SyncInterval: tc.interval})
		if err != nil {
			t.Fatal(err)
		}
		c := ns.JetStreamConfig()
		if c == nil || c.SyncAlways != tc.always || (!tc.always && c.SyncInterval != tc.interval) {
			t.Errorf("interval %s: JetStream config %+v, want sync always %v", tc.interval, c, tc.always)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// TestEncryptionAtRest: with a key, no file of the store holds a job's
// code or number; without one, they are there in clear (so the search
// finds them when they are).
func TestEncryptionAtRest(t *testing.T) {
	const code, number = "739104", "26227921"
	for _, key := range []string{"", "a key only this test knows"} {
		store := t.TempDir()
		js, closeStore, err := openStore(t, EmbeddedConfig{StoreDir: store, Name: "enc", EncryptionKey: key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Setup(t.Context(), js, StreamConfig{DedupWindow: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(t.Context(), otp.SubjectSend, []byte(`{"id":"enc","to":"+45`+number+`","code":"`+code+`"}`)); err != nil {
			t.Fatal(err)
		}
		closeStore()
		var found []string
		filepath.WalkDir(store, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && (bytes.Contains(b, []byte(code)) || bytes.Contains(b, []byte(number))) {
				found = append(found, path)
			}
			return nil
		})
		if key != "" && len(found) > 0 {
			t.Errorf("encrypted store: the code or number is in %v", found)
		}
		if key == "" && len(found) == 0 {
			t.Error("plain store: the code and number are nowhere; the search cannot see them")
		}
		if key != "" {
			// The key opens it again; the job is there.
			js, closeStore, err := openStore(t, EmbeddedConfig{StoreDir: store, Name: "enc", EncryptionKey: key})
			if err != nil {
				t.Fatal(err)
			}
			s, err := js.Stream(t.Context(), otp.StreamJobs)
			if err != nil || s.CachedInfo().State.Msgs != 1 {
				t.Errorf("reopened with the key: %v", err)
			}
			closeStore()
		}
	}
}

// TestEncryptionKeyChange: a store encrypted with one key does not start
// with another or with none (the streams would be replaced by empty ones),
// starts again with its own, and a plain store takes a key (nats-server
// encrypts it).
func TestEncryptionKeyChange(t *testing.T) {
	store := t.TempDir()
	queued := uint64(0)
	for _, tc := range []struct {
		key string
		ok  bool
	}{{"", true}, {"first key", true}, {"another key", false}, {"", false}, {"first key", true}} {
		js, closeStore, err := openStore(t, EmbeddedConfig{StoreDir: store, Name: "enc", EncryptionKey: tc.key})
		if (err == nil) != tc.ok {
			t.Fatalf("key %q: %v, want ok %v", tc.key, err, tc.ok)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "could not be read") {
				t.Errorf("key %q: %v", tc.key, err)
			}
			continue
		}
		if _, err := Setup(t.Context(), js, StreamConfig{DedupWindow: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(t.Context(), otp.SubjectSend, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		queued++
		// Every job queued under the keys before is still there.
		if s, err := js.Stream(t.Context(), otp.StreamJobs); err != nil || s.CachedInfo().State.Msgs != queued {
			t.Errorf("key %q: the queue (%v) does not hold the %d jobs queued so far", tc.key, err, queued)
		}
		closeStore()
	}
}
