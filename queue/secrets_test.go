package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/simgate/simgate/policy"
)

// TestSecretsStore: a secret is kept once per id, read back, deleted on
// demand, and deleted by the server at its ttl with nobody asking.
func TestSecretsStore(t *testing.T) {
	js := embedded(t)
	ctx := context.Background()
	s, err := OpenSecrets(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(ctx, js, 1); err != nil {
		t.Fatalf("bind again: %v", err)
	}
	if err := s.Create(ctx, "a", []byte("A"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a", []byte("B"), time.Hour); !errors.Is(err, policy.ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	if v, err := s.Get(ctx, "a"); err != nil || string(v) != "A" {
		t.Errorf("get: %q %v", v, err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "never"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("get of a key never kept: %v, want ErrNotFound", err)
	}

	// The ttl: the server removes the key by itself.
	if err := s.Create(ctx, "b", []byte("B"), time.Second); err != nil {
		t.Fatal(err)
	}
	watch, err := s.kv.Watch(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	timeout := time.After(10 * time.Second)
	for gone := false; !gone; {
		select {
		case e := <-watch.Updates():
			gone = e != nil && e.Operation() != 0 // a delete or purge: the ttl's marker
		case <-timeout:
			t.Fatal("the key outlived its ttl by 9 s")
		}
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, policy.ErrNotFound) {
		t.Errorf("get after the ttl: %v, want ErrNotFound", err)
	}
}
