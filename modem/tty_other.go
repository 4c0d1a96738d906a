//go:build !linux

package modem

import (
	"io"

	"go.bug.st/serial"
)

// openPort opens the serial device path at baud, with its input flushed.
func openPort(path string, baud int) (io.ReadWriteCloser, error) {
	port, err := serial.Open(path, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, err
	}
	_ = port.ResetInputBuffer()
	return port, nil
}
