package modem_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

// TestSIMPINTries: the driver never spends a SIM's last PIN try, treats any
// failure of AT+CPIN=<pin> as final (a plain ERROR too), and tells the
// tries left when the modem does.
func TestSIMPINTries(t *testing.T) {
	open := func(s *modemsim.Modem, pin string) (*modem.Modem, error) {
		return modem.Open(context.Background(), modem.Config{Name: "m1", Device: s.Path(), PIN: pin, CommandTimeout: 2 * time.Second})
	}
	pinErr := func(t *testing.T, err, want error, left int) {
		t.Helper()
		var pe *modem.PINError
		if !errors.Is(err, want) || !errors.As(err, &pe) || pe.TriesLeft != left {
			t.Fatalf("open: %v, want %v with %d tries left", err, want, left)
		}
		if strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "0000") {
			t.Errorf("error reveals the PIN: %v", err)
		}
	}

	t.Run("last try is not spent", func(t *testing.T) {
		s := startSim(t, modemsim.Config{PIN: "1234", PINTriesUsed: 2})
		_, err := open(s, "1234")
		pinErr(t, err, modem.ErrPINLastTry, 1)
		// Had the (right) PIN been entered, the SIM would now be ready.
		_, err = open(s, "1234")
		pinErr(t, err, modem.ErrPINLastTry, 1)
	})
	t.Run("wrong pin tells the tries left", func(t *testing.T) {
		s := startSim(t, modemsim.Config{PIN: "1234"})
		_, err := open(s, "0000")
		pinErr(t, err, modem.ErrWrongPIN, 2)
	})
	t.Run("plain ERROR is final too", func(t *testing.T) {
		s := startSim(t, modemsim.Config{PIN: "1234", NoCMEE: true})
		_, err := open(s, "0000")
		pinErr(t, err, modem.ErrWrongPIN, 2)
	})
	t.Run("right pin", func(t *testing.T) {
		s := startSim(t, modemsim.Config{PIN: "1234", PINTriesUsed: 1})
		m, err := open(s, "1234")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if got := m.Info().PINTriesLeft; got != 3 {
			t.Errorf("tries left after the right PIN: %d, want 3", got)
		}
	})
	t.Run("modem does not tell", func(t *testing.T) {
		s := startSim(t, modemsim.Config{PIN: "1234", NoCPINR: true})
		m, err := open(s, "1234")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if got := m.Info().PINTriesLeft; got != -1 {
			t.Errorf("tries left: %d, want -1 (unknown)", got)
		}
	})
}

func TestParsePINTries(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  int
		ok    bool
	}{
		{[]string{"+CPINR: SIM PIN,3,3", "+CPINR: SIM PUK,10,10"}, 3, true},
		{[]string{`+CPINR: "SIM PIN",1,3`}, 1, true},
		{[]string{"+CDS: 25", "+CPINR: SIM PIN,2,3"}, 2, true},
		{[]string{"+CPINR: SIM PUK,10,10"}, 0, false},
		{[]string{"+CPINR: SIM PIN,x,3"}, 0, false},
		{[]string{"^CPIN: SIM PIN,3,10,3,10,3"}, 3, true},
		{[]string{"^CPIN: READY,,10,1,10,3"}, 1, true},
		{[]string{"^CPIN: READY,,10"}, 0, false},
		{nil, 0, false},
	} {
		got, ok := modem.ParsePINTries(tc.lines)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParsePINTries(%q) = %d, %v; want %d, %v", tc.lines, got, ok, tc.want, tc.ok)
		}
	}
}
