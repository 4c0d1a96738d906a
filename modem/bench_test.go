package modem_test

import (
	"context"
	"testing"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

// BenchmarkSend measures one single-part SMS through the serial path to a
// simulated modem with no network delay: the AT+CMGS exchange's own cost
// (command, prompt, PDU, answer over a pseudo-terminal), which adds to
// every send's network time.
func BenchmarkSend(b *testing.B) {
	for _, reports := range []bool{false, true} {
		name := "reports=off"
		if reports {
			name = "reports=on"
		}
		b.Run(name, func(b *testing.B) {
			s, err := modemsim.Start(modemsim.Config{Name: "sim"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cfg := modem.Config{Name: "m1", Device: s.Path(), CommandTimeout: 2 * time.Second, SendTimeout: 5 * time.Second}
			if reports {
				cfg.OnReport = func(modem.Report, error) {}
			}
			m, err := modem.Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ctx := context.Background()
			for b.Loop() {
				if _, err := m.Send(ctx, "+4526227921", "Your code is 034812"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
