package modem

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/simgate/simgate/modem/redact"
)

// maxTraceLine bounds what is kept of a line while it is read in parts: a
// longer line is withheld.
const maxTraceLine = 1024

// tracer is the port as at.New sees it when Config.Trace is set: it logs at
// debug level each write (a command line, an escape, a message entry) and
// each line read, redacted with package redact, so that no PIN, phone
// number, PDU or message text reaches the log. Reads are split into lines
// the way at splits them: at CR or LF, and the "> " prompt on its own.
type tracer struct {
	rw  io.ReadWriter
	log *slog.Logger

	mu    sync.Mutex // guards the fields below: the read side
	part  []byte     // a line read in part
	long  int        // bytes dropped of a line longer than maxTraceLine
	entry bool       // a prompt began the line: what follows is echo
	resp  redact.Responses
}

func newTracer(rw io.ReadWriter, log *slog.Logger) *tracer {
	return &tracer{rw: rw, log: log}
}

func (t *tracer) enabled() bool {
	return t.log.Enabled(context.Background(), slog.LevelDebug)
}

// Write logs what at writes, before writing it (so that the answer cannot
// be logged first).
func (t *tracer) Write(p []byte) (int, error) {
	if t.enabled() {
		for _, l := range redact.Sent(p) {
			t.log.Debug("AT send", "line", l)
		}
	}
	return t.rw.Write(p)
}

// Read logs the complete lines read so far. It follows the lines even
// while the logger is above debug level, so that a level lowered in the
// middle of a PDU does not show its end.
func (t *tracer) Read(p []byte) (int, error) {
	n, err := t.rw.Read(p)
	if n > 0 {
		t.received(p[:n])
	}
	return n, err
}

// received logs the lines completed by p. A line held for long without its
// end is dropped as it comes (only its length is logged, at its end), and
// what follows a prompt on the same line is the message entry echoed back
// (ATE1): withheld whole.
func (t *tracer) received(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		// Line ends of any kind separate lines; empty lines and leading
		// spaces (such as the one after a prompt) are dropped.
		i := 0
	skip:
		for ; i < len(t.part); i++ {
			switch t.part[i] {
			case '\r', '\n':
				t.entry = false // the prompt's line is over: no echo
			case ' ':
			default:
				break skip
			}
		}
		t.part = t.part[i:]
		if len(t.part) == 0 {
			break
		}
		if t.part[0] == '>' && t.long == 0 { // the prompt of AT+CMGS: "> "
			t.part = t.part[1:]
			t.entry = true
			t.log.Debug("AT recv", "line", ">")
			continue
		}
		end := bytes.IndexAny(t.part, "\r\n")
		if end < 0 {
			if len(t.part) > maxTraceLine {
				t.long += len(t.part)
				t.part = t.part[:0]
			}
			break
		}
		line := redact.Withheld(t.long + end)
		if t.long == 0 && !t.entry && end <= maxTraceLine {
			line = t.resp.Line(string(t.part[:end]))
		}
		t.log.Debug("AT recv", "line", line)
		t.long, t.entry = 0, false
		t.part = t.part[end+1:]
	}
	if len(t.part) == 0 {
		t.part = nil // do not keep a large buffer
	}
}
