package modem_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

func TestParseRegistration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want modem.Registration
		ok   bool
	}{
		{"0,1", modem.RegHome, true},
		{" 2,5,\"00C3\",\"0000D9C1\",7", modem.RegRoaming, true},
		{"1,2", modem.RegSearching, true},
		{"0,3", modem.RegDenied, true},
		{"0,7", modem.RegSMSOnlyRoam, true},
		{"1", 0, false},                   // unsolicited <stat>
		{`1,"00C3","0000D9C1"`, 0, false}, // unsolicited n=2 form
		{"x,1", 0, false},
		{"0,99", 0, false},
		{"", 0, false},
	} {
		got, ok := modem.ParseRegistration(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseCSQ(t *testing.T) {
	for _, tc := range []struct {
		in    string
		dbm   int
		known bool
	}{
		{"0,99", -113, true},
		{"20,99", -73, true},
		{"31,0", -51, true},
		{"99,99", 0, false},
		{"", 0, false},
		{"-1,0", 0, false},
	} {
		dbm, known := modem.ParseCSQ(tc.in)
		if dbm != tc.dbm || known != tc.known {
			t.Errorf("%q: %d %v", tc.in, dbm, known)
		}
	}
}

func TestParseOperator(t *testing.T) {
	for in, want := range map[string]string{
		`0,0,"Telenor DK",7`: "Telenor DK",
		`0,2,"23802"`:        "23802",
		`0,0,"A, B",2`:       "A, B",
		`0`:                  "",
		`0,0,noquote`:        "",
		``:                   "",
	} {
		if got := modem.ParseOperator(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func FuzzParseRegistration(f *testing.F) {
	for _, s := range []string{"0,1", "2,5,\"00C3\",\"0000D9C1\",7", "1", ",", "0,99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := modem.ParseRegistration(s)
		if ok && (r < 0 || r > 11) {
			t.Errorf("%q: stat %d out of range", s, r)
		}
		_ = modem.ParseOperator(s)
		dbm, known := modem.ParseCSQ(s)
		if known && (dbm < -113 || dbm > -51) {
			t.Errorf("%q: %d dBm", s, dbm)
		}
	})
}

func TestHealth(t *testing.T) {
	s := startSim(t, modemsim.Config{Signal: 20})
	m := open(t, s, nil)
	h, err := m.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.SIM != "READY" || h.Registration != modem.RegHome || !h.SignalKnown || h.SignalDBm != -73 || h.Operator == "" || h.Ready() != nil {
		t.Errorf("healthy modem: %+v %v", h, h.Ready())
	}
	s.SetRegistration(int(modem.RegSearching))
	s.SetSignal(99)
	h, err = m.Health()
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(h.Ready(), modem.ErrNotRegistered) || h.SignalKnown {
		t.Errorf("searching modem: %+v %v", h, h.Ready())
	}
	s.SetRegistration(int(modem.RegRoaming))
	if h, _ := m.Health(); h.Ready() != nil {
		t.Errorf("roaming modem not ready: %+v", h)
	}
	// A hung modem is an error, not an unhealthy answer.
	s.SetHung(true)
	if _, err := m.Health(); err == nil {
		t.Error("hung modem answered")
	}
}

func TestParseCPMS(t *testing.T) {
	for in, want := range map[string][]modem.Memory{
		` "SR",1,30,"SM",0,30,"SM",0,30`:     {{"SR", 1, 30}, {"SM", 0, 30}},
		` "SM",29,30,"ME",0,255,"MT",29,285`: {{"SM", 29, 30}, {"ME", 0, 255}, {"MT", 29, 285}},
		` "SM",x,30`:                         nil,
		``:                                   nil,
		` "SM",1,30,"ME"`:                    {{"SM", 1, 30}},
	} {
		if got := modem.ParseCPMS(in); !slices.Equal(got, want) {
			t.Errorf("ParseCPMS(%q) = %v, want %v", in, got, want)
		}
	}
}
