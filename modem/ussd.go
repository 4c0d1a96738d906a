package modem

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/modem/info"
	"github.com/warthog618/sms/encoding/gsm7"
	"github.com/warthog618/sms/encoding/ucs2"
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

// USSD sends the USSD request code ("*100#", a balance query) and returns
// the network's answer, which comes as a +CUSD indication. ctx bounds the
// wait (networks take seconds). A menu the answer opens is closed.
//
// The request goes as text, as 3GPP TS 27.007 has it. A modem that
// refuses that form (ERROR, or +CME ERROR 4, 50 or 100) is asked again
// with the code as GSM 7-bit septets packed in octets, in hexadecimal, as
// Huawei modems want it, and the answer is read in that form. Once a
// request in one form is answered, the modem is asked in that form first.
func (m *Modem) USSD(ctx context.Context, code string) (string, error) {
	if code == "" || strings.ContainsAny(code, "\"\r\n") {
		return "", fmt.Errorf("USSD code %q: not a code", code)
	}
	m.ussdMu.Lock()
	defer m.ussdMu.Unlock()
	if m.ussd == nil {
		m.ussd = make(chan string, 1)
		if err := m.at.AddIndication("+CUSD:", func(lines []string) {
			select {
			case m.ussd <- lines[0]:
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
	forms := []bool{m.ussdPacked, !m.ussdPacked}
	var packed bool
	for i, p := range forms {
		req := code
		if p {
			var err error
			if req, err = packUSSD(code); err != nil {
				return "", fmt.Errorf("USSD code %q: not in GSM 7-bit", code)
			}
		}
		_, err := m.at.Command(`+CUSD=1,"` + req + `",15`)
		if err == nil {
			packed = p
			break
		}
		if i == len(forms)-1 || !formRefused(err) {
			return "", fmt.Errorf("USSD %s: %w", code, err)
		}
	}
	select {
	case line := <-m.ussd:
		status, text, err := parseCUSD(line, packed)
		if err != nil {
			return "", err
		}
		if status == USSDMore {
			_, _ = m.at.Command("+CUSD=2") // close the menu
		}
		if status != USSDDone && status != USSDMore {
			return "", fmt.Errorf("%w: status %d", ErrUSSD, status)
		}
		m.ussdPacked = packed
		return text, nil
	case <-ctx.Done():
		_, _ = m.at.Command("+CUSD=2")
		return "", fmt.Errorf("USSD %s: %w", code, ctx.Err())
	}
}

// formRefused reports whether err, a modem's answer to AT+CUSD, may
// refuse the form of the request rather than the request: ERROR, or +CME
// ERROR 4 (operation not supported), 50 (incorrect parameters), 100
// (unknown), by number (AT+CMEE=1) or in words from a modem that ignores
// that. Others (no network service, SIM busy) would refuse either.
func formRefused(err error) bool {
	var cme at.CMEError
	if errors.As(err, &cme) {
		switch strings.ToLower(string(cme)) {
		case "4", "50", "100", "operation not supported", "incorrect parameters", "unknown":
			return true
		}
	}
	return errors.Is(err, at.ErrError)
}

// ParseCUSD parses a +CUSD indication: `+CUSD: <m>[,"<str>"[,<dcs>]]`,
// from a modem asked in text, and decodes <str> by <dcs>, a CBS data
// coding scheme (3GPP TS 23.038 §5):
//   - UCS-2: hexadecimal UTF-16, as modems give it;
//   - GSM 7-bit: text as the modem gives it, but for an even number of
//     hexadecimal digits with a letter among them, which is taken for
//     septets packed in octets (a Huawei modem may answer so even when
//     asked in text). An answer in words has other letters, one of figures
//     alone (a number) has none;
//   - 8-bit data: hexadecimal octets, taken as text when they are UTF-8.
//
// A language indication the scheme says the text starts with is dropped.
// Compressed text, and text with a user data header, is returned as the
// modem gives it.
func ParseCUSD(line string) (status int, text string, err error) {
	return parseCUSD(line, false)
}

// parseCUSD is ParseCUSD; packed says the request went packed, and then a
// GSM 7-bit <str> in hexadecimal is packed whatever its digits.
func parseCUSD(line string, packed bool) (status int, text string, err error) {
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
	dcs := 0 // the default
	if tail := strings.TrimSpace(rest[end+1:]); tail != "" {
		d, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(tail, ",")))
		if err != nil || !strings.HasPrefix(tail, ",") || d < 0 || d > 255 {
			return 0, "", errBadCUSD
		}
		dcs = d
	}
	text, err = decodeUSSD(text, dcs, packed)
	if err != nil {
		return 0, "", err
	}
	return status, text, nil
}

// USSD string codings (3GPP TS 23.038 §5).
const (
	codingGSM7 = iota
	coding8Bit
	codingUCS2
	codingOther // compressed, or with a user data header: not decoded
)

// ussdCoding returns how a USSD string of CBS data coding scheme dcs is
// coded, and whether a language indication starts it.
func ussdCoding(dcs int) (coding int, lang bool) {
	switch group := dcs >> 4; {
	case dcs == 0x10:
		return codingGSM7, true
	case dcs == 0x11:
		return codingUCS2, true
	case group >= 0x4 && group <= 0x7:
		// General data coding: bit 5 compressed, bits 3-2 the alphabet.
		if dcs&0x20 != 0 {
			return codingOther, false
		}
		switch dcs >> 2 & 3 {
		case 1:
			return coding8Bit, false
		case 2:
			return codingUCS2, false
		}
	case group == 0x9:
		return codingOther, false
	case group == 0xf:
		if dcs&0x4 != 0 {
			return coding8Bit, false
		}
	}
	return codingGSM7, false // and the reserved values
}

// decodeUSSD decodes str, a USSD string of data coding scheme dcs as a
// modem gives it (see ParseCUSD and parseCUSD).
func decodeUSSD(str string, dcs int, packed bool) (string, error) {
	coding, lang := ussdCoding(dcs)
	switch coding {
	case codingOther:
		return str, nil
	case codingUCS2:
		b, err := hex.DecodeString(str)
		if err != nil || len(b)%2 != 0 {
			return "", fmt.Errorf("%w: UCS-2 not in hexadecimal", errBadCUSD)
		}
		if lang {
			// Two GSM 7-bit characters packed in two octets.
			b = b[min(2, len(b)):]
		}
		r, err := ucs2.Decode(b)
		var half ucs2.ErrDanglingSurrogate
		if errors.As(err, &half) {
			r, err = append(r, utf8.RuneError), nil // an answer cut short
		}
		if err != nil {
			return "", fmt.Errorf("%w: UCS-2: %w", errBadCUSD, err)
		}
		return string(r), nil
	case coding8Bit:
		if b, err := hex.DecodeString(str); err == nil && utf8.Valid(b) {
			return string(b), nil
		}
		return str, nil
	}
	if b, err := hex.DecodeString(str); err == nil && (packed || strings.ContainsAny(str, "ABCDEFabcdef")) {
		t, err := gsm7.Decode(unpackUSSD(b))
		if err != nil {
			return "", fmt.Errorf("%w: packed GSM 7-bit: %w", errBadCUSD, err)
		}
		str = string(t)
	}
	if lang {
		// Two characters of language, then CR.
		if i := strings.IndexByte(str, '\r'); i >= 0 && i <= 2 {
			str = str[i+1:]
		}
	}
	return str, nil
}

// cr is the GSM 7-bit carriage return, USSD's filler.
const cr = 0x0d

// packUSSD returns code, in GSM 7-bit, as septets packed in octets in
// hexadecimal: the form of a request that some modems (Huawei's) take.
//
// As 3GPP TS 23.038 §6.1.2.3.1 has it for USSD, CR fills 7 spare bits at
// the end (lest they read as @), and a CR that ends the text on an octet
// boundary is followed by another. (Package sms v0.3.0's Pack7BitUSSD
// takes any last octet of 0 or 1 for 7 spare bits, and so changes the
// last character of some texts of 6 or 14 characters: *1234#.)
func packUSSD(code string) (string, error) {
	u, err := gsm7.Encode([]byte(code))
	if err != nil {
		return "", err
	}
	b := gsm7.Pack7Bit(u, 0)
	switch n := len(u); {
	case n%8 == 7:
		b[len(b)-1] |= cr << 1
	case n > 0 && n%8 == 0 && u[n-1] == cr:
		b = append(b, cr)
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

// unpackUSSD returns the septets packed in b as packUSSD packs them: a
// last CR that ends on an octet boundary is filler. (Package sms v0.3.0's
// Unpack7BitUSSD drops a last character whose top bits read CR.)
func unpackUSSD(b []byte) []byte {
	u := gsm7.Unpack7Bit(b, 0)
	if n := len(u); len(b)%7 == 0 && n > 0 && u[n-1] == cr {
		u = u[:n-1]
	}
	return u
}
