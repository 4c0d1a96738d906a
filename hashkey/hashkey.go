// Package hashkey provides the policy hash key: the secret that keys the
// hashes of numbers in the shared policy store and from which the delivery
// journal's key is derived. It lives in a file readable only by its owner
// (mode 0600), never in NATS, where any client could read it and reverse
// the hashes of numbers by trying them all. Every daemon of a cluster needs
// the same file; Fingerprint lets them check that they have it without
// revealing the key.
package hashkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FileName is the key file's name in the state directory when no file is
// configured.
const FileName = "policy_hash_key"

// MinLen is the least length of a key, in bytes.
const MinLen = 16

// Load returns the key in the file at path: its text with surrounding
// white space trimmed, at least MinLen bytes. It refuses a file that group
// or others have any access to. Errors name the file, never its contents.
func Load(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		// *PathError: "open <path>: <reason>".
		return nil, fmt.Errorf("policy hash key: %w", err)
	}
	defer f.Close()
	// The mode of the file read, not of whatever the path names a moment
	// later.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("policy hash key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("policy hash key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("policy hash key file %s: mode %04o gives group or others access; want 0600 (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("policy hash key file %s: %w", path, err)
	}
	// bytes.TrimSpace, as for any configured file before; a copy, so that
	// the buffer read can be cleared.
	key := bytes.Clone(bytes.TrimSpace(b))
	clear(b)
	if len(key) < MinLen {
		return nil, fmt.Errorf("policy hash key file %s: shorter than %d bytes", path, MinLen)
	}
	return key, nil
}

// LoadOrCreate returns the key in the file at path as Load does, first
// creating the file with a new random key when it does not exist: 32
// random bytes as 64 hexadecimal characters and a newline, mode 0600. The
// directory is created (mode 0750) when missing. created reports whether
// this call wrote the file. Several processes may call it at once on one
// path: all of them end with the same key.
func LoadOrCreate(path string) (key []byte, created bool, err error) {
	key, err = Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	err = create(path)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, fs.ErrExist):
		// Another process created it first: use its key.
	default:
		return nil, false, fmt.Errorf("policy hash key file %s: create: %w", path, err)
	}
	key, err = Load(path)
	return key, created, err
}

// create writes a new key to path unless path exists (an error matching
// fs.ErrExist).
//
// The key is written to a temporary file in the same directory, created
// with O_EXCL and mode 0600, and synced; only then is it given its name,
// with link(2), which fails when the name exists instead of replacing it.
// So a reader never sees a partly written key (as it could if the final
// name were created with O_EXCL and then written), and of two processes
// racing, exactly one names its file and the other reads the winner's key
// (rename(2) would let the second silently replace the key the first may
// already be using). The temporary name is removed in every case; a crash
// may leave one behind, holding a key nobody uses.
func create(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // O_EXCL, 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	raw := make([]byte, 32)
	rand.Read(raw)
	text := make([]byte, hex.EncodedLen(len(raw))+1)
	hex.Encode(text, raw)
	text[len(text)-1] = '\n'
	_, err = tmp.Write(text)
	clear(raw)
	clear(text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	// The new name survives a crash once its directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkLabel is the message whose keyed hash is the fingerprint.
const checkLabel = "simgate policy key check"

// Fingerprint returns a value that tells keys apart without revealing
// them: hex of the first 16 bytes of HMAC-SHA256(key, "simgate policy key
// check"). It may be stored where any NATS client can read it: it helps
// no more to guess the key than the keyed hashes of numbers in the policy
// store do, and a key of 32 random bytes cannot be guessed.
func Fingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(checkLabel))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
