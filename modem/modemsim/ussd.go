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
		u, err := gsm7.Decode(unpackSeptets(b))
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
	u, err := gsm7.Encode([]byte(s))
	switch {
	case err == nil && packed:
		return `"` + strings.ToUpper(hex.EncodeToString(packSeptets(u))) + `",15`
	case err == nil && !strings.Contains(s, `"`):
		return strconv.Quote(s) + ",15"
	}
	return `"` + encodeCSCS(s, "UCS2") + `",72`
}

// packSeptets packs GSM 7-bit septets into octets, least significant bit
// first, for USSD (3GPP TS 23.038 §6.1.2.3.1): 7 spare bits at the end
// are filled with CR, and a CR that ends on an octet boundary is followed
// by another. It is written apart from the driver's packing (package
// modem), so that the two check each other.
func packSeptets(u []byte) []byte {
	var out []byte
	var acc uint32
	bits := 0
	for _, s := range u {
		acc |= uint32(s&0x7f) << bits
		bits += 7
		for bits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	switch {
	case bits == 1: // 7 spare bits
		out = append(out, byte(acc)|0x0d<<1)
	case bits > 0:
		out = append(out, byte(acc))
	case len(u) > 0 && u[len(u)-1] == 0x0d:
		out = append(out, 0x0d)
	}
	return out
}

// unpackSeptets unpacks what packSeptets packs: a CR that ends on an octet
// boundary is filler.
func unpackSeptets(b []byte) []byte {
	var out []byte
	var acc uint32
	bits := 0
	for _, o := range b {
		acc |= uint32(o) << bits
		bits += 8
		for bits >= 7 {
			out = append(out, byte(acc&0x7f))
			acc >>= 7
			bits -= 7
		}
	}
	if bits == 0 && len(out) > 0 && out[len(out)-1] == 0x0d {
		out = out[:len(out)-1]
	}
	return out
}
