package modemsim

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// Message storage (3GPP TS 27.005 §3.1, §3.4.2, §3.5.4). "SR" holds the
// status reports stored with AT+CNMI <ds>=2, "SM" (also read as "MT") the
// incoming messages (Modem.Receive); "ME" is an empty memory of the same
// capacity. Indexes start at 1.

// textStats are the <stat> values of text mode, by their PDU mode number.
var textStats = [...]string{"REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"}

// memSlots returns the slots of a memory: nil for the empty ones.
func (ip *interpreter) memSlots(mem string) []*storedReport {
	switch mem {
	case "SR":
		return ip.sr[:]
	case "SM", "MT":
		return ip.sm[:]
	}
	return nil
}

// memUsed returns the number of messages in a memory.
func (ip *interpreter) memUsed(mem string) int {
	n := 0
	for _, s := range ip.memSlots(mem) {
		if s != nil {
			n++
		}
	}
	return n
}

// stat returns the <stat> of a stored report: 0 received unread, 1 read.
func (r *storedReport) stat() int {
	if r.read {
		return 1
	}
	return 0
}

// storedLines formats a stored report for +CMGR or +CMGL (prefix includes
// "<index>," for +CMGL): one line in text mode, in PDU mode the header
// "<stat>,,<length>" and the PDU.
func (ip *interpreter) storedLines(prefix string, r *storedReport) []string {
	if ip.set.cmgf == 1 {
		if r.tp.SmsType() == tpdu.SmsDeliver {
			return []string{prefix + strconv.Quote(textStats[r.stat()]) + "," + deliverHeader(r.tp, ip.set.cscs), deliverText(r.tp)}
		}
		return []string{prefix + strconv.Quote(textStats[r.stat()]) + "," + srText(r.tp, ip.set.cscs)}
	}
	return []string{fmt.Sprintf("%s%d,,%d", prefix, r.stat(), r.n), r.hex}
}

// indexParam reads a storage index parameter.
func indexParam(ps []param, i int) (int, error) {
	if i >= len(ps) || ps[i].empty() {
		return 0, errSyntax
	}
	return intParam(ps, i, 0, 0, 999999)
}

// cmdCMGR handles AT+CMGR=<index>: read a message from <mem1>; a received
// unread message becomes read.
func (ip *interpreter) cmdCMGR(c command) error {
	switch c.op {
	case opTest:
		return nil
	case opSet:
	default:
		return errSyntax
	}
	if err := ip.simErr(true); err != nil {
		return err
	}
	ps, err := parseParams(c.args, 1)
	if err != nil {
		return err
	}
	idx, err := indexParam(ps, 0)
	if err != nil {
		return err
	}
	slots := ip.memSlots(ip.cpms[0])
	if idx < 1 || idx > len(slots) || slots[idx-1] == nil {
		return cmsInvalidMemIndex
	}
	r := slots[idx-1]
	ip.info(ip.storedLines("+CMGR: ", r)...)
	r.read = true
	return nil
}

// cmdCMGL handles AT+CMGL[=<stat>]: list the messages of <mem1> with that
// status (PDU mode 0-4, text mode "REC UNREAD" ... "ALL"; default received
// unread). Listed unread messages become read.
func (ip *interpreter) cmdCMGL(c command) error {
	stat := 0
	switch c.op {
	case opTest:
		if ip.set.cmgf == 1 {
			ip.info(`+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")`)
		} else {
			ip.info("+CMGL: (0-4)")
		}
		return nil
	case opSet:
		ps, err := parseParams(c.args, 1)
		if err != nil {
			return err
		}
		if ip.set.cmgf == 1 {
			s, ok := strParam(ps, 0)
			if !ok {
				return errSyntax
			}
			stat = -1
			for i, name := range textStats {
				if strings.EqualFold(s, name) {
					stat = i
				}
			}
			if stat < 0 {
				return errSyntax
			}
		} else if stat, err = intParam(ps, 0, 0, 0, 4); err != nil {
			return err
		}
	case opAction:
	default:
		return errSyntax
	}
	if err := ip.simErr(true); err != nil {
		return err
	}
	var lines []string
	var listed []*storedReport
	for i, r := range ip.memSlots(ip.cpms[0]) {
		if r == nil || stat != 4 && stat != r.stat() {
			continue
		}
		lines = append(lines, ip.storedLines("+CMGL: "+strconv.Itoa(i+1)+",", r)...)
		listed = append(listed, r)
	}
	ip.info(lines...)
	for _, r := range listed {
		r.read = true
	}
	return nil
}

// cmdCMGD handles AT+CMGD=<index>[,<delflag>]: delete a message from <mem1>
// (deleting an empty index is not an error), or with <delflag> 1-3 all
// read messages (received reports have no sent or unsent ones), with 4 all
// messages; <index> is then ignored and may be empty.
func (ip *interpreter) cmdCMGD(c command) error {
	switch c.op {
	case opTest:
		var used []string
		for i, r := range ip.memSlots(ip.cpms[0]) {
			if r != nil {
				used = append(used, strconv.Itoa(i+1))
			}
		}
		ip.info("+CMGD: (" + strings.Join(used, ",") + "),(0-4)")
		return nil
	case opSet:
	default:
		return errSyntax
	}
	if err := ip.simErr(true); err != nil {
		return err
	}
	ps, err := parseParams(c.args, 2)
	if err != nil {
		return err
	}
	flag, err := intParam(ps, 1, 0, 0, 4)
	if err != nil {
		return err
	}
	slots := ip.memSlots(ip.cpms[0])
	if flag > 0 {
		if _, err := intParam(ps, 0, 0, 0, 999999); err != nil {
			return err
		}
		for i, r := range slots {
			if r != nil && (flag == 4 || r.read) {
				slots[i] = nil
			}
		}
		return nil
	}
	idx, err := indexParam(ps, 0)
	if err != nil {
		return err
	}
	if idx < 1 || idx > memCapacity {
		return cmsInvalidMemIndex
	}
	if slots != nil {
		slots[idx-1] = nil
	}
	return nil
}

// encodeCSCS encodes a string for the TE character set (AT+CSCS): "UCS2"
// gives hex of UCS-2; GSM and IRA take the digits and "+" of a number as
// they are.
func encodeCSCS(s, cscs string) string {
	if cscs == "UCS2" {
		return strings.ToUpper(hex.EncodeToString(ucs2.Encode([]rune(s))))
	}
	return s
}

func (ip *interpreter) cmdCPMS(c command) error {
	const mems = `("SM","ME","MT")`
	switch c.op {
	case opTest:
		ip.info(`+CPMS: ("SM","ME","MT","SR"),` + mems + "," + mems)
		return nil
	case opRead, opSet:
		if err := ip.simErr(true); err != nil {
			return err
		}
	default:
		return errSyntax
	}
	if c.op == opRead {
		m := ip.cpms
		ip.info(fmt.Sprintf("+CPMS: %q,%d,%d,%q,%d,%d,%q,%d,%d",
			m[0], ip.memUsed(m[0]), memCapacity, m[1], ip.memUsed(m[1]), memCapacity, m[2], ip.memUsed(m[2]), memCapacity))
		return nil
	}
	ps, err := parseParams(c.args, 3)
	if err != nil {
		return err
	}
	m := ip.cpms
	n := 0
	for i := range ps {
		s, ok := strParam(ps, i)
		if !ok {
			if i == 0 {
				return errSyntax
			}
			continue
		}
		s = strings.ToUpper(s)
		// Status reports can only be read and deleted (<mem1>).
		if s != "SM" && s != "ME" && s != "MT" && (s != "SR" || i > 0) {
			return cmsOperationNotAllowed
		}
		m[i] = s
		n = i + 1
	}
	ip.cpms = m
	out := "+CPMS: "
	for i := 0; i < max(n, 1); i++ {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf("%d,%d", ip.memUsed(m[i]), memCapacity)
	}
	ip.info(out)
	return nil
}
