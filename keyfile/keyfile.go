// Package keyfile keeps secrets in files only their owner can read: it
// creates a file once, atomically and with mode 0600, and refuses to read
// one that others can.
package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrLoose is returned for a secret file that its group or others can
// read or write.
var ErrLoose = errors.New("readable or writable by group or others (want mode 0600)")

// Read returns the contents of the secret file path, without surrounding
// white space. It fails for a file others can access and for an empty
// one. Errors name the file, never its contents.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError: "open <path>: <reason>"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s: %w", path, ErrLoose)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	s := bytes.TrimSpace(b.Bytes())
	if len(s) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// ReadOrCreate returns the secret in path (see Read), first creating the
// file with what generate returns when it does not exist. The parent
// directory is created with mode 0700 if needed. Creation is atomic: the
// secret is written to a temporary file that is then linked to path,
// which fails if path exists; so of processes racing to create it, one
// wins and all read its secret. created reports whether this call made
// the file.
func ReadOrCreate(path string, generate func() ([]byte, error)) (secret []byte, created bool, err error) {
	b, err := Read(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return b, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	s, err := generate()
	if err != nil {
		return nil, false, fmt.Errorf("generate %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if _, err := tmp.Write(append(s, '\n')); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	switch err := os.Link(tmp.Name(), path); {
	case errors.Is(err, fs.ErrExist):
		// Another process was first: its secret is the one.
		b, err := Read(path)
		return b, false, err
	case err != nil:
		return nil, false, err
	}
	syncDir(dir)
	b, err = Read(path)
	return b, err == nil, err
}

// syncDir makes a new directory entry durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
