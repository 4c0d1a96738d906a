package modem

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/modemsim"
)

func TestParseCUSD(t *testing.T) {
	for _, tc := range []struct {
		line   string
		status int
		text   string
		ok     bool
	}{
		{`+CUSD: 0,"Your balance is 12.34 EUR",15`, 0, "Your balance is 12.34 EUR", true},
		{`+CUSD: 0,"04110430043B0430043D0441",72`, 0, "Баланс", true},
		{`+CUSD: 1,"1. Balance, 2. Bundles"`, 1, "1. Balance, 2. Bundles", true},
		{`+CUSD: 4`, 4, "", true},
		{`+CUSD: 2`, 2, "", true},
		{`+CUSD: 0,"a ""quoted"" word",15`, 0, `a ""quoted"" word`, true},
		{`+CUSD: 9`, 0, "", false},
		{`+CUSD: x,"a"`, 0, "", false},
		{`+CUSD: 0,a,15`, 0, "", false},
		{`+CUSD: 0,"`, 0, "", false},
		{`+CUSD: 0,"ZZ",72`, 0, "", false},
		{`+CUSD: 0,"abc",72`, 0, "", false},
		{`+CUSD: 0,"a",x`, 0, "", false},
	} {
		st, text, err := ParseCUSD(tc.line)
		if tc.ok != (err == nil) || tc.ok && (st != tc.status || text != tc.text) {
			t.Errorf("ParseCUSD(%q) = %d, %q, %v", tc.line, st, text, err)
		}
	}
}

func FuzzParseCUSD(f *testing.F) {
	f.Add(`+CUSD: 0,"Your balance is 12.34 EUR",15`)
	f.Add(`+CUSD: 0,"0411043004",72`)
	f.Add(`+CUSD: 4`)
	f.Fuzz(func(t *testing.T, line string) {
		st, _, err := ParseCUSD(line)
		if err == nil && (st < 0 || st > 5) {
			t.Fatalf("status %d", st)
		}
	})
}

// TestUSSD: a balance query answered in GSM 7-bit and in UCS-2, and a
// code the network does not know.
func TestUSSD(t *testing.T) {
	_, m := openSim(t, modemsim.Config{USSD: map[string]string{
		"*100#": "Your balance is 12.34 EUR",
		"*101#": "Баланс: 5,00 ₽",
	}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for code, want := range map[string]string{"*100#": "Your balance is 12.34 EUR", "*101#": "Баланс: 5,00 ₽"} {
		if got, err := m.USSD(ctx, code); err != nil || got != want {
			t.Errorf("USSD(%s) = %q, %v", code, got, err)
		}
	}
	if got, err := m.USSD(ctx, "*999#"); !errors.Is(err, ErrUSSD) {
		t.Errorf("an unknown code: %q, %v, want ErrUSSD", got, err)
	}
	if _, err := m.USSD(ctx, `*1"#`); err == nil {
		t.Error("a code with a quote was sent")
	}
}
