package natsauth

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/simgate/simgate/keyfile"
)

// Role is one of simgate's two roles on NATS: the daemon, which owns the
// streams, buckets and services, and publishers (auth services), which
// queue jobs, call otp.request and follow events.
type Role string

// The roles.
const (
	RoleDaemon    Role = "daemon"
	RolePublisher Role = "publisher"
)

// SeedDir is the directory, under the daemon's state directory, that
// holds the embedded server's role credentials.
const SeedDir = "nats"

// SeedFile returns the path of role's user nkey seed under stateDir:
// <stateDir>/nats/<role>.nk. A client on the same host authenticates to
// the embedded server with it (nats --nkey <file>; simgate send finds the
// publisher's by itself).
func SeedFile(stateDir string, role Role) string {
	return filepath.Join(stateDir, SeedDir, string(role)+".nk")
}

// RoleKey returns the public key (U...) of the user nkey seed in path,
// first creating the seed file (mode 0600, in a 0700 directory) when it
// does not exist. A seed file that others can read is refused.
func RoleKey(path string) (string, error) {
	seed, _, err := keyfile.ReadOrCreate(path, func() ([]byte, error) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		defer kp.Wipe()
		seed, err := kp.Seed()
		// Wipe clears the seed it returned: keep a copy.
		return bytes.Clone(seed), err
	})
	if err != nil {
		return "", fmt.Errorf("nats role seed: %w", err)
	}
	defer clear(seed)
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return "", fmt.Errorf("nats role seed %s: not a user nkey seed", path)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nats role seed %s: not a user nkey seed", path)
	}
	return pub, nil
}
