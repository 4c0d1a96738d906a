package modemsim

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestPackSeptets holds the packing of USSD text to vectors worked out
// apart from it (3GPP TS 23.038 §6.1.2.3.1), both ways.
func TestPackSeptets(t *testing.T) {
	for text, want := range map[string]string{
		"*100#":      "AA180C3602",
		"*1234#":     "AA986C461B01",
		"1234567":    "31D98C56B3DD1A", // CR fills 7 spare bits
		"12345678":   "31D98C56B3DD70", // no filler on a boundary
		"Saldo 12.5": "D3309BFC06C564AE1A",
	} {
		got := strings.ToUpper(hex.EncodeToString(packSeptets([]byte(text))))
		if got != want {
			t.Errorf("packSeptets(%q) = %s, want %s", text, got, want)
		}
		if u := unpackSeptets(packSeptets([]byte(text))); string(u) != text {
			t.Errorf("unpackSeptets(%s) = %q", want, u)
		}
	}
}
