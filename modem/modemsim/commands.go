package modemsim

import (
	"fmt"
	"strconv"
)

// handlers maps every command the modem knows, by the name nextCommand
// gives it ("E", "&F", "S", "+CMGS"), to its handler; exec answers ERROR
// to any other. Handlers follow one naming scheme: a method of the
// interpreter named "cmd" followed by the command name without its prefix
// character, "&" spelled "Amp": ATE is cmdE, AT&F cmdAmpF, ATS<n> cmdS,
// AT+CMGS cmdCMGS. A handler takes the parsed command and returns nil (OK
// follows the line), an error for the final result code (errSyntax,
// cmeError, cmsError, errNoCarrier) or errSuspend when it waits for a
// message entry.
var handlers = map[string]func(*interpreter, command) error{
	// V.250 basic commands.
	"E":  (*interpreter).cmdE,
	"V":  (*interpreter).cmdV,
	"Q":  (*interpreter).cmdQ,
	"Z":  (*interpreter).cmdZ,
	"&F": (*interpreter).cmdAmpF,
	"I":  (*interpreter).cmdI,
	"X":  (*interpreter).cmdX,
	"&C": (*interpreter).cmdAmpC,
	"&D": (*interpreter).cmdAmpD,
	"&W": (*interpreter).cmdAmpW,
	"L":  (*interpreter).cmdL,
	"M":  (*interpreter).cmdM,
	"H":  (*interpreter).cmdH,
	"T":  (*interpreter).cmdT,
	"P":  (*interpreter).cmdP,
	"A":  (*interpreter).cmdA,
	"O":  (*interpreter).cmdO,
	"D":  (*interpreter).cmdD,
	"S":  (*interpreter).cmdS,

	// Identification and control (27.007 §5, §8, §9; V.250 §6.1).
	"+CGMI":  (*interpreter).cmdCGMI,
	"+GMI":   (*interpreter).cmdGMI,
	"+CGMM":  (*interpreter).cmdCGMM,
	"+GMM":   (*interpreter).cmdGMM,
	"+CGMR":  (*interpreter).cmdCGMR,
	"+GMR":   (*interpreter).cmdGMR,
	"+CGSN":  (*interpreter).cmdCGSN,
	"+GSN":   (*interpreter).cmdGSN,
	"+CIMI":  (*interpreter).cmdCIMI,
	"+GCAP":  (*interpreter).cmdGCAP,
	"+CMEE":  (*interpreter).cmdCMEE,
	"+CPIN":  (*interpreter).cmdCPIN,
	"+CPINR": (*interpreter).cmdCPINR,
	"+CFUN":  (*interpreter).cmdCFUN,

	// Network (27.007 §7).
	"+CSQ":   (*interpreter).cmdCSQ,
	"+CREG":  (*interpreter).cmdCREG,
	"+CGREG": (*interpreter).cmdCGREG,
	"+CEREG": (*interpreter).cmdCEREG,
	"+COPS":  (*interpreter).cmdCOPS,
	"+CUSD":  (*interpreter).cmdCUSD,

	// SMS (27.005).
	"+CMGF": (*interpreter).cmdCMGF,
	"+CSMS": (*interpreter).cmdCSMS,
	"+CSCA": (*interpreter).cmdCSCA,
	"+CNMI": (*interpreter).cmdCNMI,
	"+CPMS": (*interpreter).cmdCPMS,
	"+CSCS": (*interpreter).cmdCSCS,
	"+CSMP": (*interpreter).cmdCSMP,
	"+CMMS": (*interpreter).cmdCMMS,
	"+CNMA": (*interpreter).cmdCNMA,
	"+CMGS": (*interpreter).cmdCMGS,
	"+CMGR": (*interpreter).cmdCMGR,
	"+CMGL": (*interpreter).cmdCMGL,
	"+CMGD": (*interpreter).cmdCMGD,
}

// exec executes one command.
func (ip *interpreter) exec(c command) error {
	h, ok := handlers[c.name]
	if !ok {
		return errSyntax
	}
	return h(ip, c)
}

// basicSetting handles ATE, ATV and ATQ: 0 or 1 turns a setting off or on.
func basicSetting(c command, v *bool) error {
	n, err := basicValue(c, 1)
	if err == nil {
		*v = n == 1
	}
	return err
}

func (ip *interpreter) cmdE(c command) error { return basicSetting(c, &ip.set.echo) }
func (ip *interpreter) cmdV(c command) error { return basicSetting(c, &ip.set.verbose) }
func (ip *interpreter) cmdQ(c command) error { return basicSetting(c, &ip.set.quiet) }

// reset handles ATZ and AT&F: the session settings back to their defaults.
func (ip *interpreter) reset(c command) error {
	if _, err := basicValue(c, 0); err != nil {
		return err
	}
	ip.set = defaultSettings()
	return nil
}

func (ip *interpreter) cmdZ(c command) error    { return ip.reset(c) }
func (ip *interpreter) cmdAmpF(c command) error { return ip.reset(c) }

func (ip *interpreter) cmdI(c command) error {
	if _, err := basicValue(c, 0); err != nil {
		return err
	}
	ip.info(ip.cfg.Manufacturer, ip.cfg.Model, "Revision: "+ip.cfg.Revision)
	return nil
}

// accepted handles a basic command that is accepted and ignored when its
// value is at most max.
func accepted(c command, max int) error {
	_, err := basicValue(c, max)
	return err
}

func (ip *interpreter) cmdX(c command) error    { return accepted(c, 4) }
func (ip *interpreter) cmdAmpC(c command) error { return accepted(c, 1) }
func (ip *interpreter) cmdAmpD(c command) error { return accepted(c, 2) }
func (ip *interpreter) cmdAmpW(c command) error { return accepted(c, 0) }
func (ip *interpreter) cmdL(c command) error    { return accepted(c, 3) }
func (ip *interpreter) cmdM(c command) error    { return accepted(c, 2) }
func (ip *interpreter) cmdH(c command) error    { return accepted(c, 0) }

// noValue handles ATT and ATP (tone and pulse dialling): accepted and
// ignored, with no value.
func noValue(c command) error {
	if c.hasNum {
		return errSyntax
	}
	return nil
}

func (ip *interpreter) cmdT(c command) error { return noValue(c) }
func (ip *interpreter) cmdP(c command) error { return noValue(c) }

// ATA, ATO and ATD: there are no calls.
func (ip *interpreter) cmdA(command) error { return errNoCarrier }
func (ip *interpreter) cmdO(command) error { return errNoCarrier }
func (ip *interpreter) cmdD(command) error { return errNoCarrier }

func (ip *interpreter) cmdCGMI(c command) error { return ip.ident(c, ip.cfg.Manufacturer) }
func (ip *interpreter) cmdGMI(c command) error  { return ip.ident(c, ip.cfg.Manufacturer) }
func (ip *interpreter) cmdCGMM(c command) error { return ip.ident(c, ip.cfg.Model) }
func (ip *interpreter) cmdGMM(c command) error  { return ip.ident(c, ip.cfg.Model) }
func (ip *interpreter) cmdCGMR(c command) error { return ip.ident(c, ip.cfg.Revision) }
func (ip *interpreter) cmdGMR(c command) error  { return ip.ident(c, ip.cfg.Revision) }
func (ip *interpreter) cmdGSN(c command) error  { return ip.ident(c, ip.cfg.IMEI) }
func (ip *interpreter) cmdGCAP(c command) error { return ip.ident(c, "+GCAP: +CGSM") }

// cmdCGSN answers the IMEI; AT+CGSN=1 gives it as +CGSN: "<imei>".
func (ip *interpreter) cmdCGSN(c command) error {
	switch c.op {
	case opSet:
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
	case opTest:
		ip.info("+CGSN: (0-1)")
		return nil
	}
	return ip.ident(c, ip.cfg.IMEI)
}

func (ip *interpreter) cmdCIMI(c command) error {
	if c.op == opAction {
		if err := ip.simErr(false); err != nil {
			return err
		}
	}
	return ip.ident(c, ip.cfg.IMSI)
}

func (ip *interpreter) cmdCMEE(c command) error {
	if ip.cfg.NoCMEE {
		return errSyntax
	}
	return ip.numSetting(c, &ip.set.cmee, 0, 2, "(0-2)")
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

// cmdS reads or writes an S register.
func (ip *interpreter) cmdS(c command) error {
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
