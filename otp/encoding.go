package otp

import (
	"strings"
	"unicode/utf16"
)

// Encoding is the SMS alphabet (TP-DCS) a text is sent in.
type Encoding string

// Encodings of an SMS text.
const (
	EncodingGSM7 Encoding = "gsm7" // GSM 7-bit default alphabet, 3GPP TS 23.038 §6.2.1
	EncodingUCS2 Encoding = "ucs2" // UCS-2 (UTF-16 in practice), 3GPP TS 23.038 §6.2.3
)

// Sizes of one SMS: user data of 140 octets, less the 6 octets of the
// concatenation header (3GPP TS 23.040 §9.2.3.24.1) when a text takes more
// than one part; a GSM-7 part loses 7 septets to it.
const (
	gsm7Single = 160 // septets
	gsm7Part   = 153
	ucs2Single = 70 // UTF-16 code units
	ucs2Part   = 67
)

// The GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) in septet order,
// without 0x1B (the escape to the extension table), and the characters of
// its extension table (§6.2.1.1), each sent as the escape plus one septet.
// 0x09 is the capital Ç, as in the standard's table (Unicode's mapping file
// has the small ç there; phones differ).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ" + // 0x00-0x1A
		"ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" + // 0x1C-0x3F
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" + // 0x40-0x5F
		"¿abcdefghijklmnopqrstuvwxyzäöñüà" // 0x60-0x7F
	gsm7Extension = "\f^{}\\[~]|€"
)

// gsm7Septets is the number of septets r takes in the GSM 7-bit default
// alphabet: 1, 2 for the extension table, 0 when r is not in it.
func gsm7Septets(r rune) int {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == ' ':
		return 1
	case strings.ContainsRune(gsm7Basic, r):
		return 1
	case strings.ContainsRune(gsm7Extension, r):
		return 2
	}
	return 0
}

// ucs2Units is the number of UTF-16 code units r takes: 2 outside the BMP.
func ucs2Units(r rune) int { return utf16.RuneLen(r) }

// Segments reports the encoding text is sent in and the number of SMS it
// takes, as github.com/warthog618/sms (what the modem driver uses) encodes
// it:
//
//   - GSM-7 when every character is in the default alphabet or its
//     extension table (`€ [ ] { } \ ~ ^ |` and form feed take 2 septets),
//     UCS-2 otherwise. National language shift tables are not used.
//   - One SMS holds 160 septets or 70 UTF-16 code units (a character outside
//     the BMP takes 2). A longer text is sent as concatenated parts of 153
//     septets or 67 code units, and a part never ends in the middle of an
//     escape sequence or of a surrogate pair: such a part is one short and
//     the character starts the next part.
//   - The empty text takes no SMS; invalid UTF-8 bytes count as U+FFFD.
//
// U+001B (ESC) is not a GSM character: Segments counts a text with it as
// UCS-2, while warthog618/sms v0.3.0 sends it as the raw escape septet,
// which the phone reads as an escape: the ESC vanishes and a following "("
// shows as "{".
func Segments(text string) (enc Encoding, parts int) {
	if text == "" {
		return EncodingGSM7, 0
	}
	for _, r := range text {
		if gsm7Septets(r) == 0 {
			return EncodingUCS2, fill(text, ucs2Single, ucs2Part, ucs2Units)
		}
	}
	return EncodingGSM7, fill(text, gsm7Single, gsm7Part, gsm7Septets)
}

// fill counts the SMS text takes: one when its size is at most single,
// else parts of at most part units, no character split between two parts.
func fill(text string, single, part int, size func(rune) int) int {
	parts, used, total := 1, 0, 0
	for _, r := range text {
		n := size(r)
		total += n
		if used+n > part {
			parts++
			used = 0
		}
		used += n
	}
	if total <= single {
		return 1
	}
	return parts
}
