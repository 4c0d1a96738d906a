package modem_test

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/tpdu"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

// reportChan returns a modem config tweak that delivers reports on a
// channel.
func reportChan(t *testing.T) (chan modem.Report, func(*modem.Config)) {
	ch := make(chan modem.Report, 16)
	return ch, func(c *modem.Config) {
		c.OnReport = func(r modem.Report, err error) {
			if err != nil {
				t.Errorf("report: %v", err)
				return
			}
			ch <- r
		}
	}
}

func waitReport(t *testing.T, ch chan modem.Report) modem.Report {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no status report")
		return modem.Report{}
	}
}

func TestStatusReports(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   modemsim.Config
		mode  modem.ReportMode
		route modemsim.Route
	}{
		{"routed", modemsim.Config{}, modem.ReportsRouted, modemsim.RouteCDS},
		{"stored", modemsim.Config{StoreReports: true}, modem.ReportsStored, modemsim.RouteCDSI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.FirstMR = 255
			tc.cfg.Report = func(sub modemsim.Submission) modemsim.StatusReport {
				// The second part's report comes first.
				return modemsim.StatusReport{TPStatus: 0, Delay: time.Duration(2-sub.Part) * 50 * time.Millisecond}
			}
			s := startSim(t, tc.cfg)
			ch, tweak := reportChan(t)
			m := open(t, s, tweak)
			if m.Reports() != tc.mode {
				t.Fatalf("report mode %s, want %s", m.Reports(), tc.mode)
			}
			long := strings.Repeat("x", 100) + "Your code is 034812. This message is long enough to need two parts because it goes on and on and on, well past one hundred and sixty characters of GSM text."
			res, err := m.Send(context.Background(), "+4526227921", long, modem.WithValidity(10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Report || len(res.Refs) != 2 || res.Refs[0] != 255 || res.Refs[1] != 0 {
				t.Fatalf("result %+v", res)
			}
			got := map[int]bool{}
			for range 2 {
				r := waitReport(t, ch)
				if r.Recipient != "+4526227921" || r.Delivery() != modem.Delivered {
					t.Errorf("report %+v", r)
				}
				got[r.MR] = true
			}
			if !got[255] || !got[0] {
				t.Errorf("reports for %v, want 255 and 0", got)
			}
			for _, sr := range s.Reports() {
				if sr.Route != tc.route {
					t.Errorf("routed %s, want %s", sr.Route, tc.route)
				}
			}
			for _, sub := range s.Submissions() {
				if !sub.SRR {
					t.Error("part without TP-SRR")
				}
			}
		})
	}
}

// A modem without OnReport asks for no report and leaves AT+CNMI alone.
func TestNoReportsWithoutHandler(t *testing.T) {
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	if m.Reports() != modem.ReportsOff {
		t.Fatalf("mode %s", m.Reports())
	}
	res, err := m.Send(context.Background(), "+4526227921", "x")
	if err != nil || res.Report {
		t.Fatalf("%+v %v", res, err)
	}
	if s.Submissions()[0].SRR {
		t.Error("TP-SRR set")
	}
}

// A report routed while AT+CMGS waits for the network reaches OnReport
// and does not disturb the send.
func TestReportDuringSend(t *testing.T) {
	sending := make(chan struct{}, 1)
	s := startSim(t, modemsim.Config{SendDelay: time.Hour, FirstMR: 41, OnSending: func() { sending <- struct{}{} },
		Report: func(modemsim.Submission) modemsim.StatusReport { return modemsim.StatusReport{Drop: true} }})
	ch, tweak := reportChan(t)
	m := open(t, s, tweak)
	done := make(chan error, 1)
	go func() {
		res, err := m.Send(context.Background(), "+4526227999", "second")
		if err == nil && (len(res.Refs) != 1 || res.Refs[0] != 41) {
			t.Errorf("refs %v, want [41]", res.Refs)
		}
		done <- err
	}()
	<-sending
	// A late report on an earlier message, mid-command.
	tp := &tpdu.TPDU{Direction: tpdu.MT, MR: 40, ST: 0x21}
	tp.FirstOctet = tpdu.FirstOctet(tpdu.MtCommand)
	tp.RA = tpdu.NewAddress(tpdu.FromNumber("+4526227921"))
	tp.SCTS = tpdu.Timestamp{Time: time.Now()}
	tp.DT = tp.SCTS
	b, err := tp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s.Inject("+CDS: "+strconv.Itoa(len(b)), "00"+strings.ToUpper(hex.EncodeToString(b)))
	r := waitReport(t, ch)
	if r.MR != 40 || r.Recipient != "+4526227921" || r.Delivery() != modem.Pending {
		t.Errorf("report %+v", r)
	}
	s.SetSendDelay(0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
