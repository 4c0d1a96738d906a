package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/simgate/simgate/otp"
)

// TestMethods checks that each recording method moves the series it names,
// with the labels it promises.
func TestMethods(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record func(*Metrics)
		metric string
		want   string // the series after record, in exposition format
	}{
		{"received", func(m *Metrics) { m.Received(SourceRequest) }, "simgate_jobs_received_total",
			`simgate_jobs_received_total{source="queue"} 0
simgate_jobs_received_total{source="request"} 1
simgate_jobs_received_total{source="verify"} 0`},
		{"verified", func(m *Metrics) {
			m.Verified("DK", VerificationStarted)
			m.Verified("DK", VerificationSent)
			m.Verified("DK", VerificationApproved)
			m.Verified("SE", VerificationSent)
		}, "simgate_verifications_total",
			`simgate_verifications_total{region="DK",result="approved"} 1
simgate_verifications_total{region="DK",result="sent"} 1
simgate_verifications_total{region="DK",result="started"} 1
simgate_verifications_total{region="SE",result="sent"} 1`},
		{"checked", func(m *Metrics) {
			m.Checked(string(otp.CheckDenied))
			m.Checked(CheckRateLimited)
		}, "simgate_verify_checks_total",
			`simgate_verify_checks_total{result="approved"} 0
simgate_verify_checks_total{result="denied"} 1
simgate_verify_checks_total{result="error"} 0
simgate_verify_checks_total{result="expired"} 0
simgate_verify_checks_total{result="locked"} 0
simgate_verify_checks_total{result="not_found"} 0
simgate_verify_checks_total{result="rate_limited"} 1
simgate_verify_checks_total{result="rejected"} 0`},
		{"rejected with scope", func(m *Metrics) {
			m.Rejected(&otp.RejectError{Reason: otp.ReasonRateLimited, Scope: otp.ScopeCountry})
		}, "simgate_rate_limited_total",
			`simgate_rate_limited_total{scope="country"} 1
simgate_rate_limited_total{scope="global"} 0
simgate_rate_limited_total{scope="number"} 0
simgate_rate_limited_total{scope="prefix"} 0`},
		{"sim refused", func(m *Metrics) { m.SIMRefused("m1", "barred") }, "simgate_sim_refusals_total",
			// From 0 for every cause, so that the first refusal is an
			// increase (SimgateSIMRefused).
			`simgate_sim_refusals_total{cause="barred",modem="m1"} 1
simgate_sim_refusals_total{cause="not_subscribed",modem="m1"} 0`},
		{"rejected reason", func(m *Metrics) { m.Rejected(&otp.RejectError{Reason: otp.ReasonInvalidCode}) }, "simgate_jobs_rejected_total",
			`simgate_jobs_rejected_total{reason="invalid_code"} 1`},
		{"sent", func(m *Metrics) {
			m.SendFailed("m1", "retryable")
			m.Sent("m1", 2, time.Second, 3*time.Second)
		}, "simgate_sms_parts_sent_total",
			`simgate_sms_parts_sent_total{modem="m1"} 2`},
		{"a success resets failures in a row", func(m *Metrics) {
			m.SendFailed("m1", "retryable")
			m.Sent("m1", 1, time.Second, time.Second)
		}, "simgate_modem_consecutive_failures",
			`simgate_modem_consecutive_failures{modem="m1"} 0`},
		{"failures in a row", func(m *Metrics) {
			m.SendFailed("m1", "retryable")
			m.SendFailed("m1", "permanent")
		}, "simgate_modem_consecutive_failures",
			`simgate_modem_consecutive_failures{modem="m1"} 2`},
		{"delivery label drops the prefix", func(m *Metrics) {
			m.Delivery("m1", otp.StateDeliveryExpired, time.Minute)
			m.Delivery("m1", otp.StateDeliveryPending, time.Minute) // not final: nothing
			m.Delivery("m1", otp.StateRejected, time.Minute)        // not a delivery: nothing
		}, "simgate_deliveries_total",
			`simgate_deliveries_total{modem="m1",status="delivered"} 0
simgate_deliveries_total{modem="m1",status="expired"} 1
simgate_deliveries_total{modem="m1",status="failed"} 0
simgate_deliveries_total{modem="m1",status="unknown"} 0`},
		{"modem health", func(m *Metrics) { m.ModemHealth("m1", true, 5, -71, true) }, "simgate_modem_signal_dbm",
			`simgate_modem_signal_dbm{modem="m1"} -71`},
		{"health failure", func(m *Metrics) { m.HealthFailed("m1", HealthRegistration) }, "simgate_modem_health_failures_total",
			`simgate_modem_health_failures_total{cause="registration",modem="m1"} 1`},
		{"modem open", func(m *Metrics) { m.ModemOpen("m1", true, 2) }, "simgate_modem_status_reports",
			`simgate_modem_status_reports{modem="m1"} 2`},
		{"report", func(m *Metrics) { m.Report("m1", ReportUnmatched) }, "simgate_delivery_reports_total",
			`simgate_delivery_reports_total{modem="m1",result="malformed"} 0
simgate_delivery_reports_total{modem="m1",result="matched"} 0
simgate_delivery_reports_total{modem="m1",result="unmatched"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := New(reg, "test", []string{"m1"})
			tc.record(m)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var help, typ string
			for _, mf := range mfs {
				if mf.GetName() == tc.metric {
					help, typ = mf.GetHelp(), strings.ToLower(mf.GetType().String())
				}
			}
			exp := "# HELP " + tc.metric + " " + help + "\n# TYPE " + tc.metric + " " + typ + "\n" + tc.want + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), tc.metric); err != nil {
				t.Error(err)
			}
		})
	}
}
