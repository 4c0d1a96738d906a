package modem

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// ErrNotDeliver is returned for a PDU that decodes but is another kind of
// message (a status report read from the wrong memory, say).
var ErrNotDeliver = errors.New("not an SMS-DELIVER")

// ParseDeliver decodes the hexadecimal PDU of an incoming message, from a
// +CMT indication or a +CMGR/+CMGL answer: an SMS-DELIVER (3GPP TS 23.040
// §9.2.2.1), one part of a message when it is concatenated (its user data
// header says; sms.Collector reassembles). length is the TPDU length the
// modem announced with it, as for ParseStatusReport (< 0: the service
// centre address is present). A service centre time stamp that is not
// valid BCD, which service centres in the wild send, is read as unknown
// (the zero time) rather than losing the message.
func ParseDeliver(pdu string, length int) (*tpdu.TPDU, error) {
	t, err := tpduOf(pdu, length)
	if err != nil {
		return nil, fmt.Errorf("sms-deliver: %w", err)
	}
	if len(t) == 0 || tpdu.FirstOctet(t[0]).MTI() != tpdu.MtDeliver {
		return nil, ErrNotDeliver
	}
	tp, err := sms.Unmarshal(t, sms.AsMT)
	if err == nil {
		return tp, nil
	}
	// Try again with the time stamp replaced by a valid one; if that
	// reads, the time stamp was the only fault.
	at, ok := deliverSCTS(t)
	if !ok {
		return nil, fmt.Errorf("sms-deliver: %w", err)
	}
	fixed := append([]byte(nil), t...)
	copy(fixed[at:at+7], []byte{0x00, 0x10, 0x10, 0, 0, 0, 0}) // 2000-01-01 00:00:00 UTC
	tp, lerr := sms.Unmarshal(fixed, sms.AsMT)
	if lerr != nil {
		return nil, fmt.Errorf("sms-deliver: %w", err)
	}
	tp.SCTS = tpdu.Timestamp{Time: looseTimestamp(t[at : at+7])}
	return tp, nil
}

// deliverSCTS returns the offset of an SMS-DELIVER TPDU's TP-SCTS: after
// the first octet, TP-OA, TP-PID and TP-DCS.
func deliverSCTS(t []byte) (int, bool) {
	if len(t) < 3 {
		return 0, false
	}
	var oa tpdu.Address
	n, err := oa.UnmarshalBinary(t[1:])
	if err != nil {
		return 0, false
	}
	at := 1 + n + 2
	return at, len(t) >= at+7
}

// tpduOf returns the TPDU of a hexadecimal PDU whose TPDU is length octets
// (< 0: unknown, the service centre address present), dropping the service
// centre address in front of it.
func tpduOf(pdu string, length int) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(pdu))
	if err != nil {
		return nil, err
	}
	switch {
	case length >= 0 && len(b) == length:
		return b, nil // no service centre address
	case length >= 0 && len(b) > length:
		// <SCA length><SCA>: check it agrees with the announced length.
		if int(b[0])+1 != len(b)-length {
			return nil, fmt.Errorf("%d octets with length %d and a service centre address of %d", len(b), length, int(b[0])+1)
		}
		return b[len(b)-length:], nil
	case length >= 0:
		return nil, fmt.Errorf("%d octets, shorter than its length %d", len(b), length)
	}
	p, err := pdumode.UnmarshalBinary(b)
	if err != nil {
		return nil, err
	}
	return p.TPDU, nil
}
