package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestReadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key")
	n := 0
	gen := func() ([]byte, error) { n++; return fmt.Appendf(nil, "secret-%d", n), nil }

	s, created, err := ReadOrCreate(path, gen)
	if err != nil || !created || string(s) != "secret-1" {
		t.Fatalf("first: %q %v %v", s, created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode())
	}
	s, created, err = ReadOrCreate(path, gen)
	if err != nil || created || string(s) != "secret-1" {
		t.Fatalf("again: %q %v %v, want the first secret kept", s, created, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(ents))
	}
}

func TestReadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	var wg sync.WaitGroup
	secrets := make([][]byte, 16)
	var created [16]bool
	for i := range secrets {
		wg.Go(func() {
			var err error
			secrets[i], created[i], err = ReadOrCreate(path, func() ([]byte, error) { return fmt.Appendf(nil, "secret-%d", i), nil })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	makers := 0
	for i, s := range secrets {
		if !bytes.Equal(s, secrets[0]) {
			t.Errorf("racer %d got %q, racer 0 %q", i, s, secrets[0])
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Errorf("%d racers created the file, want 1", makers)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
		err           error
	}{
		{"ok", "  s3cret\n", 0o600, "s3cret", nil},
		{"owner read only", "s3cret", 0o400, "s3cret", nil},
		{"group readable", "s3cret", 0o640, "", ErrLoose},
		{"world readable", "s3cret", 0o644, "", ErrLoose},
		{"group writable", "s3cret", 0o620, "", ErrLoose},
		{"empty", " \n", 0o600, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(write(tc.name, tc.content, tc.mode))
			switch {
			case tc.want != "":
				if err != nil || string(got) != tc.want {
					t.Errorf("Read = %q %v, want %q", got, err, tc.want)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Errorf("Read = %q %v, want %v", got, err, tc.err)
				}
			default:
				if err == nil {
					t.Errorf("Read = %q, want an error", got)
				}
			}
			if err != nil && bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
