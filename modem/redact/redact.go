// Package redact makes the lines of an AT conversation fit for logs: no
// PIN, PUK, phone number, PDU or message text gets through. The
// simulator's command log (modem/modemsim) and the driver's trace
// (package modem, Config.Trace) both use it.
//
// A PDU is withheld whole, never masked: it encodes the phone number in
// swapped semi-octets and the text in GSM 7-bit or UCS-2, which no digit
// mask would hide.
package redact

import (
	"strings"
)

// Normalize returns a command line (the characters after "AT") the way a
// modem reads it: spaces removed and letters upper-cased, except inside
// double quotes. The simulator parses what it returns and Command masks
// what it returns, so the log and the modem cannot read a line
// differently.
func Normalize(line string) string {
	b := make([]byte, 0, len(line))
	quoted := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ' ':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// Command returns a command line (the characters after "AT") with PINs,
// PUKs and phone numbers masked. It reads the line as the modem does
// (Normalize): every digit of a line that sets +CPIN, +CMGS (text mode) or
// +CSCA or dials (D) is masked, and in any line a run of four or more
// digits.
func Command(line string) string {
	u := Normalize(line)
	all := strings.HasPrefix(u, "D") || strings.Contains(u, "+CPIN") || strings.Contains(u, "+CMGS") ||
		strings.Contains(u, "+CSCA")
	return maskDigits(u, all)
}

// maskDigits replaces with '*' every digit of s (all) or those in runs of
// four or more.
func maskDigits(s string, all bool) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j > i && (all || j-i >= 4) {
			for k := i; k < j; k++ {
				b[k] = '*'
			}
		}
		i = max(j, i+1)
	}
	return string(b)
}
