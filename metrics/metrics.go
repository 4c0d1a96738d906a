// Package metrics defines simgate's Prometheus metrics and serves them, with
// liveness and readiness endpoints, over HTTP.
//
// Metrics are recorded through methods of Metrics, one per event of a job or
// a modem, so that each label set is written in one place. Labels only ever
// take values from small fixed sets (modem names from the configuration,
// job states, reasons, scopes, error classes): never a phone number, a code
// or a job id.
package metrics

import (
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/simgate/simgate/modem/cms"
	"github.com/simgate/simgate/otp"
)

const namespace = "simgate"

// Source is where a job came from: the value of the source label of
// simgate_jobs_received_total.
type Source string

// Sources of jobs.
const (
	SourceQueue   Source = "queue"   // taken from the job stream (otp.send)
	SourceRequest Source = "request" // answered on otp.request
	SourceVerify  Source = "verify"  // a managed verification's job, answered on otp.verify
)

// Duplicate is the kind of a suppressed duplicate: the value of the kind
// label of simgate_duplicates_suppressed_total.
type Duplicate string

// Kinds of duplicates.
const (
	DuplicateID   Duplicate = "id"   // a job id seen before
	DuplicateCode Duplicate = "code" // the same code to the same number
)

// Resend is why a send repeats an earlier one: the value of the reason
// label of simgate_resends_total.
type Resend string

// Resend reasons.
const (
	ResendUser           Resend = "user"            // a new job for a number whose code is still valid
	ResendRetry          Resend = "retry"           // queued again after a failed attempt
	ResendUnknownOutcome Resend = "unknown_outcome" // queued again after a send with unknown outcome
)

// HealthFailure is why a health check found a modem unable to send: the
// value of the cause label of simgate_modem_health_failures_total.
type HealthFailure string

// Health check failures.
const (
	HealthSIM          HealthFailure = "sim"          // the SIM is not ready (PIN, absent)
	HealthRegistration HealthFailure = "registration" // not registered to a network
	HealthNoAnswer     HealthFailure = "no_answer"    // the modem did not answer
)

// Report is what became of a status report: the value of the result label
// of simgate_delivery_reports_total.
type Report string

// Report results.
const (
	ReportMatched   Report = "matched"   // it belonged to a message waiting for it
	ReportUnmatched Report = "unmatched" // no message waits for it
	ReportMalformed Report = "malformed" // it could not be decoded
)

// Verification is a step of a managed verification (otp.verify): the
// value of the result label of simgate_verifications_total.
type Verification string

// Verification steps. Conversion, approved / sent per region, is what
// SMS pumping drives down.
const (
	VerificationStarted  Verification = "started"  // a new code was made and queued
	VerificationResent   Verification = "resent"   // a pending code was queued again
	VerificationSent     Verification = "sent"     // a modem confirmed the SMS of a code (new or resent)
	VerificationApproved Verification = "approved" // the right code was checked
	VerificationLocked   Verification = "locked"   // too many wrong codes
	VerificationExpired  Verification = "expired"  // a check found the code's time run out
)

// CheckRateLimited is the result label of a check refused because the
// number's checks ran out; the others are the otp.CheckStatus answered.
const CheckRateLimited = "rate_limited"

// checkResults lists the result label's values of
// simgate_verify_checks_total.
var checkResults = []string{string(otp.CheckApproved), string(otp.CheckDenied), string(otp.CheckExpired),
	string(otp.CheckLocked), string(otp.CheckNotFound), string(otp.CheckRejected), CheckRateLimited, string(otp.CheckError)}

// jobOutcomes are the states counted by simgate_jobs_total: how a job ends
// before delivery tracking.
var jobOutcomes = []otp.State{otp.StateSent, otp.StateFailed, otp.StateExpired,
	otp.StateRejected, otp.StateDuplicate, otp.StateSuperseded}

// deliveryFinal are the final delivery states counted by
// simgate_deliveries_total.
var deliveryFinal = []otp.State{otp.StateDelivered, otp.StateDeliveryFailed,
	otp.StateDeliveryExpired, otp.StateDeliveryUnknown}

// deliveryLabel is the status label of a final delivery state: delivered,
// failed, expired or unknown.
func deliveryLabel(s otp.State) string {
	return strings.TrimPrefix(string(s), "delivery_")
}

// Metrics holds simgate's collectors. Create it with New.
type Metrics struct {
	jobsReceived        *prometheus.CounterVec
	jobs                *prometheus.CounterVec
	rejected            *prometheus.CounterVec
	duplicates          *prometheus.CounterVec
	rateLimited         *prometheus.CounterVec
	resends             *prometheus.CounterVec
	smsSent             *prometheus.CounterVec
	smsParts            *prometheus.CounterVec
	smsFailed           *prometheus.CounterVec
	sendLatency         prometheus.Histogram
	cmgsDuration        *prometheus.HistogramVec
	modemUp             *prometheus.GaugeVec
	modemBusy           *prometheus.GaugeVec
	modemReady          *prometheus.GaugeVec
	modemSIMReady       *prometheus.GaugeVec
	modemRegistration   *prometheus.GaugeVec
	modemSignal         *prometheus.GaugeVec
	modemHealthFailures *prometheus.CounterVec
	modemFailuresInRow  *prometheus.GaugeVec
	modemReports        *prometheus.GaugeVec
	modemPINTries       *prometheus.GaugeVec
	deliveries          *prometheus.CounterVec
	deliveryLatency     prometheus.Histogram
	deliveryPending     prometheus.Gauge
	reports             *prometheus.CounterVec
	deadLettered        *prometheus.CounterVec
	eventRetries        prometheus.Counter
	eventsLost          prometheus.Counter
	smsReceived         *prometheus.CounterVec
	simRefused          *prometheus.CounterVec
	simBalance          *prometheus.GaugeVec
	storageUsed         *prometheus.GaugeVec
	storageSize         *prometheus.GaugeVec
	verifications       *prometheus.CounterVec
	verifyChecks        *prometheus.CounterVec
}

// New creates the metrics and registers them, with a build-info gauge, on
// reg. modems are the configured modem names: their series are created at
// zero so that dashboards and alerts see them before the first event.
func New(reg prometheus.Registerer, version string, modems []string) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		jobsReceived: counter("jobs_received_total", "Jobs received, by source (queue, request).", "source"),
		jobs:         counter("jobs_total", "Jobs that reached a final state, by outcome (sent, failed, expired, rejected, duplicate, superseded).", "outcome"),
		rejected:     counter("jobs_rejected_total", "Rejected jobs by reason.", "reason"),
		duplicates:   counter("duplicates_suppressed_total", "Duplicates suppressed, by kind (id: a job id seen before; code: no longer counted, jobs are told apart by id only).", "kind"),
		rateLimited:  counter("rate_limited_total", "Jobs refused by a rate limit or a prefix block, by scope (number, prefix, country, global).", "scope"),
		resends:      counter("resends_total", "Sends that repeat an earlier one, by reason (user: a new code while one is valid; retry: after a failed attempt; unknown_outcome: after a send whose outcome is unknown).", "reason"),
		smsSent:      counter("sms_sent_total", "Messages confirmed by the modem (+CMGS), per modem.", "modem"),
		smsParts:     counter("sms_parts_sent_total", "SMS parts confirmed by the modem (+CMGS), per modem.", "modem"),
		smsFailed:    counter("sms_failed_total", "Failed send attempts, per modem and class (retryable, permanent, unknown_outcome).", "modem", "class"),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "send_latency_seconds",
			Help:    "Time from a job's acceptance to the modem's +CMGS confirmation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		cmgsDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cmgs_duration_seconds",
			Help:    "Time spent in AT+CMGS for a whole message, per modem.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2, 5, 10, 20, 30, 60, 120},
		}, []string{"modem"}),
		modemUp:             gauge("modem_up", "1 while the modem is open and initialised.", "modem"),
		modemBusy:           gauge("modem_busy", "1 while the modem is sending.", "modem"),
		modemReady:          gauge("modem_ready", "1 while the modem takes jobs: open, SIM ready and registered.", "modem"),
		modemSIMReady:       gauge("modem_sim_ready", "1 while the SIM answers READY.", "modem"),
		modemRegistration:   gauge("modem_registration_state", "Network registration <stat> of +CREG/+CEREG: 1 home, 5 roaming, 6/7 SMS only (registered); 0 not registered, 2 searching, 3 denied, 4 unknown.", "modem"),
		modemSignal:         gauge("modem_signal_dbm", "Received signal strength from +CSQ, in dBm; NaN when the modem does not know.", "modem"),
		modemHealthFailures: counter("modem_health_failures_total", "Health checks that found the modem unable to send, by cause (sim, registration, no_answer).", "modem", "cause"),
		modemFailuresInRow:  gauge("modem_consecutive_failures", "Send attempts that failed in a row on the modem; 0 after a success.", "modem"),
		modemReports:        gauge("modem_status_reports", "How the modem passes status reports on: 0 off, 1 routed (+CDS), 2 stored (+CDSI).", "modem"),
		modemPINTries:       gauge("modem_sim_pin_tries_left", "SIM PIN tries left as the modem tells (AT+CPINR, AT^CPIN?); NaN when it does not. At 1 simgate enters no PIN.", "modem"),
		deliveries:          counter("deliveries_total", "Sent messages whose delivery reached a final status, per modem and status (delivered, failed, expired, unknown).", "modem", "status"),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "delivery_latency_seconds",
			Help:    "Time from a job's acceptance to the status report that its message was delivered.",
			Buckets: []float64{1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600},
		}),
		deliveryPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "delivery_pending",
			Help: "Sent messages waiting for a final status report.",
		}),
		reports:      counter("delivery_reports_total", "Status reports received, per modem and result (matched, unmatched, malformed).", "modem", "result"),
		deadLettered: counter("dead_lettered_total", "Jobs given up after their attempts ran out, by reason (attempts_exhausted, unknown_outcome).", "reason"),
		eventRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "event_publish_retries_total",
			Help: "Publishes of a job's event the stream did not confirm at once, tried again (a node lost, a leader election)."}),
		eventsLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "events_lost_total",
			Help: "Events of admitted jobs the stream did not confirm within a minute of trying; a redelivered job tells its final event again."}),
		storageUsed:   gauge("modem_storage_used", "Messages a memory of the modem holds (+CPMS?): SM the SIM, ME, MT, SR status reports.", "modem", "memory"),
		storageSize:   gauge("modem_storage_size", "Messages a memory of the modem can hold (+CPMS?).", "modem", "memory"),
		simBalance:    gauge("sim_balance", "The SIM's prepaid balance as the network last answered the modem's balance query (modems[].balance), in the SIM's currency.", "modem"),
		simRefused:    counter("sim_refusals_total", "Sends the network refused for the SIM's subscription rather than the message (+CMS ERROR 8, 10: barred, often a prepaid SIM out of credit; 50: not_subscribed), per modem and cause.", "modem", "cause"),
		smsReceived:   counter("sms_received_total", "Messages the modem received, published on sms.received.<modem> (their parts reassembled), per modem.", "modem"),
		verifications: counter("verifications_total", "Managed verifications (otp.verify) by ISO region of the number and step (started, resent, sent, approved, locked, expired). approved / sent per region is the conversion SMS pumping drives down.", "region", "result"),
		verifyChecks:  counter("verify_checks_total", "Answers to otp.check, by result (approved, denied, expired, locked, not_found, rejected, rate_limited, error).", "result"),
	}
	bi := gauge("build_info", "Build information; always 1.", "version", "goversion")
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
	}
	bi.WithLabelValues(version, goVersion).Set(1)

	reg.MustRegister(m.jobsReceived, m.jobs, m.rejected, m.duplicates, m.rateLimited, m.resends,
		m.smsSent, m.smsParts, m.smsFailed, m.sendLatency, m.cmgsDuration,
		m.modemUp, m.modemBusy, m.modemReady, m.modemSIMReady, m.modemRegistration,
		m.modemSignal, m.modemHealthFailures, m.modemFailuresInRow, m.modemReports, m.modemPINTries,
		m.deliveries, m.deliveryLatency, m.deliveryPending, m.reports, m.deadLettered,
		m.eventRetries, m.eventsLost, m.simBalance, m.simRefused, m.smsReceived, m.storageUsed, m.storageSize, m.verifications, m.verifyChecks, bi)

	for _, s := range jobOutcomes {
		m.jobs.WithLabelValues(string(s))
	}
	for _, r := range []Resend{ResendUser, ResendRetry, ResendUnknownOutcome} {
		m.resends.WithLabelValues(string(r))
	}
	for _, sc := range []otp.Scope{otp.ScopeNumber, otp.ScopePrefix, otp.ScopeCountry, otp.ScopeGlobal} {
		m.rateLimited.WithLabelValues(string(sc))
	}
	for _, k := range []Duplicate{DuplicateID, DuplicateCode} {
		m.duplicates.WithLabelValues(string(k))
	}
	for _, s := range []Source{SourceQueue, SourceRequest, SourceVerify} {
		m.jobsReceived.WithLabelValues(string(s))
	}
	for _, r := range []otp.Reason{otp.ReasonAttemptsExhausted, otp.ReasonUnknownOutcome} {
		m.deadLettered.WithLabelValues(string(r))
	}
	for _, r := range checkResults {
		m.verifyChecks.WithLabelValues(r)
	}
	for _, name := range modems {
		for _, st := range deliveryFinal {
			m.deliveries.WithLabelValues(name, deliveryLabel(st))
		}
		for _, r := range []Report{ReportMatched, ReportUnmatched, ReportMalformed} {
			m.reports.WithLabelValues(name, string(r))
		}
		m.modemFailuresInRow.WithLabelValues(name)
		m.smsSent.WithLabelValues(name)
		m.smsReceived.WithLabelValues(name)
		for _, cause := range cms.Accounts() {
			// From 0, so that the first refusal is an increase.
			m.simRefused.WithLabelValues(name, cause)
		}
		m.smsParts.WithLabelValues(name)
		m.modemUp.WithLabelValues(name)
		m.modemBusy.WithLabelValues(name)
		m.modemReady.WithLabelValues(name)
		m.cmgsDuration.WithLabelValues(name)
	}
	return m
}

// Received counts a job taken from src.
func (m *Metrics) Received(src Source) { m.jobsReceived.WithLabelValues(string(src)).Inc() }

// Ended counts a job that reached s, one of its final sending states
// (sent, failed, expired, rejected, duplicate, superseded). Sent jobs are
// counted by Sent, rejected ones by Rejected.
func (m *Metrics) Ended(s otp.State) { m.jobs.WithLabelValues(string(s)).Inc() }

// Rejected counts a rejected job: its outcome, its reason and, for a rate
// limit, the limit's scope.
func (m *Metrics) Rejected(re *otp.RejectError) {
	m.Ended(otp.StateRejected)
	m.rejected.WithLabelValues(string(re.Reason)).Inc()
	if re.Scope != "" {
		m.rateLimited.WithLabelValues(string(re.Scope)).Inc()
	}
}

// Suppressed counts a suppressed duplicate of kind k.
func (m *Metrics) Suppressed(k Duplicate) { m.duplicates.WithLabelValues(string(k)).Inc() }

// Resent counts a send that repeats an earlier one.
func (m *Metrics) Resent(r Resend) { m.resends.WithLabelValues(string(r)).Inc() }

// Sent counts a message a modem confirmed: its parts, the AT+CMGS time,
// the time since the job's acceptance, and the job's outcome.
func (m *Metrics) Sent(modem string, parts int, cmgs, sinceAccepted time.Duration) {
	m.modemFailuresInRow.WithLabelValues(modem).Set(0)
	m.smsSent.WithLabelValues(modem).Inc()
	m.smsParts.WithLabelValues(modem).Add(float64(parts))
	m.cmgsDuration.WithLabelValues(modem).Observe(cmgs.Seconds())
	m.sendLatency.Observe(sinceAccepted.Seconds())
	m.Ended(otp.StateSent)
}

// SendFailed counts a failed send attempt on modem, by error class
// (retryable, permanent, unknown_outcome).
func (m *Metrics) SendFailed(modem, class string) {
	m.smsFailed.WithLabelValues(modem, class).Inc()
	m.modemFailuresInRow.WithLabelValues(modem).Inc()
}

// DeadLettered counts a job given up after its attempts ran out, by reason
// (attempts_exhausted, unknown_outcome).
func (m *Metrics) DeadLettered(reason otp.Reason) {
	m.deadLettered.WithLabelValues(string(reason)).Inc()
}

// EventRetried counts a publish of an event the stream did not confirm,
// tried again.
func (m *Metrics) EventRetried() { m.eventRetries.Inc() }

// EventLost counts an event of an admitted job given up on.
func (m *Metrics) EventLost() { m.eventsLost.Inc() }

// ModemOpen records a modem opened (up) or closed, and how it passes status
// reports on (0 off, 1 routed, 2 stored).
func (m *Metrics) ModemOpen(modem string, up bool, reports int) {
	m.modemUp.WithLabelValues(modem).Set(boolValue(up))
	if up {
		m.modemReports.WithLabelValues(modem).Set(float64(reports))
	}
}

// ModemReady records whether a modem takes jobs.
func (m *Metrics) ModemReady(modem string, ready bool) {
	m.modemReady.WithLabelValues(modem).Set(boolValue(ready))
}

// ModemBusy records whether a modem is sending.
func (m *Metrics) ModemBusy(modem string, busy bool) {
	m.modemBusy.WithLabelValues(modem).Set(boolValue(busy))
}

// ModemHealth records a health check's answer: SIM ready, the registration
// <stat>, and the signal in dBm (known false: NaN).
func (m *Metrics) ModemHealth(modem string, simReady bool, registration int, signalDBm int, known bool) {
	m.modemSIMReady.WithLabelValues(modem).Set(boolValue(simReady))
	m.modemRegistration.WithLabelValues(modem).Set(float64(registration))
	signal := math.NaN()
	if known {
		signal = float64(signalDBm)
	}
	m.modemSignal.WithLabelValues(modem).Set(signal)
}

// PINTriesLeft records the SIM PIN tries left of modem; a negative n
// (unknown) is NaN.
func (m *Metrics) PINTriesLeft(modem string, n int) {
	v := math.NaN()
	if n >= 0 {
		v = float64(n)
	}
	m.modemPINTries.WithLabelValues(modem).Set(v)
}

// HealthFailed counts a health check that found modem unable to send.
func (m *Metrics) HealthFailed(modem string, cause HealthFailure) {
	m.modemHealthFailures.WithLabelValues(modem, string(cause)).Inc()
}

// Delivery counts a sent message's final delivery state s (delivered,
// delivery_failed, delivery_expired, delivery_unknown) and, when
// delivered, the time since the job's acceptance. Other states count
// nothing.
func (m *Metrics) Delivery(modem string, s otp.State, sinceAccepted time.Duration) {
	if !slices.Contains(deliveryFinal, s) {
		return
	}
	if s == otp.StateDelivered {
		m.deliveryLatency.Observe(sinceAccepted.Seconds())
	}
	m.deliveries.WithLabelValues(modem, deliveryLabel(s)).Inc()
}

// DeliveryPending records how many sent messages wait for a final status
// report.
func (m *Metrics) DeliveryPending(n int) { m.deliveryPending.Set(float64(n)) }

// Report counts a status report received from modem, by what became of it.
func (m *Metrics) Report(modem string, r Report) { m.reports.WithLabelValues(modem, string(r)).Inc() }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Verified counts a step of a managed verification of a number of region
// (its ISO region: never the number).
func (m *Metrics) Verified(region string, step Verification) {
	m.verifications.WithLabelValues(region, string(step)).Inc()
}

// Checked counts an answer to otp.check: an otp.CheckStatus, or
// CheckRateLimited.
func (m *Metrics) Checked(result string) { m.verifyChecks.WithLabelValues(result).Inc() }

// SMSReceived counts a message modem received and simgate published.
func (m *Metrics) SMSReceived(modem string) { m.smsReceived.WithLabelValues(modem).Inc() }

// ModemStorage records how full a memory of modem is.
func (m *Metrics) ModemStorage(modem, memory string, used, size int) {
	m.storageUsed.WithLabelValues(modem, memory).Set(float64(used))
	m.storageSize.WithLabelValues(modem, memory).Set(float64(size))
}

// SIMRefused counts a send the network refused for the SIM's subscription
// (cause: barred, not_subscribed; see cms.Error.Account).
func (m *Metrics) SIMRefused(modem, cause string) { m.simRefused.WithLabelValues(modem, cause).Inc() }

// SIMBalance records the SIM balance of modem.
func (m *Metrics) SIMBalance(modem string, v float64) { m.simBalance.WithLabelValues(modem).Set(v) }
