package modem

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.bug.st/serial/enumerator"
)

// USBMatch names a modem by its USB identity instead of a device path, so
// that it is found again after a replug under another ttyUSB number.
// Empty fields match anything; at least one must be set.
type USBMatch struct {
	VID, PID string // hexadecimal, "2c7c"
	Serial   string
	// Port picks among the serial ports of one device (a 4-port modem shows
	// four), counted from 0 in device-name order; best is a udev symlink
	// with the interface number (/dev/serial/by-id/...-if02-port0).
	Port int
}

func (u USBMatch) empty() bool { return u.VID == "" && u.PID == "" && u.Serial == "" }

// ErrNoDevice is returned when no serial port matches a USBMatch.
var ErrNoDevice = errors.New("no matching USB serial port")

// Resolve returns the device path of the modem: Device as configured, or
// the serial port matching USB when Device is empty.
func (c Config) Resolve() (string, error) {
	if c.Device != "" || c.USB.empty() {
		return c.Device, nil
	}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("list serial ports: %w", err)
	}
	return matchUSB(ports, c.USB)
}

func matchUSB(ports []*enumerator.PortDetails, u USBMatch) (string, error) {
	var names []string
	for _, p := range ports {
		if !p.IsUSB {
			continue
		}
		if (u.VID == "" || strings.EqualFold(p.VID, u.VID)) &&
			(u.PID == "" || strings.EqualFold(p.PID, u.PID)) &&
			(u.Serial == "" || p.SerialNumber == u.Serial) {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	if u.Port < 0 || u.Port >= len(names) {
		return "", fmt.Errorf("%w: usb %s:%s serial %q port %d (%d found)", ErrNoDevice, u.VID, u.PID, u.Serial, u.Port, len(names))
	}
	return names[u.Port], nil
}
