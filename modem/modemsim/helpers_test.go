package modemsim

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"go.bug.st/serial"
)

// timeout bounds every wait of the tests.
const timeout = 5 * time.Second

// pdu is an SMS-SUBMIT ready for AT+CMGS.
type pdu struct {
	hex string // with an empty SMSC part
	len int    // TPDU length for AT+CMGS=<len>
}

// encode builds the PDUs of a message as a client would.
func encode(t testing.TB, text, to string, opts ...sms.EncoderOption) []pdu {
	t.Helper()
	opts = append(opts, sms.To(to))
	tpdus, err := sms.Encode([]byte(text), opts...)
	if err != nil {
		t.Fatal(err)
	}
	var out []pdu
	for _, tp := range tpdus {
		b, err := tp.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		p := pdumode.PDU{TPDU: b}
		h, err := p.MarshalHexString()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pdu{hex: h, len: len(b)})
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns and clears the buffer.
func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// local is an interpreter driven in-process, without a pseudo-terminal.
type local struct {
	ip   *interpreter
	out  *syncBuffer
	done chan struct{}
	disp *dispatcher
}

func newLocal(t testing.TB, cfg Config) *local {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	l := &local{out: &syncBuffer{}, done: make(chan struct{}), disp: newDispatcher()}
	l.ip = newInterpreter(cfg, l.out, l.disp.post, l.done)
	t.Cleanup(func() {
		close(l.done)
		l.disp.close()
	})
	return l
}

// exchange feeds input and returns everything written in response.
func (l *local) exchange(in string) string {
	l.ip.feed([]byte(in))
	return l.out.take()
}

// client is a DTE on the real serial path.
type client struct {
	t       testing.TB
	port    serial.Port
	chunks  chan []byte
	readErr chan error
	pending []byte
}

// dial opens the modem's port with go.bug.st/serial (no read timeout).
func dial(t testing.TB, path string) *client {
	t.Helper()
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("serial.Open(%s): %v", path, err)
	}
	c := &client{t: t, port: port, chunks: make(chan []byte, 1024), readErr: make(chan error, 1)}
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := port.Read(buf)
			if n > 0 {
				c.chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				c.readErr <- err
				return
			}
		}
	}()
	t.Cleanup(func() { port.Close() })
	return c
}

func (c *client) write(s string) {
	c.t.Helper()
	if _, err := c.port.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// fill reads until done(pending) or the deadline.
func (c *client) fill(done func([]byte) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !done(c.pending) {
		select {
		case b := <-c.chunks:
			c.pending = append(c.pending, b...)
		case <-deadline.C:
			return false
		}
	}
	return true
}

// readN returns the next n bytes received.
func (c *client) readN(n int) string {
	c.t.Helper()
	if !c.fill(func(p []byte) bool { return len(p) >= n }) {
		c.t.Fatalf("timeout waiting for %d bytes, got %q", n, c.pending)
	}
	s := string(c.pending[:n])
	c.pending = c.pending[n:]
	return s
}

// readUntil returns what was received up to and including s.
func (c *client) readUntil(s string) string {
	c.t.Helper()
	if !c.fill(func(p []byte) bool { return bytes.Contains(p, []byte(s)) }) {
		c.t.Fatalf("timeout waiting for %q, got %q", s, c.pending)
	}
	i := bytes.Index(c.pending, []byte(s)) + len(s)
	out := string(c.pending[:i])
	c.pending = c.pending[i:]
	return out
}

// command sends a command line and returns the response up to the final
// result code.
func (c *client) command(line string) string {
	c.t.Helper()
	c.write(line + "\r")
	c.t.Helper()
	if !c.fill(func(p []byte) bool { return finalIndex(p) >= 0 }) {
		c.t.Fatalf("timeout waiting for the answer to %q, got %q", line, c.pending)
	}
	i := finalIndex(c.pending)
	out := string(c.pending[:i])
	c.pending = c.pending[i:]
	return out
}

// finalIndex returns the end of the first final result code in p, or -1.
func finalIndex(p []byte) int {
	s := string(p)
	best := -1
	for _, f := range []string{"\r\nOK\r\n", "\r\nERROR\r\n", "\r\nNO CARRIER\r\n"} {
		if i := strings.Index(s, f); i >= 0 && (best < 0 || i+len(f) < best) {
			best = i + len(f)
		}
	}
	for _, f := range []string{"\r\n+CME ERROR: ", "\r\n+CMS ERROR: "} {
		if i := strings.Index(s, f); i >= 0 {
			if j := strings.Index(s[i+2:], "\r\n"); j >= 0 && (best < 0 || i+2+j+2 < best) {
				best = i + 2 + j + 2
			}
		}
	}
	return best
}

// start starts a modem and closes it at the end of the test.
func start(t testing.TB, cfg Config) *Modem {
	t.Helper()
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// waitFor receives from ch or fails after the deadline.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timeout waiting for %s", what)
		var zero T
		return zero
	}
}
