package modem

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openPort opens the serial device path in raw mode (8N1, no flow control,
// no echo) at baud, with its input flushed.
//
// It is an *os.File whose reads wait in Go's network poller (epoll), not
// go.bug.st/serial's port: that one waits with select(2), whose descriptor
// set cannot take a descriptor above 1023, and panics on one. A daemon with
// a SIM bank of a few hundred ports and an embedded store gets there.
func openPort(path string, baud int) (io.ReadWriteCloser, error) {
	speed, ok := baudRates[baud]
	if !ok {
		return nil, fmt.Errorf("baud rate %d: not a standard rate", baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := rawMode(fd, speed); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// A non-blocking descriptor: os.NewFile hands it to the poller.
	return os.NewFile(uintptr(fd), path), nil
}

// rawMode sets fd to raw 8N1 at speed, reads returning as soon as a byte
// is there, and drops pending input.
func rawMode(fd int, speed uint32) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get terminal attributes: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set terminal attributes: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH); err != nil {
		return fmt.Errorf("flush input: %w", err)
	}
	return nil
}

// baudRates are the standard rates a modem's port may run at.
var baudRates = map[int]uint32{
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800, 921600: unix.B921600,
	1000000: unix.B1000000, 3000000: unix.B3000000, 4000000: unix.B4000000,
}
