// Package metrics defines simgate's Prometheus metrics and serves them, with
// liveness and readiness endpoints, over HTTP.
//
// Labels only ever take values from small fixed sets (modem names from the
// configuration, outcomes, reasons, error classes): never a phone number, a
// code or a job id.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "simgate"

// Job outcomes, the values of the outcome label of simgate_jobs_total.
const (
	OutcomeSent       = "sent"
	OutcomeFailed     = "failed"
	OutcomeExpired    = "expired"
	OutcomeRejected   = "rejected"
	OutcomeDuplicate  = "duplicate"
	OutcomeSuperseded = "superseded"
)

// Resend reasons, the values of the reason label of simgate_resends_total.
const (
	ResendUser           = "user"            // a new job for a number whose code is still valid
	ResendRetry          = "retry"           // queued again after a failed attempt
	ResendUnknownOutcome = "unknown_outcome" // queued again after a send with unknown outcome
)

// Metrics holds simgate's collectors.
type Metrics struct {
	// JobsReceived counts jobs taken from the queue or the request endpoint
	// by source ("queue", "request").
	JobsReceived *prometheus.CounterVec
	// Jobs counts jobs that reached a final state, by outcome.
	Jobs *prometheus.CounterVec
	// Rejected counts rejected jobs by reason.
	Rejected *prometheus.CounterVec
	// Duplicates counts suppressed duplicates by kind: "id" (a job id seen
	// before) or "code" (the same code to the same number).
	Duplicates *prometheus.CounterVec
	// RateLimited counts rate_limited and prefix_blocked rejections by
	// scope (number, prefix, country, global).
	RateLimited *prometheus.CounterVec
	// Resends counts sends that repeat an earlier one, by reason (user,
	// retry, unknown_outcome).
	Resends *prometheus.CounterVec
	// SMSSent counts messages confirmed by +CMGS, per modem.
	SMSSent *prometheus.CounterVec
	// SMSParts counts SMS parts confirmed by +CMGS, per modem.
	SMSParts *prometheus.CounterVec
	// SMSFailed counts failed send attempts per modem and error class.
	SMSFailed *prometheus.CounterVec
	// SendLatency observes the time from a job's acceptance (queued) to the
	// modem's +CMGS confirmation of its last part.
	SendLatency prometheus.Histogram
	// CMGSDuration observes the time spent in AT+CMGS per message, per modem.
	CMGSDuration *prometheus.HistogramVec
	// ModemUp is 1 while a modem is open and initialised.
	ModemUp *prometheus.GaugeVec
	// ModemBusy is 1 while a modem is sending.
	ModemBusy *prometheus.GaugeVec
	// ModemReady is 1 while a modem takes jobs: open, SIM ready,
	// registered.
	ModemReady *prometheus.GaugeVec
	// ModemSIMReady is 1 while the SIM answers READY to +CPIN?.
	ModemSIMReady *prometheus.GaugeVec
	// ModemRegistration is the <stat> of +CREG/+CEREG (1 home, 5 roaming,
	// 6/7 SMS only; 0 not registered, 2 searching, 3 denied, 4 unknown).
	ModemRegistration *prometheus.GaugeVec
	// ModemSignal is the signal strength from +CSQ in dBm (NaN unknown).
	ModemSignal *prometheus.GaugeVec
	// ModemHealthFailures counts health checks that found a modem unable
	// to send, by cause (sim, registration, no_answer).
	ModemHealthFailures *prometheus.CounterVec
	// ModemConsecutiveFailures is the number of send attempts that failed
	// in a row on a modem (0 after a success).
	ModemConsecutiveFailures *prometheus.GaugeVec
	// ModemReports is how a modem passes status reports on: 0 off,
	// 1 routed (+CDS), 2 stored (+CDSI).
	ModemReports *prometheus.GaugeVec

	// Deliveries counts messages whose delivery reached a final status,
	// per modem and status (delivered, failed, expired, unknown).
	Deliveries *prometheus.CounterVec
	// DeliveryLatency observes the time from a job's acceptance to the
	// report that its message was delivered: the wait a user feels.
	DeliveryLatency prometheus.Histogram
	// DeliveryPending is the number of sent messages waiting for a final
	// status report.
	DeliveryPending prometheus.Gauge
	// Reports counts status reports received, per modem and result
	// (matched, unmatched, malformed).
	Reports *prometheus.CounterVec
	// DeadLettered counts jobs given up after their attempts ran out, by
	// reason (attempts_exhausted, unknown_outcome).
	DeadLettered *prometheus.CounterVec
}

// Delivery statuses, the values of the status label of
// simgate_deliveries_total.
const (
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryExpired   = "expired"
	DeliveryUnknown   = "unknown"
)

// Report results, the values of the result label of
// simgate_delivery_reports_total.
const (
	ReportMatched   = "matched"
	ReportUnmatched = "unmatched"
	ReportMalformed = "malformed"
)

// New creates the metrics and registers them, with a build-info gauge, on
// reg. modems are the configured modem names: their series are created at
// zero so that dashboards and alerts see them before the first event.
func New(reg prometheus.Registerer, version string, modems []string) *Metrics {
	m := &Metrics{
		JobsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_received_total",
			Help: "Jobs received, by source (queue, request).",
		}, []string{"source"}),
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_total",
			Help: "Jobs that reached a final state, by outcome (sent, failed, expired, rejected, duplicate, superseded).",
		}, []string{"outcome"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_rejected_total",
			Help: "Rejected jobs by reason.",
		}, []string{"reason"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "duplicates_suppressed_total",
			Help: "Duplicates suppressed, by kind (id: a job id seen before; code: the same code to the same number).",
		}, []string{"kind"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_total",
			Help: "Jobs refused by a rate limit or a prefix block, by scope (number, prefix, country, global).",
		}, []string{"scope"}),
		Resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "resends_total",
			Help: "Sends that repeat an earlier one, by reason (user: a new code while one is valid; retry: after a failed attempt; unknown_outcome: after a send whose outcome is unknown).",
		}, []string{"reason"}),
		SMSSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sms_sent_total",
			Help: "Messages confirmed by the modem (+CMGS), per modem.",
		}, []string{"modem"}),
		SMSParts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sms_parts_sent_total",
			Help: "SMS parts confirmed by the modem (+CMGS), per modem.",
		}, []string{"modem"}),
		SMSFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sms_failed_total",
			Help: "Failed send attempts, per modem and class (retryable, permanent, unknown_outcome).",
		}, []string{"modem", "class"}),
		SendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "send_latency_seconds",
			Help:    "Time from a job's acceptance to the modem's +CMGS confirmation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		CMGSDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cmgs_duration_seconds",
			Help:    "Time spent in AT+CMGS for a whole message, per modem.",
			Buckets: []float64{.01, .05, .1, .5, 1, 2, 5, 10, 20, 30, 60, 120},
		}, []string{"modem"}),
		ModemUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "modem_up",
			Help: "1 while the modem is open and initialised.",
		}, []string{"modem"}),
		ModemBusy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "modem_busy",
			Help: "1 while the modem is sending.",
		}, []string{"modem"}),
	}
	m.ModemReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_ready",
		Help: "1 while the modem takes jobs: open, SIM ready and registered.",
	}, []string{"modem"})
	m.ModemSIMReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_sim_ready",
		Help: "1 while the SIM answers READY.",
	}, []string{"modem"})
	m.ModemRegistration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_registration_state",
		Help: "Network registration <stat> of +CREG/+CEREG: 1 home, 5 roaming, 6/7 SMS only (registered); 0 not registered, 2 searching, 3 denied, 4 unknown.",
	}, []string{"modem"})
	m.ModemSignal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_signal_dbm",
		Help: "Received signal strength from +CSQ, in dBm; NaN when the modem does not know.",
	}, []string{"modem"})
	m.ModemHealthFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "modem_health_failures_total",
		Help: "Health checks that found the modem unable to send, by cause (sim, registration, no_answer).",
	}, []string{"modem", "cause"})
	m.ModemConsecutiveFailures = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_consecutive_failures",
		Help: "Send attempts that failed in a row on the modem; 0 after a success.",
	}, []string{"modem"})
	m.ModemReports = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "modem_status_reports",
		Help: "How the modem passes status reports on: 0 off, 1 routed (+CDS), 2 stored (+CDSI).",
	}, []string{"modem"})
	m.Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "deliveries_total",
		Help: "Sent messages whose delivery reached a final status, per modem and status (delivered, failed, expired, unknown).",
	}, []string{"modem", "status"})
	m.DeliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "delivery_latency_seconds",
		Help:    "Time from a job's acceptance to the status report that its message was delivered.",
		Buckets: []float64{1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600},
	})
	m.DeliveryPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "delivery_pending",
		Help: "Sent messages waiting for a final status report.",
	})
	m.Reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "delivery_reports_total",
		Help: "Status reports received, per modem and result (matched, unmatched, malformed).",
	}, []string{"modem", "result"})
	m.DeadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "dead_lettered_total",
		Help: "Jobs given up after their attempts ran out, by reason (attempts_exhausted, unknown_outcome).",
	}, []string{"reason"})
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
	}
	bi.WithLabelValues(version, goVersion).Set(1)

	reg.MustRegister(m.JobsReceived, m.Jobs, m.Rejected, m.Duplicates, m.RateLimited, m.Resends,
		m.SMSSent, m.SMSParts, m.SMSFailed, m.SendLatency, m.CMGSDuration,
		m.ModemUp, m.ModemBusy, m.ModemReady, m.ModemSIMReady, m.ModemRegistration,
		m.ModemSignal, m.ModemHealthFailures, m.ModemConsecutiveFailures, m.ModemReports,
		m.Deliveries, m.DeliveryLatency, m.DeliveryPending, m.Reports, m.DeadLettered, bi)

	for _, o := range []string{OutcomeSent, OutcomeFailed, OutcomeExpired, OutcomeRejected, OutcomeDuplicate, OutcomeSuperseded} {
		m.Jobs.WithLabelValues(o)
	}
	for _, r := range []string{ResendUser, ResendRetry, ResendUnknownOutcome} {
		m.Resends.WithLabelValues(r)
	}
	for _, sc := range []string{"number", "prefix", "country", "global"} {
		m.RateLimited.WithLabelValues(sc)
	}
	for _, k := range []string{"id", "code"} {
		m.Duplicates.WithLabelValues(k)
	}
	for _, s := range []string{"queue", "request"} {
		m.JobsReceived.WithLabelValues(s)
	}
	for _, r := range []string{"attempts_exhausted", "unknown_outcome"} {
		m.DeadLettered.WithLabelValues(r)
	}
	for _, name := range modems {
		for _, st := range []string{DeliveryDelivered, DeliveryFailed, DeliveryExpired, DeliveryUnknown} {
			m.Deliveries.WithLabelValues(name, st)
		}
		for _, r := range []string{ReportMatched, ReportUnmatched, ReportMalformed} {
			m.Reports.WithLabelValues(name, r)
		}
		m.ModemConsecutiveFailures.WithLabelValues(name)
		m.SMSSent.WithLabelValues(name)
		m.SMSParts.WithLabelValues(name)
		m.ModemUp.WithLabelValues(name)
		m.ModemBusy.WithLabelValues(name)
		m.ModemReady.WithLabelValues(name)
		m.CMGSDuration.WithLabelValues(name)
	}
	return m
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen starts serving on addr ("127.0.0.1:9464"; port 0 picks one). ready
// tells /readyz whether the daemon can take jobs; a non-nil error is
// reported with status 503.
func Listen(addr string, g prometheus.Gatherer, ready func() error) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		ln:  ln,
	}
	go s.srv.Serve(ln)
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server gracefully.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
