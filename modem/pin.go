package modem

import (
	"strconv"
	"strings"

	"github.com/warthog618/modem/info"
)

// pinTriesLeft asks the modem how many SIM PIN tries are left: AT+CPINR
// (3GPP TS 27.007 §8.65), else Huawei's AT^CPIN?. -1 when neither tells.
func (m *Modem) pinTriesLeft() int {
	for _, cmd := range []string{`+CPINR="SIM PIN"`, "^CPIN?"} {
		if lines, err := m.at.Command(cmd); err == nil {
			if n, ok := ParsePINTries(lines); ok {
				return n
			}
		}
	}
	return -1
}

// ParsePINTries finds the SIM PIN tries left in the answer to AT+CPINR or
// AT^CPIN?, skipping other lines.
func ParsePINTries(lines []string) (int, bool) {
	if n, ok := parseCPINR(lines); ok {
		return n, true
	}
	return parseHuaweiCPIN(lines)
}

// parseCPINR finds the SIM PIN's retries in the answer to AT+CPINR:
// "+CPINR: SIM PIN,<retries>,<default retries>" (some modems quote the
// code). Other lines (the PUK's, URCs) are skipped.
func parseCPINR(lines []string) (int, bool) {
	for _, l := range lines {
		if !info.HasPrefix(l, "+CPINR") {
			continue
		}
		f := strings.Split(info.TrimPrefix(l, "+CPINR"), ",")
		if len(f) < 2 || strings.Trim(strings.TrimSpace(f[0]), `"`) != "SIM PIN" {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(f[1])); err == nil && n >= 0 {
			return n, true
		}
	}
	return 0, false
}

// parseHuaweiCPIN finds the PIN tries left in the answer to AT^CPIN?:
// "^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>".
func parseHuaweiCPIN(lines []string) (int, bool) {
	for _, l := range lines {
		if !info.HasPrefix(l, "^CPIN") {
			continue
		}
		f := strings.Split(info.TrimPrefix(l, "^CPIN"), ",")
		if len(f) < 4 {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(f[3])); err == nil && n >= 0 {
			return n, true
		}
	}
	return 0, false
}
