// Package hashkey provides the policy hash key: the secret that keys the
// hashes of numbers in the shared policy store and from which the delivery
// journal's key is derived. It lives in a file readable only by its owner
// (mode 0600, see package keyfile), never in NATS, where any client could
// read it and reverse the hashes of numbers by trying them all. Every
// daemon of a cluster needs the same file; Fingerprint lets them check
// that they have it without revealing the key.
package hashkey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/simgate/simgate/keyfile"
)

// FileName is the key file's name in the state directory when no file is
// configured.
const FileName = "policy_hash_key"

// MinLen is the least length of a key, in bytes.
const MinLen = 16

// Load returns the key in the file at path: its text with surrounding
// white space trimmed, at least MinLen bytes. It refuses a file that group
// or others have any access to (keyfile.ErrLoose). Errors name the file,
// never its contents.
func Load(path string) ([]byte, error) {
	key, err := keyfile.Read(path)
	return check(path, key, err)
}

// LoadOrCreate returns the key in the file at path as Load does, first
// creating the file with a new random key when it does not exist: 32
// random bytes as 64 hexadecimal characters and a newline, mode 0600 (the
// directory is created when missing). created reports whether this call
// wrote the file. Several processes may call it at once on one path: all
// of them end with the same key, since keyfile.ReadOrCreate gives the file
// its name only once it is complete, and never replaces one.
func LoadOrCreate(path string) (key []byte, created bool, err error) {
	key, created, err = keyfile.ReadOrCreate(path, generate)
	key, err = check(path, key, err)
	return key, created && err == nil, err
}

// generate returns a new key: 32 random bytes in hexadecimal.
func generate() ([]byte, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	key := make([]byte, hex.EncodedLen(len(raw)))
	hex.Encode(key, raw)
	clear(raw)
	return key, nil
}

// check returns key read from path, or the error of reading it.
func check(path string, key []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("policy hash key: %w", err)
	}
	if len(key) < MinLen {
		clear(key)
		return nil, fmt.Errorf("policy hash key file %s: shorter than %d bytes", path, MinLen)
	}
	return key, nil
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
