package modem

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// chunks is a port that reads the given chunks one by one.
type chunks struct {
	r       [][]byte
	written bytes.Buffer
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.r) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.r[0])
	if c.r[0] = c.r[0][n:]; len(c.r[0]) == 0 {
		c.r = c.r[1:]
	}
	return n, nil
}

func (c *chunks) Write(p []byte) (int, error) { return c.written.Write(p) }

// traced returns the lines the tracer logs when the modem sends in, cut
// into reads of n bytes.
func traced(t *testing.T, in string, n int) []string {
	t.Helper()
	port := &chunks{}
	for i := 0; i < len(in); i += n {
		port.r = append(port.r, []byte(in[i:min(i+n, len(in))]))
	}
	var buf bytes.Buffer
	var got []string
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := newTracer(port, log)
	if _, err := io.Copy(io.Discard, tr); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		i := strings.Index(l, `"line":`)
		if i < 0 {
			t.Fatalf("no line in %s", l)
		}
		got = append(got, strings.TrimSuffix(l[i+len(`"line":`):], "}"))
	}
	return got
}

func TestTracerSplitsLines(t *testing.T) {
	const pdu = "0006D60B911326880736F4111011719551401110117195714000"
	in := "\r\nOK\r\n\r\n> " + "\r\n+CMGS: 7\r\n\r\nOK\r\n" +
		"\r\n+CDS: 25\r\n" + pdu + "\r\n" + "ATE0\r\r\nOK\r\n" + strings.Repeat("x", 3*maxTraceLine) + "12F1\r\n" +
		"> hello\r\r\n> 1234 world\x1a\r\n+CMGS: 8\r\n"
	want := []string{`"OK"`, `">"`, `"+CMGS: 7"`, `"OK"`, `"+CDS: 25"`, `"[52 bytes withheld]"`, `"ATE0"`, `"OK"`, `"[3076 bytes withheld]"`,
		`">"`, `"[5 bytes withheld]"`, `">"`, `"[11 bytes withheld]"`, `"+CMGS: 8"`}
	for _, n := range []int{1, 2, 3, 7, 64, len(in)} {
		got := traced(t, in, n)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("reads of %d bytes: logged %s, want %s", n, got, want)
		}
	}
}

func TestTracerPassesThrough(t *testing.T) {
	port := &chunks{r: [][]byte{[]byte("\r\nOK\r\n")}}
	tr := newTracer(port, slog.New(slog.DiscardHandler))
	got, err := io.ReadAll(tr)
	if err != nil || string(got) != "\r\nOK\r\n" {
		t.Errorf("read %q, %v", got, err)
	}
	if _, err := tr.Write([]byte("AT+CPIN=\"1234\"\r\n")); err != nil || port.written.String() != "AT+CPIN=\"1234\"\r\n" {
		t.Errorf("wrote %q, %v", port.written.String(), err)
	}
}
