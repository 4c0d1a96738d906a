// The AT command-line parser: a command line (the characters after "AT",
// V.250 §5.2) is normalised (redact.Normalize, so that the log reads it as
// the parser does), then split into commands one at a time, basic
// ("E0", "&F", "S3=13", "D...") or extended ("+CMEE=1"), each in one of
// the forms action, set ("="), read ("?") or test ("=?"). The parameters
// of a set command are split and checked by the handler that runs it.
// Bytes before that (echo, S3, S5, ESC, NUL, the message entered after
// AT+CMGS) are the input state machine's.

package modemsim

import (
	"strconv"
	"strings"
)

// command is one command of a command line.
type command struct {
	name   string // "E", "&F", "S", "+CMGS"
	op     opKind
	num    int  // basic commands: the number after the letter (or S register)
	hasNum bool // whether a number was given
	args   string
}

// opKind is the form of a command (V.250 §5.4).
type opKind int

const (
	opAction opKind = iota // AT+CSQ, ATE1
	opSet                  // AT+CMEE=1, ATS0=1
	opRead                 // AT+CMEE?, ATS0?
	opTest                 // AT+CMEE=?
)

// nextCommand parses the first command of a normalised command line and
// returns it with the rest of the line.
func nextCommand(body string) (command, string, error) {
	var c command
	ch := body[0]
	switch {
	case isExtPrefix(ch):
		i := 1
		for i < len(body) && isNameChar(body[i]) {
			i++
		}
		if i == 1 {
			return c, "", errSyntax
		}
		c.name = body[:i]
		rest := body[i:]
		switch {
		case strings.HasPrefix(rest, "=?"):
			c.op, rest = opTest, rest[2:]
		case strings.HasPrefix(rest, "?"):
			c.op, rest = opRead, rest[1:]
		case strings.HasPrefix(rest, "="):
			c.op = opSet
			var err error
			c.args, rest, err = splitArgs(rest[1:])
			if err != nil {
				return c, "", err
			}
		}
		if rest != "" {
			if rest[0] != ';' {
				return c, "", errSyntax
			}
			rest = rest[1:]
		}
		return c, rest, nil
	case ch == 'D':
		// Dial: the rest of the line is the dial string.
		c.name, c.args = "D", body[1:]
		return c, "", nil
	case ch == 'S':
		i := 1
		for i < len(body) && isDigit(body[i]) {
			i++
		}
		if i == 1 || i > 4 {
			return c, "", errSyntax
		}
		c.name = "S"
		c.num, _ = strconv.Atoi(body[1:i])
		c.hasNum = true
		rest := body[i:]
		switch {
		case strings.HasPrefix(rest, "=?"):
			c.op, rest = opTest, rest[2:]
		case strings.HasPrefix(rest, "?"):
			c.op, rest = opRead, rest[1:]
		case strings.HasPrefix(rest, "="):
			c.op = opSet
			j := 1
			for j < len(rest) && isDigit(rest[j]) {
				j++
			}
			c.args, rest = rest[1:j], rest[j:]
		default:
			return c, "", errSyntax
		}
		return c, rest, nil
	case ch == '&' || 'A' <= ch && ch <= 'Z':
		i := 1
		if ch == '&' {
			if len(body) < 2 || body[1] < 'A' || body[1] > 'Z' {
				return c, "", errSyntax
			}
			i = 2
		}
		c.name = body[:i]
		j := i
		for j < len(body) && isDigit(body[j]) {
			j++
		}
		if j > i {
			if j-i > 3 {
				return c, "", errSyntax
			}
			c.num, _ = strconv.Atoi(body[i:j])
			c.hasNum = true
		}
		return c, body[j:], nil
	}
	return c, "", errSyntax
}

// splitArgs returns the parameters of a set command: everything up to the
// next ';' outside double quotes.
func splitArgs(s string) (args, rest string, err error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				return s[:i], s[i:], nil
			}
		}
	}
	if quoted {
		return "", "", errSyntax
	}
	return s, "", nil
}

func isExtPrefix(c byte) bool {
	return c == '+' || c == '^' || c == '$' || c == '%' || c == '*' || c == '#'
}

func isNameChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!%-./:_", c) >= 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// param is one comma-separated parameter of a set command.
type param struct {
	v      string
	quoted bool
}

func (p param) empty() bool { return p.v == "" && !p.quoted }

// parseParams splits set-command parameters at commas outside quotes.
func parseParams(args string, max int) ([]param, error) {
	var ps []param
	var cur param
	inQuote := false
	var b strings.Builder
	for i := 0; i < len(args); i++ {
		c := args[i]
		switch {
		case c == '"':
			if !inQuote && (cur.quoted || b.Len() > 0) {
				return nil, errSyntax // text before or after a string
			}
			if inQuote {
				inQuote = false
			} else {
				inQuote, cur.quoted = true, true
			}
		case inQuote:
			b.WriteByte(c)
		case c == ',':
			cur.v = b.String()
			ps = append(ps, cur)
			cur = param{}
			b.Reset()
		default:
			if cur.quoted {
				return nil, errSyntax
			}
			b.WriteByte(c)
		}
	}
	if inQuote {
		return nil, errSyntax
	}
	cur.v = b.String()
	ps = append(ps, cur)
	if len(ps) > max {
		return nil, errSyntax
	}
	return ps, nil
}

// intParam returns numeric parameter i, def when it is absent or empty.
func intParam(ps []param, i, def, lo, hi int) (int, error) {
	if i >= len(ps) || ps[i].empty() {
		return def, nil
	}
	if ps[i].quoted || len(ps[i].v) > 6 {
		return 0, errSyntax
	}
	for j := 0; j < len(ps[i].v); j++ {
		if !isDigit(ps[i].v[j]) {
			return 0, errSyntax
		}
	}
	n, _ := strconv.Atoi(ps[i].v)
	if n < lo || n > hi {
		return 0, errSyntax
	}
	return n, nil
}

// strParam returns string parameter i (quoted or not) and whether it is set.
func strParam(ps []param, i int) (string, bool) {
	if i >= len(ps) || ps[i].empty() {
		return "", false
	}
	return ps[i].v, true
}

// basicValue validates the number of a basic command: absent means 0.
func basicValue(c command, max int) (int, error) {
	if c.op != opAction || c.num > max {
		return 0, errSyntax
	}
	return c.num, nil
}
