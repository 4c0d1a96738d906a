package queue

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/hashkey"
)

func TestCheckHashKey(t *testing.T) {
	keyA := []byte("0123456789abcdef0123456789abcdef")
	keyB := []byte("fedcba9876543210fedcba9876543210")
	legacy := []byte("32 raw bytes the old daemon made")
	for _, tc := range []struct {
		name string
		// before runs on the bucket before the checks.
		before func(t *testing.T, kv jetstream.KeyValue)
		// keys are the daemons starting, in order.
		keys [][]byte
		// mismatch is the index of the first daemon refused, or -1.
		mismatch    int
		wantRemoved []bool
	}{
		{name: "first daemon records its fingerprint", keys: [][]byte{keyA}, mismatch: -1, wantRemoved: []bool{false}},
		{name: "same key on every daemon and restart", keys: [][]byte{keyA, keyA, keyA}, mismatch: -1, wantRemoved: []bool{false, false, false}},
		{name: "another key is refused", keys: [][]byte{keyA, keyB}, mismatch: 1, wantRemoved: []bool{false, false}},
		{name: "the first daemon's key wins", keys: [][]byte{keyB, keyA}, mismatch: 1, wantRemoved: []bool{false, false}},
		{
			name: "legacy key in NATS is removed once",
			before: func(t *testing.T, kv jetstream.KeyValue) {
				if _, err := kv.Create(context.Background(), legacyHashKeyName, legacy); err != nil {
					t.Fatal(err)
				}
			},
			keys: [][]byte{keyA, keyA}, mismatch: -1, wantRemoved: []bool{true, false},
		},
		{
			name: "legacy key removed even when the key differs",
			before: func(t *testing.T, kv jetstream.KeyValue) {
				ctx := context.Background()
				kv.Create(ctx, keyCheckName, []byte(hashkey.Fingerprint(keyB)))
				kv.Create(ctx, legacyHashKeyName, legacy)
			},
			keys: [][]byte{keyA}, mismatch: 0, wantRemoved: []bool{true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := embedded(t)
			ctx := context.Background()
			// The bucket as an earlier version created it.
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketConfig, History: 1, Storage: jetstream.FileStorage})
			if err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before(t, kv)
			}
			for i, key := range tc.keys {
				removed, err := CheckHashKey(ctx, js, hashkey.Fingerprint(key), 1)
				switch {
				case i == tc.mismatch && !errors.Is(err, ErrHashKeyMismatch):
					t.Errorf("daemon %d: %v, want ErrHashKeyMismatch", i, err)
				case i != tc.mismatch && err != nil:
					t.Errorf("daemon %d: %v", i, err)
				}
				if removed != tc.wantRemoved[i] {
					t.Errorf("daemon %d: legacy key removed %v, want %v", i, removed, tc.wantRemoved[i])
				}
			}
			// Nothing in the bucket's stream, history included, holds a
			// key: the legacy key is gone, the fingerprint stays.
			stream, err := js.Stream(ctx, "KV_"+BucketConfig)
			if err != nil {
				t.Fatal(err)
			}
			info, err := stream.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
				m, err := stream.GetMsg(ctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range [][]byte{legacy, keyA, keyB} {
					if bytes.Contains(m.Data, k) {
						t.Errorf("message %d on %s holds a key", seq, m.Subject)
					}
				}
			}
			if _, err := kv.Get(ctx, legacyHashKeyName); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("legacy key: %v, want not found", err)
			}
			if e, err := kv.Get(ctx, keyCheckName); err != nil || len(e.Value()) != 32 {
				t.Errorf("fingerprint: %v", err)
			}
		})
	}
}
