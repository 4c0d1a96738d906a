package redact

import (
	"bytes"
	"strconv"
	"strings"
)

// Control characters of the conversation.
const (
	ctrlZ = 0x1a // ends a message entry
	esc   = 0x1b // cancels a message entry
)

// Withheld is what a log shows in place of n bytes withheld whole (a PDU,
// a message text).
func Withheld(n int) string {
	return "[" + strconv.Itoa(n) + " bytes withheld]"
}

// Sent returns what one write to a modem shows in a log, one string per
// line. It expects what an AT client writes at a time: one command line,
// an escape, or a message entry with its Ctrl-Z. A message entry (all
// that comes before the last Ctrl-Z: a PDU, or a text that may hold
// anything, even "AT") is withheld, a command line is shown as "AT" and
// Command, ESC as "<ESC>", and anything else is withheld.
func Sent(p []byte) []string {
	var out []string
	if i := bytes.LastIndexByte(p, ctrlZ); i >= 0 {
		out = append(out, Withheld(i+1))
		p = p[i+1:]
	}
	flush := func(seg []byte) {
		switch {
		case len(seg) == 0:
		case len(seg) >= 2 && (seg[0] == 'A' || seg[0] == 'a') && (seg[1] == 'T' || seg[1] == 't'):
			out = append(out, "AT"+Command(string(seg[2:])))
		default:
			out = append(out, Withheld(len(seg)))
		}
	}
	start := 0
	for i, c := range p {
		switch c {
		case '\r', '\n', esc:
			flush(p[start:i])
			start = i + 1
			if c == esc {
				out = append(out, "<ESC>")
			}
		}
	}
	flush(p[start:])
	return out
}

// Responses redacts the lines a modem sends, in order (without their line
// ends). It remembers whether the last line announced a message on the
// next one. The zero value is ready to use.
type Responses struct {
	body bool // the next line is a message: withheld
}

// Line returns a line a modem sent, fit for logs:
//
//   - the line after one that announces a message (+CMT, +CDS, +CMGR,
//     +CMGL, +CBM: a PDU or, in text mode, the text) is withheld whole;
//   - so is a line holding a run of 16 or more hex digits (a PDU), and
//     whatever comes before a Ctrl-Z (a message entry, echoed);
//   - a command line (echo) is shown as Command shows it;
//   - in any other line every run of four or more digits is masked.
//
// In text mode a line may be withheld that needed not be (a +CDS has no
// message line): never the other way round.
func (r *Responses) Line(line string) string {
	if line == "" {
		return "" // the message may still come on the next line
	}
	body := r.body
	r.body = false
	if body || hexRun(line) >= 16 {
		return Withheld(len(line))
	}
	if i := strings.LastIndexByte(line, ctrlZ); i >= 0 {
		w := Withheld(i + 1)
		if rest := r.Line(line[i+1:]); rest != "" {
			w += " " + rest
		}
		return w
	}
	if len(line) >= 2 && strings.EqualFold(line[:2], "AT") {
		return "AT" + Command(line[2:])
	}
	for _, p := range []string{"+CMT:", "+CDS:", "+CMGR:", "+CMGL:", "+CBM:"} {
		if strings.HasPrefix(line, p) {
			r.body = true
			break
		}
	}
	return maskDigits(line, false)
}

// hexRun returns the length of the longest run of hex digits in s.
func hexRun(s string) int {
	longest, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			n++
			longest = max(longest, n)
		} else {
			n = 0
		}
	}
	return longest
}
