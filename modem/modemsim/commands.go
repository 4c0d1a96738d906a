package modemsim

import (
	"fmt"
	"strconv"
	"strings"
)

// exec executes one command.
func (ip *interpreter) exec(c command) error {
	switch c.name {
	// V.250 basic commands.
	case "E":
		v, err := basicValue(c, 1)
		if err == nil {
			ip.set.echo = v == 1
		}
		return err
	case "V":
		v, err := basicValue(c, 1)
		if err == nil {
			ip.set.verbose = v == 1
		}
		return err
	case "Q":
		v, err := basicValue(c, 1)
		if err == nil {
			ip.set.quiet = v == 1
		}
		return err
	case "Z", "&F":
		if _, err := basicValue(c, 0); err != nil {
			return err
		}
		ip.set = defaultSettings()
		return nil
	case "I":
		if _, err := basicValue(c, 0); err != nil {
			return err
		}
		ip.info(ip.cfg.Manufacturer, ip.cfg.Model, "Revision: "+ip.cfg.Revision)
		return nil
	case "X":
		_, err := basicValue(c, 4)
		return err
	case "&C":
		_, err := basicValue(c, 1)
		return err
	case "L":
		_, err := basicValue(c, 3)
		return err
	case "&D", "M":
		_, err := basicValue(c, 2)
		return err
	case "&W", "H":
		_, err := basicValue(c, 0)
		return err
	case "T", "P":
		if c.hasNum {
			return errSyntax
		}
		return nil
	case "A", "O", "D":
		return errNoCarrier
	case "S":
		return ip.sreg(c)

	// Identification (27.007 §5, V.250 §6.1).
	case "+CGMI", "+GMI":
		return ip.ident(c, ip.cfg.Manufacturer)
	case "+CGMM", "+GMM":
		return ip.ident(c, ip.cfg.Model)
	case "+CGMR", "+GMR":
		return ip.ident(c, ip.cfg.Revision)
	case "+CGSN", "+GSN":
		if c.name == "+CGSN" && c.op == opSet {
			ps, err := parseParams(c.args, 1)
			if err != nil {
				return err
			}
			snt, err := intParam(ps, 0, 0, 0, 1)
			if err != nil {
				return err
			}
			if snt == 1 {
				ip.info(`+CGSN: "` + ip.cfg.IMEI + `"`)
			} else {
				ip.info(ip.cfg.IMEI)
			}
			return nil
		}
		if c.name == "+CGSN" && c.op == opTest {
			ip.info("+CGSN: (0-1)")
			return nil
		}
		return ip.ident(c, ip.cfg.IMEI)
	case "+CIMI":
		if c.op == opAction {
			if err := ip.simErr(false); err != nil {
				return err
			}
		}
		return ip.ident(c, ip.cfg.IMSI)
	case "+GCAP":
		return ip.ident(c, "+GCAP: +CGSM")
	case "+CMEE":
		return ip.numSetting(c, &ip.set.cmee, 0, 2, "(0-2)")
	case "+CPIN":
		return ip.cpin(c)
	case "+CFUN":
		return ip.cfunCmd(c)

	// Network (27.007 §7).
	case "+CSQ":
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
	case "+CREG":
		return ip.regCmd(c, &ip.set.cregN, false)
	case "+CGREG":
		return ip.regCmd(c, &ip.set.cgregN, false)
	case "+CEREG":
		return ip.regCmd(c, &ip.set.ceregN, true)
	case "+COPS":
		return ip.cops(c)

	// SMS (27.005).
	case "+CMGF":
		return ip.numSetting(c, &ip.set.cmgf, 0, 1, "(0,1)")
	case "+CSMS":
		return ip.csmsCmd(c)
	case "+CSCA":
		return ip.cscaCmd(c)
	case "+CNMI":
		return ip.cnmiCmd(c)
	case "+CPMS":
		return ip.cpmsCmd(c)
	case "+CSCS":
		return ip.cscsCmd(c)
	case "+CSMP":
		return ip.csmpCmd(c)
	case "+CMMS":
		return ip.numSetting(c, &ip.set.cmms, 0, 2, "(0-2)")
	case "+CNMA":
		return ip.cnmaCmd(c)
	case "+CMGS":
		return ip.cmgs(c)
	case "+CMGR":
		return ip.cmgr(c)
	case "+CMGL":
		return ip.cmgl(c)
	case "+CMGD":
		return ip.cmgd(c)
	}
	return errSyntax
}

// ident answers identification commands: action prints text, test is OK.
func (ip *interpreter) ident(c command, text string) error {
	switch c.op {
	case opAction:
		ip.info(text)
		return nil
	case opTest:
		return nil
	}
	return errSyntax
}

// numSetting handles a command whose only parameter is one number.
func (ip *interpreter) numSetting(c command, v *int, lo, hi int, rng string) error {
	switch c.op {
	case opSet:
		ps, err := parseParams(c.args, 1)
		if err != nil {
			return err
		}
		n, err := intParam(ps, 0, 0, lo, hi)
		if err != nil {
			return err
		}
		*v = n
		return nil
	case opRead:
		ip.info(c.name + ": " + strconv.Itoa(*v))
		return nil
	case opTest:
		ip.info(c.name + ": " + rng)
		return nil
	}
	return errSyntax
}

// sreg reads or writes an S register.
func (ip *interpreter) sreg(c command) error {
	switch c.num {
	case 0, 2, 3, 4, 5, 6, 7, 8, 10, 12:
	default:
		return errSyntax
	}
	hi := 255
	if c.num == 3 || c.num == 4 || c.num == 5 {
		hi = 127
	}
	switch c.op {
	case opRead:
		ip.info(fmt.Sprintf("%03d", ip.set.sreg[c.num]))
		return nil
	case opTest:
		ip.info(fmt.Sprintf("S%d: (0-%d)", c.num, hi))
		return nil
	case opSet:
		if c.args == "" || len(c.args) > 3 {
			return errSyntax
		}
		n, _ := strconv.Atoi(c.args)
		if n > hi {
			return errSyntax
		}
		ip.set.sreg[c.num] = n
		return nil
	}
	return errSyntax
}

// simErr returns the error for a SIM-dependent command while the SIM is not
// ready: +CMS ERROR for 27.005 commands, +CME ERROR otherwise.
func (ip *interpreter) simErr(cms bool) error {
	switch ip.sim {
	case simReady:
		return nil
	case simPIN:
		if cms {
			return cmsSIMPINRequired
		}
		return cmeSIMPINRequired
	case simPUK:
		if cms {
			return cmsSIMPUKRequired
		}
		return cmeSIMPUKRequired
	}
	if cms {
		return cmsSIMFailure
	}
	return cmeSIMFailure
}

func (ip *interpreter) cpin(c command) error {
	switch c.op {
	case opRead:
		switch ip.sim {
		case simReady:
			ip.info("+CPIN: READY")
		case simPIN:
			ip.info("+CPIN: SIM PIN")
		case simPUK:
			ip.info("+CPIN: SIM PUK")
		default:
			return cmeSIMFailure
		}
		return nil
	case opTest:
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 2)
	if err != nil {
		return err
	}
	code, ok := strParam(ps, 0)
	if !ok {
		return errSyntax
	}
	newPIN, hasNew := strParam(ps, 1)
	switch ip.sim {
	case simReady:
		return cmeOperationNotAllowed
	case simPIN:
		if code != ip.pin {
			ip.pinTries++
			ip.log.Info("modemsim: wrong PIN", "modem", ip.cfg.Name, "tries", ip.pinTries)
			if ip.pinTries >= 3 {
				ip.sim = simPUK
			}
			return cmeIncorrectPassword
		}
		ip.sim, ip.pinTries = simReady, 0
		return nil
	case simPUK:
		if !hasNew {
			return cmeIncorrectPassword
		}
		if ip.cfg.PUK == "" || code != ip.cfg.PUK {
			ip.pukTries++
			if ip.pukTries >= 10 {
				ip.sim = simBlocked
			}
			return cmeIncorrectPassword
		}
		ip.sim, ip.pin, ip.pinTries, ip.pukTries = simReady, newPIN, 0, 0
		return nil
	}
	return cmeSIMFailure
}

func (ip *interpreter) cfunCmd(c command) error {
	switch c.op {
	case opRead:
		ip.info("+CFUN: " + strconv.Itoa(ip.cfun))
		return nil
	case opTest:
		ip.info("+CFUN: (0,1,4),(0,1)")
		return nil
	case opSet:
	default:
		return errSyntax
	}
	ps, err := parseParams(c.args, 2)
	if err != nil {
		return err
	}
	fun, err := intParam(ps, 0, 1, 0, 4)
	if err != nil || fun == 2 || fun == 3 {
		return errSyntax
	}
	rst, err := intParam(ps, 1, 0, 0, 1)
	if err != nil {
		return err
	}
	ip.cfun = fun
	if rst == 1 {
		// A reset: settings back to defaults, the SIM asks for its PIN again.
		ip.set = defaultSettings()
		ip.copsMode = 0
		if ip.sim == simReady && ip.pin != "" {
			ip.sim = simPIN
		}
	}
	return nil
}

func (ip *interpreter) regCmd(c command, n *int, act bool) error {
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

func (ip *interpreter) cops(c command) error {
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

func (ip *interpreter) csmsCmd(c command) error {
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

func (ip *interpreter) cscaCmd(c command) error {
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

func (ip *interpreter) cnmiCmd(c command) error {
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

func (ip *interpreter) cpmsCmd(c command) error {
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

func (ip *interpreter) cscsCmd(c command) error {
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

func (ip *interpreter) csmpCmd(c command) error {
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

func (ip *interpreter) cnmaCmd(c command) error {
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
		if _, err := intParam(ps, 0, 0, 0, 2); err != nil {
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
		n := ip.cnmaOwed.Load()
		if n <= 0 {
			return cmsNoCNMAExpected
		}
		if ip.cnmaOwed.CompareAndSwap(n, n-1) {
			return nil
		}
	}
}
