package modem

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/modemsim"
)

func openSim(t *testing.T, scfg modemsim.Config, onReport func(Report, error)) (*modemsim.Modem, *Modem) {
	t.Helper()
	s, err := modemsim.Start(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := Open(context.Background(), Config{Name: "m1", Device: s.Path(), CommandTimeout: 2 * time.Second, OnReport: onReport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return s, m
}

// A modem in phase 2+ (AT+CSMS=1) wants AT+CNMA for every routed report,
// else it holds the next one and finally stops routing.
func TestReportsAcknowledged(t *testing.T) {
	got := make(chan Report, 8)
	s, m := openSim(t, modemsim.Config{AckTimeout: 300 * time.Millisecond}, func(r Report, err error) {
		if err != nil {
			t.Error(err)
		}
		got <- r
	})
	// As if the modem refused phase 2: switch it to 2+ behind the
	// driver's back and tell the driver, as enableReports would.
	if _, err := m.at.Command("+CSMS=1"); err != nil {
		t.Fatal(err)
	}
	m.cnma = true
	for i := range 3 {
		if _, err := m.Send(context.Background(), "+4526227921", "x"); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("report %d did not come: acknowledgement missing?", i)
		}
	}
	if n := s.MissedAcks(); n != 0 {
		t.Errorf("%d acknowledgements missed", n)
	}
}

// A modem that dropped the report setting gets it back at the next health
// check.
func TestHealthRestoresReportSetting(t *testing.T) {
	_, m := openSim(t, modemsim.Config{}, func(Report, error) {})
	if _, err := m.at.Command("+CNMI=2,1,0,0,0"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Health(); err != nil {
		t.Fatal(err)
	}
	lines, err := m.at.Command("+CNMI?")
	if err != nil || len(lines) == 0 || !strings.HasSuffix(strings.Join(lines, ""), "2,1,0,1,0") {
		t.Fatalf("AT+CNMI? = %q, %v; want routing restored", lines, err)
	}
}
