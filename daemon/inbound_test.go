package daemon_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

// TestReceivedMessage: a two-part UCS-2 message the modem receives arrives
// once on sms.received.<modem>, its sender masked, and is gone from the
// modem's storage; a message stored before the daemon started comes too.
func TestReceivedMessage(t *testing.T) {
	s := startSim(t, "m1", 0)
	if _, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), s)
	h := start(t, cfg)
	js := h.daemonJS()
	ctx := t.Context()
	stream, err := js.Stream(ctx, otp.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() (otp.Received, string) {
		t.Helper()
		m, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
		if err != nil {
			t.Fatalf("no received message: %v", err)
		}
		var r otp.Received
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		return r, m.Subject()
	}
	if r, subject := next(); r.Text != "STOP" || subject != "sms.received.m1" || r.From != "+45******21" || r.Parts != 1 {
		t.Errorf("stored before start: %+v on %s", r, subject)
	}
	long := strings.Repeat("Ваш баланс: 12,34 EUR. ", 4)
	if _, err := s.Receive(modemsim.Incoming{From: "+4526227921", Text: long, UCS2: true}); err != nil {
		t.Fatal(err)
	}
	r, _ := next()
	if r.Text != long || r.Parts != 2 || r.Encoding != "ucs2" || r.Missing != 0 || r.Sent.IsZero() || r.Modem != "m1" {
		t.Errorf("two parts: %+v", r)
	}
	if m, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
		t.Errorf("published twice: %s", m.Data())
	}
	if n := s.Stored("SM"); n != 0 {
		t.Errorf("%d messages left on the modem", n)
	}
	if strings.Contains(h.logs.String(), "STOP") || strings.Contains(h.logs.String(), "12,34") {
		t.Error("a received text is in the log")
	}
	waitMetrics(t, h.d.MetricsAddr(), `simgate_sms_received_total{modem="m1"} 2`,
		`simgate_modem_storage_used{memory="SM",modem="m1"} 0`, `simgate_modem_storage_size{memory="SM",modem="m1"} 30`)
}
