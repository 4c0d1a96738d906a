package modemsim

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// StatusReport is the status report the simulated network returns for one
// submission that requested one (TP-SRR).
type StatusReport struct {
	// TPStatus is TP-ST (3GPP TS 23.040 §9.2.3.15): 0x00 delivered,
	// 0x20-0x3F temporary error (the service centre still tries),
	// 0x40-0x7F permanent error, 0x46 validity period expired.
	TPStatus byte
	// Delay is the time from the "+CMGS: <mr>" answer to the report, used
	// as is: zero means as soon as possible after the answer, and a
	// negative delay counts as zero. Config.ReportDelay does not apply to
	// reports returned by Config.Report.
	Delay time.Duration
	// Drop makes the network never report: nothing is recorded.
	Drop bool
}

// Route is what the modem did with a status report, according to the <ds>
// parameter of AT+CNMI (3GPP TS 27.005 §3.4.1).
type Route string

// Routes of a status report.
const (
	// RouteCDS: routed to the DTE as "+CDS: <length>" and the PDU
	// (<ds>=1).
	RouteCDS Route = "cds"
	// RouteCDSI: stored in the "SR" memory and indicated with
	// `+CDSI: "SR",<index>` (<ds>=2).
	RouteCDSI Route = "cdsi"
	// RouteDropped: not routed to the DTE (<ds>=0).
	RouteDropped Route = "dropped"
	// RouteLost: the modem could not pass it on: it was hung, no client
	// had the port open (<ds>=1), or the "SR" memory was full (<ds>=2).
	RouteLost Route = "lost"
)

// SentReport is a status report the simulated network produced, and what
// the modem did with it.
type SentReport struct {
	// Modem is Config.Name.
	Modem string
	// MR, To are the message reference and destination of the submission
	// reported on (TP-MR, TP-RA).
	MR int
	To string
	// TPStatus is TP-ST.
	TPStatus byte
	// Route is what the modem did with the report.
	Route Route
	// Index is where the report was stored in the "SR" memory (from 1)
	// when Route is RouteCDSI, else 0.
	Index int
	// PDU is the report in hex, service centre address first, as in
	// +CDS and +CMGR.
	PDU string
	// At is when the report was made: its TP-DT (discharge time).
	At time.Time
}

// Status reports: storage and defaults.
const (
	memCapacity       = 30               // messages per memory, as +CPMS reports
	defaultAckTimeout = 15 * time.Second // for a +CDS that wants AT+CNMA
	defaultHangFor    = 30 * time.Second // for Config.HangRate
	stPermanentError  = 0x41             // TP-ST for Config.ReportFailRate: incompatible destination
	srFirstOctet      = 0x06             // SMS-STATUS-REPORT, TP-MMS: no more messages waiting
)

// pendingReport is a status report the network has yet to send.
type pendingReport struct {
	due    time.Time
	seq    uint64 // ties: in submission order
	sub    Submission
	ra     tpdu.Address // TP-DA of the submission, as submitted
	status byte
}

// reportQueue orders pending reports by due time.
type reportQueue []*pendingReport

func (q reportQueue) Len() int { return len(q) }
func (q reportQueue) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].seq < q[j].seq
}
func (q reportQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *reportQueue) Push(x any)   { *q = append(*q, x.(*pendingReport)) }
func (q *reportQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}

// storedReport is a status report in the "SR" memory.
type storedReport struct {
	read bool
	tp   *tpdu.TPDU
	n    int    // TPDU octets
	hex  string // with the service centre address
}

// planReport arranges the status report of a submission that requested
// one: the Report function is called, and the report queued, once the
// final result code of the command line is written. The defaults (no
// Report function) draw from the modem's random generator here, in the
// order of the sends, so that Config.Seed makes them repeatable.
func (ip *interpreter) planReport(sub Submission, ra tpdu.Address, answered time.Time) {
	fn := ip.reportFn
	var def StatusReport
	if fn == nil {
		def = StatusReport{TPStatus: ip.cfg.ReportStatus, Delay: ip.cfg.ReportDelay}
		if ip.cfg.ReportDropRate > 0 && ip.rng.Float64() < ip.cfg.ReportDropRate {
			def.Drop = true
		}
		if ip.cfg.ReportFailRate > 0 && ip.rng.Float64() < ip.cfg.ReportFailRate {
			def.TPStatus = stPermanentError
		}
	}
	ip.afterFinal = append(ip.afterFinal, func() {
		r := def
		if fn != nil {
			r = fn(sub)
		}
		ip.queueReport(sub, ra, r, answered)
	})
}

// queueReport hands a report to the network's schedule. It runs on the
// callback goroutine.
func (ip *interpreter) queueReport(sub Submission, ra tpdu.Address, r StatusReport, answered time.Time) {
	if r.Drop {
		ip.log.Info("modemsim: status report dropped by the network", "modem", ip.cfg.Name, "mr", sub.MR, "to", mask(sub.To))
		return
	}
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.closing() {
		return
	}
	ip.reportSeq++
	heap.Push(&ip.pending, &pendingReport{
		due:    answered.Add(max(r.Delay, 0)),
		seq:    ip.reportSeq,
		sub:    sub,
		ra:     ra,
		status: r.TPStatus,
	})
	ip.wakeReports()
}

// wakeReports makes the report loop look at its queue again.
func (ip *interpreter) wakeReports() {
	select {
	case ip.reportWake <- struct{}{}:
	default:
	}
}

// reportLoop sends the status reports when they are due, until the modem
// closes. Reports still pending then are dropped.
func (ip *interpreter) reportLoop() {
	defer close(ip.reportsDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		ip.mu.Lock()
		next := ip.processReports(time.Now())
		ip.mu.Unlock()
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ip.done:
			return
		case <-ip.reportWake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// processReports routes the reports due at now and returns when it must
// run again (zero: when woken).
func (ip *interpreter) processReports(now time.Time) time.Time {
	if ip.closing() {
		return time.Time{}
	}
	if ip.ackWait && (ip.set.csms != 1 || ip.set.cnmi[3] != 1) {
		// The settings changed (ATZ, AT+CSMS=0, AT+CNMI): no
		// acknowledgement is wanted any more.
		ip.ackWait = false
	}
	if ip.ackWait && !now.Before(ip.ackDeadline) {
		// 27.005 §3.4.1: without an acknowledgement in time the modem
		// disables routing to the DTE by setting <mt> and <ds> to 0.
		ip.ackWait = false
		ip.missedAcks++
		ip.set.cnmi[1], ip.set.cnmi[3] = 0, 0
		ip.log.Warn("modemsim: +CDS not acknowledged with AT+CNMA: routing disabled", "modem", ip.cfg.Name,
			"timeout", ip.cfg.AckTimeout)
	}
	for ip.pending.Len() > 0 && !ip.pending[0].due.After(now) {
		ip.held = append(ip.held, heap.Pop(&ip.pending).(*pendingReport))
	}
	for len(ip.held) > 0 && !ip.ackWait {
		p := ip.held[0]
		ip.held[0] = nil
		ip.held = ip.held[1:]
		ip.route(p, now)
	}
	var next time.Time
	if ip.pending.Len() > 0 {
		next = ip.pending[0].due
	}
	if ip.ackWait && (next.IsZero() || ip.ackDeadline.Before(next)) {
		next = ip.ackDeadline
	}
	return next
}

// route makes the SMS-STATUS-REPORT of a submission and passes it on as
// AT+CNMI <ds> says.
func (ip *interpreter) route(p *pendingReport, now time.Time) {
	rec := SentReport{Modem: ip.cfg.Name, MR: p.sub.MR, To: p.sub.To, TPStatus: p.status, At: now}
	t := &tpdu.TPDU{
		Direction:  tpdu.MT,
		FirstOctet: srFirstOctet,
		MR:         byte(p.sub.MR),
		RA:         p.ra,
		SCTS:       tpdu.Timestamp{Time: p.sub.At},
		DT:         tpdu.Timestamp{Time: now},
		ST:         p.status,
	}
	b, err := t.MarshalBinary()
	var hexs string
	if err == nil {
		smsc := pdumode.SMSCAddress{Address: tpdu.Address{TOA: byte(ip.tosca), Addr: strings.TrimPrefix(ip.sca, "+")}}
		hexs, err = (&pdumode.PDU{SMSC: smsc, TPDU: b}).MarshalHexString()
		hexs = strings.ToUpper(hexs)
	}
	rec.PDU = hexs
	switch {
	case err != nil:
		ip.log.Warn("modemsim: cannot encode status report", "modem", ip.cfg.Name, "mr", p.sub.MR, "err", err)
		rec.Route = RouteLost
	case ip.hung.Load():
		rec.Route = RouteLost
	case ip.set.cnmi[3] == 1:
		if !ip.out.clientAttached() {
			rec.Route = RouteLost
			break
		}
		if ip.set.cmgf == 1 {
			ip.out.urc([]byte("\r\n+CDS: " + srText(t, ip.set.cscs) + "\r\n"))
		} else {
			ip.out.urc([]byte("\r\n+CDS: " + strconv.Itoa(len(b)) + "\r\n" + hexs + "\r\n"))
		}
		rec.Route = RouteCDS
		if ip.set.csms == 1 {
			ip.ackWait = true
			ip.ackDeadline = now.Add(ip.cfg.AckTimeout)
		}
	case ip.set.cnmi[3] == 2:
		i := ip.store(ip.sr[:], &storedReport{tp: t, n: len(b), hex: hexs})
		if i == 0 {
			ip.log.Warn("modemsim: SR memory full: status report lost", "modem", ip.cfg.Name, "mr", p.sub.MR)
			rec.Route = RouteLost
			break
		}
		rec.Route, rec.Index = RouteCDSI, i
		// Without a client the indication is lost, not the stored report.
		ip.out.urc([]byte("\r\n+CDSI: \"SR\"," + strconv.Itoa(i) + "\r\n"))
	default:
		rec.Route = RouteDropped
	}
	ip.reports = append(ip.reports, rec)
	ip.log.Info("modemsim: status report", "modem", ip.cfg.Name, "mr", rec.MR, "to", mask(rec.To),
		"status", fmt.Sprintf("0x%02X", rec.TPStatus), "route", rec.Route, "index", rec.Index)
	if f := ip.cfg.OnReport; f != nil {
		ip.post(func() { f(rec) })
	}
}

// srText formats a status report for text mode (AT+CMGF=1), as +CDS,
// +CMGR and +CMGL show it after their leading fields:
// <fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>.
func srText(t *tpdu.TPDU, cscs string) string {
	return fmt.Sprintf("%d,%d,%q,%d,%q,%q,%d", t.FirstOctet, t.MR, encodeCSCS(t.RA.Number(), cscs), t.RA.TOA,
		textTime(t.SCTS.Time), textTime(t.DT.Time), t.ST)
}

// textTime formats a time stamp as 27.005 text mode does:
// "yy/MM/dd,hh:mm:ss±zz", zz in quarters of an hour.
func textTime(t time.Time) string {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%s%c%02d", t.Format("06/01/02,15:04:05"), sign, off/(15*60))
}
