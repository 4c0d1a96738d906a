package hashkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/simgate/simgate/keyfile"
)

func TestLoad(t *testing.T) {
	const secret = "0123456789abcdef-k3y"
	for _, tc := range []struct {
		name    string
		content string // "" with mode 0: no file
		mode    os.FileMode
		dir     bool
		want    string // the key, or "" for an error
		err     string // in the error
	}{
		{name: "trimmed text", content: "  " + secret + "\r\n", mode: 0o600, want: secret},
		{name: "owner read only", content: secret, mode: 0o400, want: secret},
		{name: "world readable", content: secret, mode: 0o644, err: "readable or writable by group or others (want mode 0600)"},
		{name: "group readable", content: secret, mode: 0o640, err: "want mode 0600"},
		{name: "group writable", content: secret, mode: 0o620, err: "want mode 0600"},
		{name: "short", content: "  0123456789abcde\n", mode: 0o600, err: "shorter than 16 bytes"},
		{name: "empty", content: "\n", mode: 0o600, err: "is empty"},
		{name: "missing", err: "no such file"},
		{name: "directory", dir: true, err: "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			switch {
			case tc.dir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case tc.mode != 0:
				if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			key, err := Load(path)
			if tc.err == "" {
				if err != nil || string(key) != tc.want {
					t.Fatalf("Load = %q, %v; want %q", key, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load = %q, want an error containing %q", key, tc.err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.err) || !strings.Contains(msg, path) {
				t.Errorf("error %q: want %q and the path", msg, tc.err)
			}
			if strings.Contains(msg, "k3y") || strings.Contains(msg, "0123456789abcde") {
				t.Errorf("error %q shows the key", msg)
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, path string)
	}{
		{"generates a 0600 file of 64 hex characters", func(t *testing.T, path string) {
			key, created, err := LoadOrCreate(path)
			if err != nil || !created {
				t.Fatalf("LoadOrCreate: created %v, %v", created, err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 65 || b[64] != '\n' || !bytes.Equal(b[:64], key) {
				t.Fatalf("file holds %d bytes, key %d bytes", len(b), len(key))
			}
			if raw, err := hex.DecodeString(string(key)); err != nil || len(raw) != 32 {
				t.Errorf("key is not 32 bytes in hex: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("mode %04o, want 0600", perm)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		}},
		{"creates the state directory", func(t *testing.T, path string) {
			deep := filepath.Join(filepath.Dir(path), "a", "b", FileName)
			if _, created, err := LoadOrCreate(deep); err != nil || !created {
				t.Fatalf("LoadOrCreate: created %v, %v", created, err)
			}
		}},
		{"reuses the key across restarts", func(t *testing.T, path string) {
			k1, _, err := LoadOrCreate(path)
			if err != nil {
				t.Fatal(err)
			}
			k2, created, err := LoadOrCreate(path)
			if err != nil || created || !bytes.Equal(k1, k2) {
				t.Errorf("second start: created %v, same key %v, %v", created, bytes.Equal(k1, k2), err)
			}
		}},
		{"keeps a file written by the operator", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("an operator's key of some length\n"), 0o600)
			key, created, err := LoadOrCreate(path)
			if err != nil || created || string(key) != "an operator's key of some length" {
				t.Errorf("LoadOrCreate = %q, created %v, %v", key, created, err)
			}
		}},
		{"refuses a 0644 file and does not replace it", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("an operator's key of some length\n"), 0o600)
			os.Chmod(path, 0o644)
			if _, _, err := LoadOrCreate(path); !errors.Is(err, keyfile.ErrLoose) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadOrCreate: %v, want keyfile.ErrLoose naming the file", err)
			}
			if b, _ := os.ReadFile(path); string(b) != "an operator's key of some length\n" {
				t.Error("file changed")
			}
		}},
		{"refuses a short file and does not replace it", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("short\n"), 0o600)
			if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "shorter") {
				t.Errorf("LoadOrCreate: %v, want a refusal", err)
			}
		}},
		{"two concurrent generators end with one key", func(t *testing.T, path string) {
			for round := range 20 {
				p := filepath.Join(filepath.Dir(path), "round", string(rune('a'+round)), FileName)
				const n = 8
				keys := make([][]byte, n)
				created := make([]bool, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						keys[i], created[i], errs[i] = LoadOrCreate(p)
					})
				}
				close(start)
				wg.Wait()
				writers := 0
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("round %d, generator %d: %v", round, i, errs[i])
					}
					if !bytes.Equal(keys[i], keys[0]) {
						t.Fatalf("round %d: generators got different keys", round)
					}
					if created[i] {
						writers++
					}
				}
				if writers != 1 {
					t.Fatalf("round %d: %d generators report writing the file, want 1", round, writers)
				}
				if b, _ := os.ReadFile(p); string(bytes.TrimSpace(b)) != string(keys[0]) {
					t.Fatalf("round %d: the file holds another key", round)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, filepath.Join(t.TempDir(), FileName))
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := []byte("0123456789abcdef0123456789abcdef")
	b := []byte("0123456789abcdef0123456789abcdeF")
	fa := Fingerprint(a)
	if len(fa) != 32 || fa != Fingerprint(bytes.Clone(a)) {
		t.Errorf("Fingerprint = %q: want 32 hex characters, stable", fa)
	}
	if fa == Fingerprint(b) {
		t.Error("two keys, one fingerprint")
	}
	if strings.Contains(fa, string(a)) || strings.Contains(fa, hex.EncodeToString(a)) {
		t.Error("the fingerprint shows the key")
	}
}
