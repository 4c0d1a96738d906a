// The simulated network: signal (+CSQ), registration (+CREG, +CGREG,
// +CEREG and their unsolicited result codes) and the operator (+COPS).

package modemsim

import (
	"fmt"
	"strconv"
)

func (ip *interpreter) cmdCSQ(c command) error {
	switch c.op {
	case opAction:
		if ip.cfun != 1 {
			ip.info("+CSQ: 99,99")
		} else {
			ip.info(fmt.Sprintf("+CSQ: %d,99", ip.signal))
		}
		return nil
	case opTest:
		ip.info("+CSQ: (0-31,99),(0-7,99)")
		return nil
	}
	return errSyntax
}

func (ip *interpreter) cmdCREG(c command) error { return ip.regSetting(c, &ip.set.cregN, false) }

func (ip *interpreter) cmdCGREG(c command) error { return ip.regSetting(c, &ip.set.cgregN, false) }

func (ip *interpreter) cmdCEREG(c command) error { return ip.regSetting(c, &ip.set.ceregN, true) }

func (ip *interpreter) regSetting(c command, n *int, act bool) error {
	switch c.op {
	case opRead:
		ip.info(regLine(c.name+": ", *n, *n, ip.effReg(), act))
		return nil
	case opSet, opTest:
		return ip.numSetting(c, n, 0, 2, "(0-2)")
	}
	return errSyntax
}

// Operator of the simulated network.
const (
	operLong    = "Simulated"
	operShort   = "Sim"
	operNumeric = "00101"
)

func (ip *interpreter) cmdCOPS(c command) error {
	switch c.op {
	case opRead:
		if !registered(ip.effReg()) {
			ip.info("+COPS: " + strconv.Itoa(ip.copsMode))
			return nil
		}
		oper := [...]string{operLong, operShort, operNumeric}[ip.set.copsFormat]
		ip.info(fmt.Sprintf("+COPS: %d,%d,%q,7", ip.copsMode, ip.set.copsFormat, oper))
		return nil
	case opTest:
		ip.info(fmt.Sprintf("+COPS: (2,%q,%q,%q,7),,(0-4),(0-2)", operLong, operShort, operNumeric))
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 4)
	if err != nil {
		return err
	}
	mode, err := intParam(ps, 0, 0, 0, 4)
	if err != nil {
		return err
	}
	format, err := intParam(ps, 1, ip.set.copsFormat, 0, 2)
	if err != nil {
		return err
	}
	if _, err := intParam(ps, 3, 7, 0, 9); err != nil {
		return err
	}
	switch mode {
	case 1, 4:
		oper, ok := strParam(ps, 2)
		if !ok {
			return errSyntax
		}
		if oper != [...]string{operLong, operShort, operNumeric}[format] {
			if mode == 1 {
				return cmeNetworkNotAllowed
			}
			mode = 0
		}
	case 3:
		if len(ps) < 2 || ps[1].empty() {
			return errSyntax
		}
		ip.set.copsFormat = format
		return nil
	}
	ip.set.copsFormat = format
	ip.copsMode = mode
	return nil
}

// effReg is the registration status the modem reports: not registered while
// the SIM is locked, the radio is off or the modem deregistered (+COPS=2).
func (ip *interpreter) effReg() int {
	if ip.sim != simReady || ip.cfun != 1 || ip.copsMode == 2 {
		return 0
	}
	return ip.reg
}

func registered(stat int) bool { return stat == 1 || stat == 5 }

// checkReg emits +CREG/+CGREG/+CEREG unsolicited result codes when the
// registration status changed and the DTE asked for them.
func (ip *interpreter) checkReg() {
	stat := ip.effReg()
	if stat == ip.regReported {
		return
	}
	ip.regReported = stat
	var lines []string
	if n := ip.set.cregN; n > 0 {
		lines = append(lines, regLine("+CREG: ", -1, n, stat, false))
	}
	if n := ip.set.cgregN; n > 0 {
		lines = append(lines, regLine("+CGREG: ", -1, n, stat, false))
	}
	if n := ip.set.ceregN; n > 0 {
		lines = append(lines, regLine("+CEREG: ", -1, n, stat, true))
	}
	for _, l := range lines {
		ip.out.urc([]byte("\r\n" + l + "\r\n"))
	}
}

// Location reported with +CREG=2 and friends.
const (
	simLAC = "1A2B"
	simCI  = "01A2B3C4"
)

// regLine formats a registration response (read form when n >= 0 is
// included) or unsolicited result code (shown < 0).
func regLine(prefix string, shown, n, stat int, act bool) string {
	s := prefix
	if shown >= 0 {
		s += strconv.Itoa(shown) + ","
	}
	s += strconv.Itoa(stat)
	if n == 2 && registered(stat) {
		s += `,"` + simLAC + `","` + simCI + `"`
		if act {
			s += ",7"
		}
	}
	return s
}
