// What the modem writes to the DTE: information text, the prompt and the
// final result code of a command line in the form ATV, ATQ, S3, S4 and
// AT+CMEE ask for, and unsolicited result codes (held during message
// entry).

package modemsim

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/simgate/simgate/modem/cms"
)

// emit writes a response after any pending echo.
func (ip *interpreter) emit(b []byte) {
	ip.flushEcho()
	ip.out.write(b)
}

func (ip *interpreter) crlf() string {
	return string([]byte{byte(ip.set.sreg[3]), byte(ip.set.sreg[4])})
}

// info writes the information text of one command.
func (ip *interpreter) info(lines ...string) {
	if len(lines) == 0 {
		return
	}
	nl := ip.crlf()
	var b []byte
	if ip.set.verbose {
		b = append(b, nl...)
		for i, l := range lines {
			if i > 0 {
				b = append(b, nl...)
			}
			b = append(b, l...)
		}
		b = append(b, nl...)
	} else {
		for _, l := range lines {
			b = append(b, l...)
			b = append(b, nl...)
		}
	}
	ip.emit(b)
}

func (ip *interpreter) prompt() []byte {
	return []byte(ip.crlf() + "> ")
}

// final writes the final result code for err (nil: OK) and reports
// registration changes made by the command line.
func (ip *interpreter) final(err error) {
	defer func() {
		ip.checkReg()
		if ip.ackWait || len(ip.held) > 0 {
			ip.wakeReports() // the command line may have changed +CNMI or +CSMS
		}
		for _, f := range ip.afterFinal {
			ip.post(f)
		}
		ip.afterFinal = nil
	}()
	if errors.Is(err, errAborted) {
		return
	}
	var cmeErr cmeError
	var cmsErr cmsError
	switch {
	case err == nil:
		ip.result("OK", 0)
	case errors.Is(err, errNoCarrier):
		ip.result("NO CARRIER", 3)
	case errors.As(err, &cmeErr):
		ip.extError("+CME ERROR: ", int(cmeErr), cmeText(int(cmeErr)))
	case errors.As(err, &cmsErr):
		ip.extError("+CMS ERROR: ", int(cmsErr), cms.Text(int(cmsErr)))
	default:
		ip.result("ERROR", 4)
	}
}

// result writes a basic result code in verbose (V1) or numeric (V0) form.
func (ip *interpreter) result(verbose string, numeric int) {
	if ip.set.quiet {
		return
	}
	cr := string(rune(ip.set.sreg[3]))
	if ip.set.verbose {
		ip.emit([]byte(ip.crlf() + verbose + ip.crlf()))
	} else {
		ip.emit([]byte(strconv.Itoa(numeric) + cr))
	}
}

// extError writes +CME ERROR / +CMS ERROR according to AT+CMEE.
func (ip *interpreter) extError(prefix string, code int, text string) {
	switch ip.set.cmee {
	case 0:
		ip.result("ERROR", 4)
		return
	case 2:
		if text == "" {
			text = strconv.Itoa(code)
		}
	default:
		text = strconv.Itoa(code)
	}
	if ip.set.quiet {
		return
	}
	if ip.set.verbose {
		ip.emit([]byte(ip.crlf() + prefix + text + ip.crlf()))
	} else {
		ip.emit([]byte(prefix + text + string(rune(ip.set.sreg[3]))))
	}
}

// output serialises everything written to the DTE: responses from the
// interpreter and unsolicited result codes from Inject or state changes.
type output struct {
	hung     *atomic.Bool
	mu       sync.Mutex
	w        io.Writer
	reserved bool // message entry in progress: URCs wait
	queued   []byte
}

// write writes a response; nothing is written while the modem is hung.
func (o *output) write(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hung.Load() {
		return
	}
	_, _ = o.w.Write(b)
}

// urc writes an unsolicited result code, or queues it while the DTE is
// entering a message (the TA-TE link is reserved, 27.005 +CNMI mode 2).
func (o *output) urc(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hung.Load() {
		return
	}
	if o.reserved {
		if len(o.queued)+len(b) <= maxQueued {
			o.queued = append(o.queued, b...)
		}
		return
	}
	_, _ = o.w.Write(b)
}

// clientAttached reports whether a client has the port open: output
// written now reaches it (or is queued for it during message entry).
func (o *output) clientAttached() bool {
	if a, ok := o.w.(interface{ attached() bool }); ok {
		return a.attached()
	}
	return true
}

// setReserved starts or ends message entry; ending it flushes queued URCs.
func (o *output) setReserved(r bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reserved = r
	if r || len(o.queued) == 0 {
		return
	}
	if !o.hung.Load() {
		_, _ = o.w.Write(o.queued)
	}
	o.queued = nil
}
