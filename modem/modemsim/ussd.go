package modemsim

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/warthog618/sms/encoding/gsm7"
)

// cmdCUSD handles AT+CUSD=<n>[,<str>[,<dcs>]]: a USSD request to the
// network (3GPP TS 27.007 §7.15). The answer comes after OK, as the
// network's would: `+CUSD: 0,"<text>",15` (GSM 7-bit) or, for a text
// GSM cannot hold, its UCS-2 in hexadecimal with <dcs> 72; `+CUSD: 4` for
// a code Config.USSD does not know (operation not supported).
func (ip *interpreter) cmdCUSD(c command) error {
	switch c.op {
	case opRead:
		ip.info("+CUSD: " + strconv.Itoa(ip.cusd))
		return nil
	case opTest:
		ip.info("+CUSD: (0-2)")
		return nil
	case opSet:
	default:
		return errSyntax
	}
	if err := ip.simErr(false); err != nil {
		return err
	}
	ps, err := parseParams(c.args, 3)
	if err != nil {
		return err
	}
	n, err := intParam(ps, 0, 0, 0, 2)
	if err != nil {
		return err
	}
	if n != 2 {
		ip.cusd = n
	}
	code, ok := strParam(ps, 1)
	if !ok || n == 2 {
		return nil
	}
	if !registered(ip.effReg()) {
		return cmeError(30) // no network service
	}
	if ip.cfg.USSDPacked {
		b, err := hex.DecodeString(code)
		if err != nil {
			return errSyntax
		}
		u, err := gsm7.Decode(gsm7.Unpack7BitUSSD(b, 0))
		if err != nil {
			return errSyntax
		}
		code = string(u)
	}
	ip.ussdAsked = append(ip.ussdAsked, code)
	answer, known := ip.ussd[code]
	line := "+CUSD: 4"
	if known {
		line = "+CUSD: 0," + ussdText(answer, ip.cfg.USSDPacked)
	}
	ip.afterFinal = append(ip.afterFinal, func() {
		ip.out.urc([]byte("\r\n" + line + "\r\n"))
	})
	return nil
}

// ussdText returns `"<str>",<dcs>` for a USSD answer: with dcs 15 when GSM
// 7-bit holds it, as it is or, packed, as septets packed in octets in
// hexadecimal; else UCS-2 in hexadecimal with dcs 72.
func ussdText(s string, packed bool) string {
	if u, err := gsm7.Encode([]byte(s)); err == nil && packed {
		return `"` + strings.ToUpper(hex.EncodeToString(gsm7.Pack7BitUSSD(u, 0))) + `",15`
	}
	if _, err := gsm7.Encode([]byte(s)); err == nil && !strings.Contains(s, `"`) {
		return strconv.Quote(s) + ",15"
	}
	return `"` + encodeCSCS(s, "UCS2") + `",72`
}
