package modem

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem/modemsim"
)

// openReceiving opens a modem on simulator s whose messages go to the
// returned channel; keep decides whether each is kept.
func openReceiving(t *testing.T, s *modemsim.Modem, keep func(Incoming) error) (*Modem, chan Incoming) {
	t.Helper()
	got := make(chan Incoming, 512)
	m, err := Open(context.Background(), Config{Name: "m1", Device: s.Path(), CommandTimeout: 2 * time.Second,
		OnReport: func(Report, error) {},
		OnMessage: func(in Incoming) error {
			var err error
			if keep != nil {
				err = keep(in) // decided before the test sees it
			}
			got <- in
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, got
}

func next(t *testing.T, got chan Incoming) Incoming {
	t.Helper()
	select {
	case in := <-got:
		return in
	case <-time.After(5 * time.Second):
		t.Fatal("no incoming message")
		return Incoming{}
	}
}

func text(t *testing.T, parts ...Incoming) string {
	t.Helper()
	var tps []*tpdu.TPDU
	for _, p := range parts {
		tps = append(tps, p.TPDU)
	}
	// Parts may come in any order (indications are handled one at a
	// time, not in order): put them in theirs, as sms.Collector does.
	slices.SortFunc(tps, func(a, b *tpdu.TPDU) int {
		_, i, _, _ := a.ConcatInfo()
		_, j, _, _ := b.ConcatInfo()
		return i - j
	})
	msg, err := sms.Decode(tps)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

// TestIncoming: messages stored before the modem was opened and those
// that come after are handed on and deleted once kept; one not kept stays
// for the next sweep; a two-part UCS-2 message comes as its two parts.
func TestIncoming(t *testing.T) {
	s, err := modemsim.Start(modemsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Receive(modemsim.Incoming{From: "+4520000000", Text: "while nobody listened"}); err != nil {
		t.Fatal(err)
	}
	refuse := make(chan bool, 1)
	m, got := openReceiving(t, s, func(Incoming) error {
		select {
		case <-refuse:
			return errors.New("the stream is down")
		default:
			return nil
		}
	})
	if in := next(t, got); text(t, in) != "while nobody listened" || in.Memory != "SM" || in.TPDU.OA.Number() != "+4520000000" {
		t.Errorf("swept %q %+v", text(t, in), in)
	}
	long := strings.Repeat("Ваш баланс: 12,34 EUR. ", 4)
	if _, err := s.Receive(modemsim.Incoming{From: "Telco", Text: long, UCS2: true}); err != nil {
		t.Fatal(err)
	}
	a, b := next(t, got), next(t, got)
	if text(t, a, b) != long || a.TPDU.OA.Number() != "Telco" {
		t.Errorf("two parts: %q from %s", text(t, a, b), a.TPDU.OA.Number())
	}
	refuse <- true
	s.Receive(modemsim.Incoming{From: "+4520000000", Text: "STOP"})
	next(t, got)
	if n := s.Stored("SM"); n != 1 {
		t.Errorf("%d stored after a message not kept, want 1", n)
	}
	m.SweepIncoming()
	if in := next(t, got); text(t, in) != "STOP" {
		t.Errorf("swept again: %q", text(t, in))
	}
	if n := s.Stored("SM"); n != 0 {
		t.Errorf("%d stored, want 0", n)
	}
}

// TestStorageNeverFills: 200 incoming messages, 30 slots: each is read and
// deleted as it comes.
func TestStorageNeverFills(t *testing.T) {
	s, err := modemsim.Start(modemsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, got := openReceiving(t, s, nil)
	for i := range 200 {
		ds, err := s.Receive(modemsim.Incoming{From: "+4520000000", Text: fmt.Sprint("message ", i)})
		if err != nil || ds[0].Route != modemsim.RouteCMTI {
			t.Fatalf("message %d: %+v %v", i, ds, err)
		}
		if in := next(t, got); text(t, in) != fmt.Sprint("message ", i) {
			t.Fatalf("message %d read as %q", i, text(t, in))
		}
	}
	if n := s.Stored("SM"); n > 1 {
		t.Errorf("%d left stored", n)
	}
}

// TestRoutedAcknowledgedOnceKept: a message routed without storing (+CMT,
// after AT+CSMS=1) is acknowledged only once kept; one that could not be
// kept is refused (AT+CNMA=2, RP-ERROR), for the network to send it again,
// and acknowledged when it comes again and is kept.
func TestRoutedAcknowledgedOnceKept(t *testing.T) {
	s, err := modemsim.Start(modemsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var down atomic.Bool
	down.Store(true)
	m, got := openReceiving(t, s, func(Incoming) error {
		if down.Load() {
			return errors.New("the stream is away")
		}
		return nil
	})
	// As if the modem refused phase 2 (see TestReportsAcknowledged).
	m.cnma = true
	if _, err := m.at.Command("+CSMS=1"); err != nil {
		t.Fatal(err)
	}
	acks := func(want ...int) {
		t.Helper()
		// The acknowledgement follows OnMessage's return: nothing to
		// await but the simulator's record.
		for deadline := time.Now().Add(5 * time.Second); !slices.Equal(s.CMTAcks(), want); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("AT+CNMA <n>s %v, want %v", s.CMTAcks(), want)
			}
		}
	}
	for i, want := range [][]int{{2}, {2, 0}} {
		ds, err := s.Receive(modemsim.Incoming{From: "+4520000000", Text: "STOP", Routed: true})
		if err != nil || ds[0].Route != modemsim.RouteCMT {
			t.Fatalf("delivery %d: %+v %v", i+1, ds, err)
		}
		if in := next(t, got); text(t, in) != "STOP" || in.Index != 0 {
			t.Fatalf("delivery %d read as %q at %d", i+1, text(t, in), in.Index)
		}
		acks(want...)
		down.Store(false)
	}
}
