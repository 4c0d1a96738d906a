package modem_test

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// debugLogger logs at level to buf, without times.
func debugLogger(buf *logBuffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// semiOctets returns digits as a PDU encodes them: swapped in pairs, F
// padding an odd count.
func semiOctets(digits string) string {
	if len(digits)%2 == 1 {
		digits += "F"
	}
	b := []byte(digits)
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	return string(b)
}

// The trace shows the conversation with the modem and nothing secret: not
// the PIN, not the number in any form, not the text, not a PDU.
func TestTrace(t *testing.T) {
	const (
		pin    = "8642"
		number = "+4526227921"
		text   = "Your code is 034812"
	)
	for _, tc := range []struct {
		name string
		cfg  modemsim.Config
	}{
		{"routed reports", modemsim.Config{PIN: pin}},
		{"stored reports", modemsim.Config{PIN: pin, StoreReports: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, tc.cfg)
			var buf logBuffer
			ch, tweak := reportChan(t)
			m := open(t, s, func(c *modem.Config) {
				tweak(c)
				c.PIN = pin
				c.Trace = true
				c.Logger = debugLogger(&buf, slog.LevelDebug)
			})
			long := text + strings.Repeat(" and more", 20) // two parts
			for _, msg := range []string{text, long} {
				res, err := m.Send(context.Background(), number, msg)
				if err != nil {
					t.Fatal(err)
				}
				for range res.Refs {
					if r := waitReport(t, ch); r.Recipient != number {
						t.Errorf("report for %q", r.Recipient)
					}
				}
			}
			m.Close()
			log := buf.String()

			for _, want := range []string{
				`msg="AT send" modem=m1 line=ATZ`,
				`msg="AT send" modem=m1 line="AT+CPIN=\"****\""`,
				`msg="AT send" modem=m1 line="AT+CMGS=**"`,
				`msg="AT recv" modem=m1 line=>`,
				`msg="AT send" modem=m1 line="[`, // the PDU, withheld
				`msg="AT recv" modem=m1 line="+CMGS: `,
				`msg="AT recv" modem=m1 line=OK`,
			} {
				if !strings.Contains(log, want) {
					t.Errorf("trace lacks %s", want)
				}
			}
			if tc.cfg.StoreReports {
				if !strings.Contains(log, `line="AT+CMGR=`) || !strings.Contains(log, `line="+CMGR: `) {
					t.Errorf("trace lacks the reading of a stored report")
				}
			} else if !strings.Contains(log, `line="+CDS: `) {
				t.Errorf("trace lacks the routed report")
			}

			national := strings.TrimPrefix(number, "+45")
			secrets := []string{
				pin, number, number[1:], national, semiOctets(number[1:]), semiOctets(national),
				text, "034812", "and more",
			}
			for _, sub := range s.Submissions() {
				secrets = append(secrets, sub.PDU, sub.PDU[len(sub.PDU)-16:])
			}
			for _, r := range s.Reports() {
				secrets = append(secrets, r.PDU, r.PDU[len(r.PDU)-16:])
			}
			for _, sec := range secrets {
				if strings.Contains(strings.ToUpper(log), strings.ToUpper(sec)) {
					t.Errorf("trace reveals %q", sec)
				}
			}
			// No PDU, whole or in part: no long run of hex digits, not even
			// with some of them masked.
			for _, h := range regexp.MustCompile(`[0-9A-Fa-f*]{12,}`).FindAllString(log, -1) {
				if strings.Trim(h, "*") != "" {
					t.Errorf("trace holds hex %q", h)
				}
			}
			if t.Failed() {
				t.Logf("trace:\n%s", log)
			}
		})
	}
}

// Without Config.Trace, or with the logger above debug level, nothing of
// the conversation is logged.
func TestTraceOff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trace bool
		level slog.Level
	}{
		{"trace off", false, slog.LevelDebug},
		{"logger above debug", true, slog.LevelInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, modemsim.Config{PIN: "8642"})
			var buf logBuffer
			m := open(t, s, func(c *modem.Config) {
				c.PIN = "8642"
				c.Trace = tc.trace
				c.Logger = debugLogger(&buf, tc.level)
			})
			if _, err := m.Send(context.Background(), "+4526227921", "Your code is 034812"); err != nil {
				t.Fatal(err)
			}
			m.Close()
			log := buf.String()
			for _, no := range []string{"AT send", "AT recv", "AT+", "CMGS", "OK"} {
				if strings.Contains(log, no) {
					t.Errorf("log holds %q:\n%s", no, log)
				}
			}
		})
	}
}
