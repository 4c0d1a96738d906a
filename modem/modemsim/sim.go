// The simulated SIM card and the radio: +CPIN (PIN, PUK), +CFUN, and the
// errors of SIM-dependent commands while the SIM is locked.

package modemsim

import "strconv"

// simState is the state of the simulated SIM card.
type simState int

const (
	simReady   simState = iota
	simPIN              // waiting for the PIN
	simPUK              // three wrong PINs: waiting for the PUK
	simBlocked          // ten wrong PUKs: the SIM is unusable
)

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

func (ip *interpreter) cmdCPIN(c command) error {
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

// cmdCPINR answers AT+CPINR (27.007 §8.65): the tries left for the PIN
// and the PUK, as +CPINR: <code>,<retries>,<default retries>.
func (ip *interpreter) cmdCPINR(c command) error {
	if ip.cfg.NoCPINR {
		return errSyntax
	}
	switch c.op {
	case opTest:
		return nil
	case opAction, opSet:
	default:
		return errSyntax
	}
	ip.info("+CPINR: SIM PIN," + strconv.Itoa(max(3-ip.pinTries, 0)) + ",3")
	ip.info("+CPINR: SIM PUK," + strconv.Itoa(max(10-ip.pukTries, 0)) + ",10")
	return nil
}

func (ip *interpreter) cmdCFUN(c command) error {
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
