package modem

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/warthog618/modem/info"
)

// USSD status values (<m> of +CUSD, 3GPP TS 27.007 §7.15).
const (
	USSDDone        = 0 // no further user action required
	USSDMore        = 1 // further user action required (a menu)
	USSDEnded       = 2 // terminated by the network
	USSDOther       = 3 // another local client answered
	USSDUnsupported = 4 // operation not supported
	USSDTimeout     = 5 // network time out
)

// ErrUSSD is the error of a USSD request the network did not answer with a
// text (not supported, ended, timed out).
var ErrUSSD = errors.New("USSD request not answered")

// errBadCUSD is ParseCUSD's error: it quotes nothing of the answer, which
// may hold the SIM's own number.
var errBadCUSD = errors.New("bad +CUSD answer")

// ussdAnswer is a parsed +CUSD indication.
type ussdAnswer struct {
	status int
	text   string
	err    error
}

// USSD sends the USSD request code ("*100#", a balance query) and returns
// the network's answer, which comes as a +CUSD indication. ctx bounds the
// wait (networks take seconds). A menu the answer opens is closed.
func (m *Modem) USSD(ctx context.Context, code string) (string, error) {
	if code == "" || strings.ContainsAny(code, "\"\r\n") {
		return "", fmt.Errorf("USSD code %q: not a code", code)
	}
	m.ussdMu.Lock()
	defer m.ussdMu.Unlock()
	if m.ussd == nil {
		m.ussd = make(chan ussdAnswer, 1)
		if err := m.at.AddIndication("+CUSD:", func(lines []string) {
			st, text, err := ParseCUSD(lines[0])
			select {
			case m.ussd <- ussdAnswer{st, text, err}:
			default: // nobody asked: dropped
			}
		}); err != nil {
			m.ussd = nil
			return "", fmt.Errorf("USSD: %w", err)
		}
	}
	select {
	case <-m.ussd: // a late answer to an earlier request
	default:
	}
	if _, err := m.at.Command(`+CUSD=1,"` + code + `",15`); err != nil {
		return "", fmt.Errorf("USSD %s: %w", code, err)
	}
	select {
	case a := <-m.ussd:
		if a.err != nil {
			return "", a.err
		}
		if a.status == USSDMore {
			_, _ = m.at.Command("+CUSD=2") // close the menu
		}
		if a.status != USSDDone && a.status != USSDMore {
			return "", fmt.Errorf("%w: status %d", ErrUSSD, a.status)
		}
		return a.text, nil
	case <-ctx.Done():
		_, _ = m.at.Command("+CUSD=2")
		return "", fmt.Errorf("USSD %s: %w", code, ctx.Err())
	}
}

// ParseCUSD parses a +CUSD indication: `+CUSD: <m>[,"<str>"[,<dcs>]]`.
// With <dcs> 72 (UCS-2) the string is hexadecimal UTF-16, as modems give
// it; otherwise it is taken as text.
func ParseCUSD(line string) (status int, text string, err error) {
	s := strings.TrimSpace(info.TrimPrefix(line, "+CUSD"))
	head, rest, hasStr := strings.Cut(s, ",")
	status, err = strconv.Atoi(strings.TrimSpace(head))
	if err != nil || status < 0 || status > 5 {
		return 0, "", errBadCUSD
	}
	if !hasStr {
		return status, "", nil
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, `"`) {
		return 0, "", errBadCUSD
	}
	end := strings.LastIndex(rest, `"`)
	if end == 0 {
		return 0, "", errBadCUSD
	}
	text = rest[1:end]
	dcs := -1
	if tail := strings.TrimSpace(rest[end+1:]); tail != "" {
		d, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(tail, ",")))
		if err != nil || !strings.HasPrefix(tail, ",") {
			return 0, "", errBadCUSD
		}
		dcs = d
	}
	if dcs == 72 {
		b, err := hex.DecodeString(text)
		if err != nil || len(b)%2 != 0 {
			return 0, "", fmt.Errorf("%w: UCS-2 not in hexadecimal", errBadCUSD)
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		text = string(utf16.Decode(u))
	}
	return status, text, nil
}
