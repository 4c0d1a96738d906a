// SMS settings (27.005): message format, service, service centre,
// new-message indications, character set, text-mode parameters, and the
// acknowledgement of routed indications (+CNMA).

package modemsim

import (
	"fmt"
	"strings"
)

func (ip *interpreter) cmdCMGF(c command) error {
	return ip.numSetting(c, &ip.set.cmgf, 0, 1, "(0,1)")
}

func (ip *interpreter) cmdCMMS(c command) error {
	return ip.numSetting(c, &ip.set.cmms, 0, 2, "(0-2)")
}

func (ip *interpreter) cmdCSMS(c command) error {
	switch c.op {
	case opSet:
		if err := ip.numSetting(c, &ip.set.csms, 0, 1, ""); err != nil {
			return err
		}
		ip.info("+CSMS: 1,1,1") // <mt>,<mo>,<bm> supported
		return nil
	case opRead:
		ip.info(fmt.Sprintf("+CSMS: %d,1,1,1", ip.set.csms))
		return nil
	case opTest:
		return ip.numSetting(c, &ip.set.csms, 0, 1, "(0,1)")
	}
	return errSyntax
}

func (ip *interpreter) cmdCSCA(c command) error {
	switch c.op {
	case opTest:
		return nil
	case opRead, opSet:
		if err := ip.simErr(true); err != nil {
			return err
		}
	default:
		return errSyntax
	}
	if c.op == opRead {
		ip.info(fmt.Sprintf("+CSCA: %q,%d", ip.sca, ip.tosca))
		return nil
	}
	ps, err := parseParams(c.args, 2)
	if err != nil {
		return err
	}
	if ps[0].empty() {
		return errSyntax
	}
	sca := ps[0].v
	if ip.set.cscs == "UCS2" {
		if sca, err = decodeUCS2Hex(sca); err != nil {
			return errSyntax
		}
	}
	// "" is allowed: the modem then has no service centre (+CMS 330).
	if sca != "" && !validNumber(sca) {
		return errSyntax
	}
	t, err := intParam(ps, 1, toa(sca), 0, 255)
	if err != nil {
		return err
	}
	ip.sca, ip.tosca = sca, t
	return nil
}

func (ip *interpreter) cmdCNMI(c command) error {
	switch c.op {
	case opRead:
		v := ip.set.cnmi
		ip.info(fmt.Sprintf("+CNMI: %d,%d,%d,%d,%d", v[0], v[1], v[2], v[3], v[4]))
		return nil
	case opTest:
		if ip.cfg.StoreReports {
			ip.info("+CNMI: (0-3),(0-3),(0,2),(0,2),(0,1)")
		} else {
			ip.info("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)")
		}
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 5)
	if err != nil {
		return err
	}
	var v [5]int
	for i, hi := range [5]int{3, 3, 3, 2, 1} {
		if v[i], err = intParam(ps, i, 0, 0, hi); err != nil {
			return err
		}
	}
	if v[2] == 1 || v[2] == 3 {
		return cmsOperationNotSupported // cell broadcast indications are not supported
	}
	if v[3] == 1 && ip.cfg.StoreReports {
		return cmsOperationNotSupported // status reports are only stored
	}
	ip.set.cnmi = v
	return nil
}

func (ip *interpreter) cmdCSCS(c command) error {
	switch c.op {
	case opRead:
		ip.info(fmt.Sprintf("+CSCS: %q", ip.set.cscs))
		return nil
	case opTest:
		ip.info(`+CSCS: ("GSM","IRA","UCS2")`)
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 1)
	if err != nil {
		return err
	}
	s, ok := strParam(ps, 0)
	if !ok {
		return errSyntax
	}
	switch s = strings.ToUpper(s); s {
	case "GSM", "IRA", "UCS2":
		ip.set.cscs = s
		return nil
	}
	return cmeOperationNotSupported
}

func (ip *interpreter) cmdCSMP(c command) error {
	switch c.op {
	case opRead:
		v := ip.set.csmp
		ip.info(fmt.Sprintf("+CSMP: %d,%d,%d,%d", v[0], v[1], v[2], v[3]))
		return nil
	case opTest:
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 4)
	if err != nil {
		return err
	}
	v := ip.set.csmp
	for i := range v {
		if v[i], err = intParam(ps, i, v[i], 0, 255); err != nil {
			return err
		}
	}
	ip.set.csmp = v
	return nil
}

func (ip *interpreter) cmdCNMA(c command) error {
	n := 0 // RP-ACK; 2: RP-ERROR
	switch c.op {
	case opTest:
		if ip.set.cmgf == 0 {
			ip.info("+CNMA: (0-2)")
		}
		return nil
	case opSet:
		if ip.set.cmgf != 0 {
			return errSyntax
		}
		ps, err := parseParams(c.args, 1) // no <length>: no RP-ACK PDU entry
		if err != nil {
			return err
		}
		if n, err = intParam(ps, 0, 0, 0, 2); err != nil {
			return err
		}
	case opAction:
	default:
		return errSyntax
	}
	if ip.ackWait {
		// The status report the modem routed with +CDS (AT+CSMS=1).
		ip.ackWait = false
		ip.wakeReports()
		return nil
	}
	for {
		owed := ip.cnmaOwed.Load()
		if owed <= 0 {
			return cmsNoCNMAExpected
		}
		if ip.cnmaOwed.CompareAndSwap(owed, owed-1) {
			ip.cmtAcks = append(ip.cmtAcks, n)
			return nil
		}
	}
}
