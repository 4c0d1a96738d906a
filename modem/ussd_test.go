package modem

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/sms/encoding/gsm7"

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
		{`+CUSD: 0,"a",256`, 0, "", false},
		// Packed GSM 7-bit in hexadecimal (Huawei), the vectors worked
		// out apart: "*100#"; CR filling 7 spare bits ("1234567"); no
		// filler on a boundary ("12345678"); a last octet whose top bits
		// read CR ("Saldo 12.5"); a menu.
		{`+CUSD: 0,"AA180C3602",15`, 0, "*100#", true},
		{`+CUSD: 0,"31D98C56B3DD1A",15`, 0, "1234567", true},
		{`+CUSD: 0,"31D98C56B3DD70",15`, 0, "12345678", true},
		{`+CUSD: 0,"31D98C56B3DD00",15`, 0, "1234567@", true}, // @ is 0: only CR is filler
		{`+CUSD: 0,"D3309BFC06C564AE1A",15`, 0, "Saldo 12.5", true},
		{`+CUSD: 0,"C2303BEC1E9775A01B4B560315AB52",15`, 0, "Balance: 7,25 EUR", true},
		{`+CUSD: 1,"3110F50D6FD5E10A1948587793D9E539",0`, 1, "1 Top-up\n2 Bundles", true},
		// Figures alone are a number, not packed septets.
		{`+CUSD: 0,"4520123456",15`, 0, "4520123456", true},
		{`+CUSD: 0,"CAB1E",15`, 0, "CAB1E", true}, // odd: not octets
		// A language indication first: GSM 7-bit ("en", CR), UCS-2 (two
		// packed characters).
		{`+CUSD: 0,"en` + "\r" + `Balance 5",16`, 0, "Balance 5", true},
		{`+CUSD: 0,"657743186687DDE332A806",16`, 0, "Balance 5", true},
		{`+CUSD: 0,"653704110430043B",17`, 0, "Бал", true},
		// General data coding: UCS-2 (bits 3-2 = 10), 8-bit (01).
		{`+CUSD: 0,"04110430043B",72`, 0, "Бал", true},
		{`+CUSD: 0,"4F4B",68`, 0, "OK", true},
		{`+CUSD: 0,"FF00",68`, 0, "FF00", true},        // not UTF-8: as it is
		{`+CUSD: 0,"0041D800",72`, 0, "A\uFFFD", true}, // cut in a surrogate pair
		{`+CUSD: 0,"0041",104`, 0, "0041", true},       // compressed: as it is
		{`+CUSD: 0,"0041",148`, 0, "0041", true},       // with a header: as it is
	} {
		st, text, err := ParseCUSD(tc.line)
		if tc.ok != (err == nil) || tc.ok && (st != tc.status || text != tc.text) {
			t.Errorf("ParseCUSD(%q) = %d, %q, %v", tc.line, st, text, err)
		}
	}
}

func TestPackUSSD(t *testing.T) {
	// Vectors worked out apart from this code (3GPP TS 23.038
	// §6.1.2.3.1). sms v0.3.0's Pack7BitUSSD gives AA986C461B1B for
	// *1234#.
	for code, want := range map[string]string{
		"*100#":     "AA180C3602", // the form Huawei modems take
		"*1234#":    "AA986C461B01",
		"*#100#":    "AA510C061B01",
		"1234567":   "31D98C56B3DD1A",   // CR fills 7 spare bits
		"12345678":  "31D98C56B3DD70",   // no filler on a boundary
		"1234567\r": "31D98C56B3DD1A0D", // a CR on a boundary: another
	} {
		if got, err := packUSSD(code); err != nil || got != want {
			t.Errorf("packUSSD(%q) = %q, %v, want %s", code, got, err, want)
		}
		b, _ := hex.DecodeString(want)
		u, _ := gsm7.Decode(unpackUSSD(b))
		if code == "1234567\r" {
			code += "\r" // performed twice, as the standard says
		}
		if string(u) != code {
			t.Errorf("unpackUSSD(%s) = %q", want, u)
		}
	}
	if _, err := packUSSD("*100#ж"); err == nil {
		t.Error("a code GSM 7-bit cannot hold was packed")
	}
}

func FuzzParseCUSD(f *testing.F) {
	f.Add(`+CUSD: 0,"Your balance is 12.34 EUR",15`)
	f.Add(`+CUSD: 0,"0411043004",72`)
	f.Add(`+CUSD: 4`)
	f.Add(`+CUSD: 0,"AA180C3602",15`)
	f.Add(`+CUSD: 0,"653704110430043B",17`)
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
	if m.ussdPacked {
		t.Error("a modem that takes text was asked packed")
	}
}

// TestUSSDPacked: a modem that takes a request only packed, and answers
// packed (Huawei), is asked again packed, and so from then on; its
// answers are unpacked.
func TestUSSDPacked(t *testing.T) {
	s, m := openSim(t, modemsim.Config{USSDPacked: true, USSD: map[string]string{
		"*100#":  "Your balance is 12.34 EUR",
		"*101#":  "Баланс: 5,00 ₽",
		"*1234#": "Saldo 12.5",
	}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, code := range []string{"*100#", "*101#", "*1234#", "*100#"} {
		want := map[string]string{"*100#": "Your balance is 12.34 EUR", "*101#": "Баланс: 5,00 ₽", "*1234#": "Saldo 12.5"}[code]
		if got, err := m.USSD(ctx, code); err != nil || got != want {
			t.Errorf("USSD(%s) = %q, %v", code, got, err)
		}
		if !m.ussdPacked {
			t.Fatal("the modem is not asked packed")
		}
	}
	if got := s.USSDRequests(); !slices.Equal(got, []string{"*100#", "*101#", "*1234#", "*100#"}) {
		t.Errorf("the network was asked %q", got)
	}
	if _, err := m.USSD(ctx, "*999#"); !errors.Is(err, ErrUSSD) {
		t.Errorf("an unknown code: %v, want ErrUSSD", err)
	}
}

// TestFormRefused: only an answer that may refuse the request's form has
// the request asked again in the other form.
func TestFormRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{at.ErrError, true},
		{at.CMEError("4"), true},
		{at.CMEError("50"), true},
		{at.CMEError("100"), true},
		{at.CMEError("Operation not supported"), true}, // a modem that ignores AT+CMEE=1
		{at.CMEError("no network service"), false},
		{at.CMEError("30"), false}, // no network service
		{at.CMEError("14"), false}, // SIM busy
		{at.ErrDeadlineExceeded, false},
		{fmt.Errorf("wrapped: %w", at.ErrError), true},
	} {
		if got := formRefused(tc.err); got != tc.want {
			t.Errorf("formRefused(%v) = %t", tc.err, got)
		}
	}
}
