package queue

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/delivery"
)

// BucketDelivery keeps the sent messages that wait for a status report
// (DeliveryJournal).
const BucketDelivery = "simgate_delivery"

// DeliveryJournal keeps the messages a daemon's delivery tracker follows in
// a JetStream key-value bucket, so that after a restart the daemon follows
// them on: a report its modem stored meanwhile, or one still to come,
// reaches the job. Entries are keyed by node and job id; the recipient is
// stored encrypted (AES-256-GCM, with a key derived from the cluster's
// policy hash key), so the bucket holds no number in clear.
type DeliveryJournal struct {
	kv   jetstream.KeyValue
	aead cipher.AEAD
	node string
}

// journalEntry is a journalled delivery.Message.
type journalEntry struct {
	ID       string    `json:"id"`
	Modem    string    `json:"modem"`
	To       []byte    `json:"to"` // nonce and sealed E.164
	Masked   string    `json:"masked"`
	Seq      uint64    `json:"seq,omitempty"`
	Refs     []int     `json:"refs"`
	Accepted time.Time `json:"accepted"`
	Sent     time.Time `json:"sent"`
}

var keyUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// OpenDeliveryJournal creates or binds the bucket for the daemon called
// node (node names must differ between daemons), of at most maxBytes
// (unbounded when zero). Entries expire ttl after they were written; key
// is the cluster's policy hash key.
func OpenDeliveryJournal(ctx context.Context, js jetstream.JetStream, node string, key []byte, ttl time.Duration, replicas int, maxBytes int64) (*DeliveryJournal, error) {
	if len(key) == 0 {
		return nil, errors.New("delivery journal: no key")
	}
	sum := sha256.Sum256(append([]byte("simgate delivery journal\x00"), key...))
	block, err := aes.NewCipher(sum[:])
	if err != nil {
		return nil, fmt.Errorf("delivery journal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("delivery journal: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       BucketDelivery,
		Description:  "simgate: sent messages waiting for a status report (recipients encrypted)",
		History:      1,
		TTL:          ttl,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		MaxBytes:     limit(maxBytes),
		MaxValueSize: 4 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketDelivery, err)
	}
	n := keyUnsafe.ReplaceAllString(node, "_")
	if n == "" {
		n = "_"
	}
	return &DeliveryJournal{kv: kv, aead: aead, node: n}, nil
}

func (j *DeliveryJournal) key(id string) string { return j.node + "." + id }

// Put records m.
func (j *DeliveryJournal) Put(ctx context.Context, m delivery.Message) error {
	nonce := make([]byte, j.aead.NonceSize())
	rand.Read(nonce)
	e := journalEntry{ID: m.ID, Modem: m.Modem, To: j.aead.Seal(nonce, nonce, []byte(m.To), []byte(m.ID)),
		Masked: m.Masked, Seq: m.Seq, Refs: m.Refs, Accepted: m.Accepted, Sent: m.Sent}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.kv.Put(ctx, j.key(m.ID), b); err != nil {
		return fmt.Errorf("journal %s: %w", m.ID, err)
	}
	return nil
}

// Delete forgets the message of job id.
func (j *DeliveryJournal) Delete(ctx context.Context, id string) error {
	if err := j.kv.Delete(ctx, j.key(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("journal %s: %w", id, err)
	}
	return nil
}

// Load returns this node's journalled messages. An entry that cannot be
// read (another cluster key, a damaged value) is skipped and counted in
// skipped.
func (j *DeliveryJournal) Load(ctx context.Context) (msgs []delivery.Message, skipped int, err error) {
	lister, err := j.kv.ListKeysFiltered(ctx, j.node+".>")
	if err != nil {
		return nil, 0, fmt.Errorf("journal: %w", err)
	}
	defer lister.Stop()
	seen := map[string]bool{}
	for k := range lister.Keys() {
		if seen[k] {
			continue // a listing may repeat a key
		}
		seen[k] = true
		e, err := j.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return msgs, skipped, fmt.Errorf("journal: %w", err)
		}
		m, ok := j.decode(e.Value())
		if !ok {
			skipped++
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, skipped, nil
}

func (j *DeliveryJournal) decode(b []byte) (delivery.Message, bool) {
	var e journalEntry
	if err := json.Unmarshal(b, &e); err != nil || len(e.To) < j.aead.NonceSize() {
		return delivery.Message{}, false
	}
	ns := j.aead.NonceSize()
	to, err := j.aead.Open(nil, e.To[:ns], e.To[ns:], []byte(e.ID))
	if err != nil {
		return delivery.Message{}, false
	}
	return delivery.Message{ID: e.ID, Modem: e.Modem, To: string(to), Masked: e.Masked, Seq: e.Seq, Refs: e.Refs,
		Accepted: e.Accepted, Sent: e.Sent}, true
}
