package otp

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/tpdu"
)

// smsSegments is what github.com/warthog618/sms, which the modem driver
// sends with, makes of text: the alphabet of its PDUs and how many there are.
func smsSegments(t testing.TB, text string) (Encoding, int, bool) {
	t.Helper()
	pdus, err := sms.Encode([]byte(text), sms.To("+4526227921"))
	if err != nil {
		return "", 0, false
	}
	enc := EncodingGSM7 // sms.Encode makes no PDU of the empty text
	for i, p := range pdus {
		alpha, err := p.DCS.Alphabet()
		if err != nil {
			t.Fatalf("PDU %d of %d: DCS %#x: %v", i+1, len(pdus), p.DCS, err)
		}
		var e Encoding
		switch alpha {
		case tpdu.Alpha7Bit:
			e = EncodingGSM7
		case tpdu.AlphaUCS2:
			e = EncodingUCS2
		default:
			t.Fatalf("PDU %d of %d: alphabet %v", i+1, len(pdus), alpha)
		}
		if i > 0 && e != enc {
			t.Fatalf("PDU %d of %d is %s, PDU 1 %s", i+1, len(pdus), e, enc)
		}
		enc = e
	}
	return enc, len(pdus), true
}

func TestSegments(t *testing.T) {
	r := strings.Repeat
	for _, tc := range []struct {
		name  string
		text  string
		enc   Encoding
		parts int
		// smsDiffers marks a text warthog618/sms gets wrong (see Segments).
		smsDiffers bool
	}{
		{name: "empty", text: "", enc: EncodingGSM7, parts: 0},
		{name: "one character", text: "a", enc: EncodingGSM7, parts: 1},
		{name: "default template", text: "Your Acme verification code is 034812. It expires in 10 min.", enc: EncodingGSM7, parts: 1},
		{name: "origin line", text: "Your Acme code is 034812.\n\n@example.com #034812", enc: EncodingGSM7, parts: 1},
		{name: "app hash", text: "Your Acme code is 034812.\nFA+9qCX9VSu", enc: EncodingGSM7, parts: 1},
		{name: "whole default alphabet", text: gsm7Basic, enc: EncodingGSM7, parts: 1},
		{name: "German umlauts are GSM", text: "Ihr Acme-Code lautet 034812. Er läuft in 10 Min. ab. Größe: ÄÖÜß", enc: EncodingGSM7, parts: 1},
		{name: "Danish letters are GSM", text: "Din kode er 034812. ÆØÅ æøå", enc: EncodingGSM7, parts: 1},
		{name: "Greek capitals of the alphabet", text: "ΔΦΓΛΩΠΨΣΘΞ", enc: EncodingGSM7, parts: 1},
		{name: "currency", text: "$£¥¤€", enc: EncodingGSM7, parts: 1},

		// Lengths: 160 septets in one SMS, 153 per part.
		{name: "160 septets", text: r("a", 160), enc: EncodingGSM7, parts: 1},
		{name: "161 septets", text: r("a", 161), enc: EncodingGSM7, parts: 2},
		{name: "306 septets", text: r("a", 306), enc: EncodingGSM7, parts: 2},
		{name: "307 septets", text: r("a", 307), enc: EncodingGSM7, parts: 3},
		{name: "MaxTextLen", text: r("a", MaxTextLen), enc: EncodingGSM7, parts: 7},

		// The extension table takes 2 septets.
		{name: "80 euro signs", text: r("€", 80), enc: EncodingGSM7, parts: 1},
		{name: "81 euro signs", text: r("€", 81), enc: EncodingGSM7, parts: 2},
		{name: "extension table", text: r("€[]{}\\~^|\f", 8), enc: EncodingGSM7, parts: 1},
		{name: "extension table, one more", text: r("€[]{}\\~^|\f", 8) + "a", enc: EncodingGSM7, parts: 2},
		{name: "form feeds", text: r("\f", 81), enc: EncodingGSM7, parts: 2},
		// 152 + 2 + 152 = 306 septets would fit 2 parts, but the escape
		// may not be split: 152 | € 151 | 1.
		{name: "escape not split", text: r("a", 152) + "€" + r("a", 152), enc: EncodingGSM7, parts: 3},
		{name: "escape at the end of a part", text: r("a", 151) + "€" + r("a", 153), enc: EncodingGSM7, parts: 2},
		{name: "escape ends a single SMS", text: r("a", 158) + "€", enc: EncodingGSM7, parts: 1},
		{name: "escape past a single SMS", text: r("a", 159) + "€", enc: EncodingGSM7, parts: 2},

		// Not in the GSM alphabet: UCS-2.
		{name: "en dash", text: "Din kode er 034812 – gyldig i 10 min", enc: EncodingUCS2, parts: 1},
		{name: "curly apostrophe", text: "It’s 034812", enc: EncodingUCS2, parts: 1},
		{name: "backtick", text: "`", enc: EncodingUCS2, parts: 1},
		{name: "small c cedilla", text: "reçu", enc: EncodingUCS2, parts: 1},
		{name: "capital C cedilla is GSM", text: "REÇU", enc: EncodingGSM7, parts: 1},
		{name: "e circumflex", text: "être", enc: EncodingUCS2, parts: 1},
		{name: "NUL", text: "a\x00b", enc: EncodingUCS2, parts: 1},
		{name: "tab", text: "a\tb", enc: EncodingUCS2, parts: 1},
		{name: "Cyrillic", text: "Ваш код 034812", enc: EncodingUCS2, parts: 1},
		{name: "emoji", text: "Hi 😀", enc: EncodingUCS2, parts: 1},
		{name: "invalid UTF-8", text: "a\xffb", enc: EncodingUCS2, parts: 1},

		// 70 code units in one SMS, 67 per part.
		{name: "70 units", text: r("ж", 70), enc: EncodingUCS2, parts: 1},
		{name: "71 units", text: r("ж", 71), enc: EncodingUCS2, parts: 2},
		{name: "134 units", text: r("ж", 134), enc: EncodingUCS2, parts: 2},
		{name: "135 units", text: r("ж", 135), enc: EncodingUCS2, parts: 3},
		{name: "one € among UCS-2 is one unit", text: r("ж", 69) + "€", enc: EncodingUCS2, parts: 1},
		{name: "35 emoji", text: r("😀", 35), enc: EncodingUCS2, parts: 1},
		{name: "36 emoji", text: r("😀", 36), enc: EncodingUCS2, parts: 2},
		// 66 + 2 + 66 = 134 units would fit 2 parts, but the surrogate
		// pair may not be split: 66 | 😀 65 | 1.
		{name: "surrogate pair not split", text: r("ж", 66) + "😀" + r("ж", 66), enc: EncodingUCS2, parts: 3},
		{name: "surrogate pair ends a part", text: r("ж", 65) + "😀" + r("ж", 67), enc: EncodingUCS2, parts: 2},
		{name: "MaxTextLen UCS-2", text: r("é", MaxTextLen-1) + "ж", enc: EncodingUCS2, parts: 15},

		// U+001B is no GSM character, but warthog618/sms sends it as the
		// escape septet.
		{name: "ESC", text: "a\x1bb", enc: EncodingUCS2, parts: 1, smsDiffers: true},
		{name: "ESC before an extension code", text: "\x1b(", enc: EncodingUCS2, parts: 1, smsDiffers: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, parts := Segments(tc.text)
			if enc != tc.enc || parts != tc.parts {
				t.Errorf("Segments = %s, %d; want %s, %d", enc, parts, tc.enc, tc.parts)
			}
			smsEnc, smsParts, ok := smsSegments(t, tc.text)
			if !ok {
				t.Fatal("sms.Encode refused the text")
			}
			if differs := smsEnc != enc || smsParts != parts; differs != tc.smsDiffers {
				t.Errorf("sms.Encode: %s, %d; Segments: %s, %d", smsEnc, smsParts, enc, parts)
			}
		})
	}
}

// The alphabet tables are those of 3GPP TS 23.038 as warthog618/sms has
// them, for every rune.
func TestGSM7Tables(t *testing.T) {
	if n := utf8.RuneCountInString(gsm7Basic); n != 127 {
		t.Errorf("gsm7Basic has %d characters, want 127", n)
	}
	for b := range byte(0x80) {
		if b == 0x1b {
			continue
		}
		s, err := gsm7.Decode([]byte{b}, gsm7.Strict)
		if r, _ := utf8.DecodeRune(s); err != nil || gsm7Septets(r) != 1 {
			t.Errorf("septet %#02x decodes to %q, %v; gsm7Septets %d", b, s, err, gsm7Septets(r))
		}
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		want := 0
		if enc, err := gsm7.Encode([]byte(string(r))); err == nil {
			want = len(enc)
		}
		if r == 0x1b {
			want = 0 // sms encodes it as the escape itself
		}
		if got := gsm7Septets(r); got != want {
			t.Errorf("gsm7Septets(%U %q) = %d, want %d", r, r, got, want)
		}
	}
}

func FuzzSegments(f *testing.F) {
	r := strings.Repeat
	for _, s := range []string{
		"", "a", "Your Acme verification code is 034812. It expires in 10 min.",
		r("a", 160), r("a", 161), r("€", 81), r("a", 152) + "€" + r("a", 152),
		r("ж", 70), r("ж", 71), r("😀", 36), r("ж", 66) + "😀" + r("ж", 66),
		"Din kode er 034812 – gyldig", "\f\f\f", "a\x1bb", "a\xffb", "reçu REÇU",
	} {
		f.Add(s, uint8(0))
	}
	f.Add("a€", uint8(80))
	f.Add("€aa", uint8(60))
	f.Add("😀ж", uint8(40))
	f.Add("жж😀", uint8(33))
	// repeat makes texts long enough for part boundaries to matter.
	f.Fuzz(func(t *testing.T, text string, repeat uint8) {
		if n := 1 + int(repeat)%128; len(text)*n <= 1<<14 {
			text = strings.Repeat(text, n)
		}
		enc, parts := Segments(text)
		if (parts == 0) != (text == "") {
			t.Fatalf("%d parts", parts)
		}
		size, per, single := 0, gsm7Part, gsm7Single
		for _, c := range text {
			if enc == EncodingGSM7 {
				size += gsm7Septets(c)
			} else {
				size += ucs2Units(c)
			}
		}
		if enc == EncodingUCS2 {
			per, single = ucs2Part, ucs2Single
		}
		switch {
		case parts == 1 && size > single,
			parts > 1 && (size <= single || size > parts*per || size <= (parts-1)*(per-1)):
			t.Fatalf("%s size %d in %d parts", enc, size, parts)
		}
		if !utf8.ValidString(text) {
			// Invalid bytes are counted, and sent, as U+FFFD.
			if enc != EncodingUCS2 {
				t.Fatalf("invalid UTF-8 as %s", enc)
			}
		}
		if strings.ContainsRune(text, 0x1b) {
			// warthog618/sms sends U+001B as the escape septet; see
			// Segments.
			if enc != EncodingUCS2 {
				t.Fatalf("U+001B as %s", enc)
			}
			return
		}
		smsEnc, smsParts, ok := smsSegments(t, text)
		if !ok {
			t.Skip("sms.Encode refused the text")
		}
		if smsEnc != enc || smsParts != parts {
			t.Fatalf("Segments = %s, %d; sms.Encode: %s, %d", enc, parts, smsEnc, smsParts)
		}
	})
}
