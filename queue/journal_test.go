package queue

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/simgate/simgate/delivery"
)

func TestDeliveryJournal(t *testing.T) {
	js := embedded(t)
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	j, err := OpenDeliveryJournal(ctx, js, "host.a", key, time.Hour, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now().UTC().Truncate(time.Millisecond)
	m := delivery.Message{ID: "job-1", Modem: "gsm0", To: "+4526227921", Masked: "+45******21", Refs: []int{254, 255},
		Accepted: sent.Add(-time.Second), Sent: sent}
	for _, x := range []delivery.Message{m, {ID: "job-2", Modem: "gsm1", To: "+4540404040", Refs: []int{3}}} {
		if err := j.Put(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	// Another daemon's entries and another cluster key.
	other, _ := OpenDeliveryJournal(ctx, js, "host-b", key, time.Hour, 1, 0)
	other.Put(ctx, delivery.Message{ID: "job-3", Modem: "gsm0", To: "+4526227921", Refs: []int{1}})
	stranger, _ := OpenDeliveryJournal(ctx, js, "host.a", bytes.Repeat([]byte{8}, 32), time.Hour, 1, 0)
	stranger.Put(ctx, delivery.Message{ID: "job-4", Modem: "gsm0", To: "+4526227921", Refs: []int{1}})

	// No number in clear in the bucket.
	kv, _ := js.KeyValue(ctx, BucketDelivery)
	e, err := kv.Get(ctx, "host_a.job-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte("26227921")) {
		t.Errorf("entry holds the number: %s", e.Value())
	}

	msgs, skipped, err := j.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 || len(msgs) != 2 {
		t.Fatalf("loaded %d, skipped %d; want 2 and 1 (job-4, another key)", len(msgs), skipped)
	}
	i := slices.IndexFunc(msgs, func(x delivery.Message) bool { return x.ID == "job-1" })
	if i < 0 {
		t.Fatalf("job-1 not loaded: %+v", msgs)
	}
	got := msgs[i]
	if got.To != m.To || got.Modem != m.Modem || got.Masked != m.Masked || !slices.Equal(got.Refs, m.Refs) ||
		!got.Sent.Equal(m.Sent) || !got.Accepted.Equal(m.Accepted) {
		t.Errorf("loaded %+v, want %+v", got, m)
	}
	if err := j.Delete(ctx, "job-1"); err != nil {
		t.Fatal(err)
	}
	if err := j.Delete(ctx, "job-1"); err != nil {
		t.Errorf("second delete: %v", err)
	}
	msgs, _, _ = j.Load(ctx)
	if len(msgs) != 1 || msgs[0].ID != "job-2" {
		t.Errorf("after delete: %+v", msgs)
	}
}
