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

// ussdAnswer is a parsed +CUSD indication.
type ussdAnswer struct {
	status int
	text   string
	err    error
}

// USSD sends the USSD request code ("*100#", a balance query) and returns
// the network's answer, which comes as a +CUSD indication. ctx bounds the
// wait (networks take seconds). A menu the answer opens is closed.
//
// The request goes as text, as 3GPP TS 27.007 has it. A modem that
// refuses it (ERROR) is asked again with the code packed as GSM 7-bit
// septets in hexadecimal, as Huawei modems want it; one that takes that is
// asked so from then on.
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
	packed, err := packUSSD(code)
	if err != nil {
		return "", fmt.Errorf("USSD code %q: not in GSM 7-bit", code)
	}
	forms := []string{code, packed}
	if m.ussdPacked {
		forms = forms[1:]
	}
	for i, req := range forms {
		_, err = m.at.Command(`+CUSD=1,"` + req + `",15`)
		if err == nil {
			m.ussdPacked = req == packed
			break
		}
		var cme at.CMEError
		if i == len(forms)-1 || !errors.Is(err, at.ErrError) && !errors.As(err, &cme) {
			return "", fmt.Errorf("USSD %s: %w", code, err)
		}
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

// ParseCUSD parses a +CUSD indication: `+CUSD: <m>[,"<str>"[,<dcs>]]`,
// and decodes <str> by <dcs>, a CBS data coding scheme (3GPP TS 23.038
// §5):
//   - UCS-2: hexadecimal UTF-16, as modems give it;
//   - GSM 7-bit: text as the modem gives it, but for an even number of
//     hexadecimal digits with a letter among them, which is taken for
//     septets packed in octets (Huawei modems answer so). An answer in
//     words has other letters, one of figures alone (a number) has none.
//   - 8-bit data: hexadecimal octets, taken as text when they are UTF-8.
//
// A language indication the scheme says the text starts with is dropped.
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
	dcs := 0 // the default
	if tail := strings.TrimSpace(rest[end+1:]); tail != "" {
		d, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(tail, ",")))
		if err != nil || !strings.HasPrefix(tail, ",") || d < 0 || d > 255 {
			return 0, "", errBadCUSD
		}
		dcs = d
	}
	text, err = decodeUSSD(text, dcs)
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
)

// ussdCoding returns how a USSD string of CBS data coding scheme dcs is
// coded, and whether a language indication starts it.
func ussdCoding(dcs int) (coding int, lang bool) {
	switch group := dcs >> 4; {
	case dcs == 0x10:
		return codingGSM7, true
	case dcs == 0x11:
		return codingUCS2, true
	case group == 0x4, group == 0x5, group == 0x6, group == 0x7, group == 0x9:
		// General data coding (compressed or not) and messages with a
		// user data header: bits 3-2 say.
		switch dcs >> 2 & 3 {
		case 1:
			return coding8Bit, false
		case 2:
			return codingUCS2, false
		}
	case group == 0xf:
		if dcs&0x4 != 0 {
			return coding8Bit, false
		}
	}
	return codingGSM7, false // and the reserved values
}

// decodeUSSD decodes str, a USSD string of data coding scheme dcs as a
// modem gives it (see ParseCUSD).
func decodeUSSD(str string, dcs int) (string, error) {
	coding, lang := ussdCoding(dcs)
	switch coding {
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
	if b, err := hex.DecodeString(str); err == nil && strings.ContainsAny(str, "ABCDEFabcdef") {
		t, err := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0))
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

// packUSSD returns code, in GSM 7-bit, as septets packed in octets in
// hexadecimal: the form of a request that some modems (Huawei's) take.
func packUSSD(code string) (string, error) {
	u, err := gsm7.Encode([]byte(code))
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(gsm7.Pack7BitUSSD(u, 0))), nil
}
