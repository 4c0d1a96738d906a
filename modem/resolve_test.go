package modem

import (
	"errors"
	"testing"

	"go.bug.st/serial/enumerator"
)

func TestMatchUSB(t *testing.T) {
	ports := []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB3", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "A1"},
		{Name: "/dev/ttyUSB2", IsUSB: true, VID: "2c7c", PID: "0125", SerialNumber: "A1"},
		{Name: "/dev/ttyUSB5", IsUSB: true, VID: "2c7c", PID: "0125", SerialNumber: "B2"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "1e0e", PID: "9001", SerialNumber: ""},
	}
	for _, tc := range []struct {
		m    USBMatch
		want string
		err  bool
	}{
		{USBMatch{VID: "2c7c", PID: "0125", Serial: "A1"}, "/dev/ttyUSB2", false},
		{USBMatch{VID: "2c7c", PID: "0125", Serial: "A1", Port: 1}, "/dev/ttyUSB3", false},
		{USBMatch{Serial: "B2"}, "/dev/ttyUSB5", false},
		{USBMatch{VID: "1E0E"}, "/dev/ttyACM0", false},
		{USBMatch{VID: "2c7c", Serial: "A1", Port: 2}, "", true},
		{USBMatch{VID: "ffff"}, "", true},
	} {
		got, err := matchUSB(ports, tc.m)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%+v: %q %v", tc.m, got, err)
		}
		if err != nil && !errors.Is(err, ErrNoDevice) {
			t.Errorf("%+v: %v is not ErrNoDevice", tc.m, err)
		}
	}
	// A replug renumbers the tty: the match follows it.
	ports[2].Name = "/dev/ttyUSB7"
	ports[1].Name = "/dev/ttyUSB8"
	if got, _ := matchUSB(ports, USBMatch{VID: "2c7c", PID: "0125", Serial: "A1"}); got != "/dev/ttyUSB7" {
		t.Errorf("after replug: %q", got)
	}
	if got, _ := (Config{Device: "/dev/x", USB: USBMatch{Serial: "B2"}}).Resolve(); got != "/dev/x" {
		t.Errorf("device wins: %q", got)
	}
}
