// The input state machine: bytes from the DTE, one at a time, become
// command lines (S3 ends one, S5 deletes, NUL, LF, ESC and Ctrl-Z are
// ignored, "A/" repeats the last) and, after AT+CMGS, the message entry
// that Ctrl-Z submits and ESC cancels. Echo is written from here.

package modemsim

// Special characters.
const (
	ctrlZ = 0x1a
	esc   = 0x1b
)

// inputState is the state of the byte-level input state machine.
type inputState int

const (
	stIdle inputState = iota // waiting for the "A" of "AT"
	stA                      // got "A", waiting for "T" (or "/")
	stLine                   // in a command line, waiting for S3
	stPDU                    // after AT+CMGS in PDU mode: hex until Ctrl-Z/ESC
	stText                   // after AT+CMGS in text mode: text until Ctrl-Z/ESC
)

// feed processes bytes received from the DTE.
func (ip *interpreter) feed(p []byte) {
	if ip.hung.Load() {
		ip.lostSync = true
		return
	}
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.lostSync {
		ip.resync()
	}
	for _, b := range p {
		if ip.closing() {
			return
		}
		if ip.hung.Load() { // hung by a command (Config.HangRate)
			ip.lostSync = true
			return
		}
		ip.feedByte(b)
	}
	ip.flushEcho()
}

// resync forgets a partial command line or message entry: input was
// discarded while the modem was hung.
func (ip *interpreter) resync() {
	ip.lostSync = false
	ip.st = stIdle
	ip.line = ip.line[:0]
	ip.entry = ip.entry[:0]
	ip.echoBuf = ip.echoBuf[:0]
	ip.rest = ""
	ip.out.setReserved(false)
}

func (ip *interpreter) feedByte(b byte) {
	switch ip.st {
	case stIdle:
		if b == 'A' || b == 'a' {
			ip.echo(b)
			ip.st = stA
		}
		// Anything else outside a command line (CR, LF, NUL, ESC, noise)
		// is ignored, as V.250 requires.
	case stA:
		switch b {
		case 'T', 't':
			ip.echo(b)
			ip.st = stLine
			ip.line = ip.line[:0]
			ip.overflow = false
		case '/':
			ip.echo(b)
			ip.st = stIdle
			ip.execute(ip.lastLine)
		case 'A', 'a':
			ip.echo(b)
		case 0, esc:
		default:
			ip.st = stIdle
		}
	case stLine:
		switch {
		case int(b) == ip.set.sreg[3]:
			ip.echo(b)
			ip.st = stIdle
			if ip.overflow {
				ip.lastLine = ""
				ip.final(errSyntax)
				return
			}
			ip.lastLine = string(ip.line)
			ip.execute(ip.lastLine)
		case int(b) == ip.set.sreg[5]:
			ip.echo(b)
			if n := len(ip.line); n > 0 {
				ip.line = ip.line[:n-1]
			}
		case b == 0, b == esc, b == '\n', b == ctrlZ:
			// ignored inside a command line
		default:
			ip.echo(b)
			if len(ip.line) < maxLineLen {
				ip.line = append(ip.line, b)
			} else {
				ip.overflow = true
			}
		}
	case stPDU, stText:
		ip.feedEntry(b)
	}
}

// feedEntry handles a byte of the message entered after the "> " prompt.
func (ip *interpreter) feedEntry(b byte) {
	switch {
	case b == ctrlZ:
		ip.echo(b)
		ip.flushEcho()
		ip.endEntry(true)
	case b == esc:
		ip.flushEcho()
		ip.endEntry(false)
	case b == 0:
	case ip.st == stPDU:
		ip.echo(b)
		switch {
		case b == '\r' || b == '\n' || b == ' ':
			// tolerated around the hex
		case !isHex(b) || len(ip.entry) >= maxEntryLen:
			ip.entryBad = true
		default:
			ip.entry = append(ip.entry, b)
		}
	default: // stText
		switch {
		case int(b) == ip.set.sreg[3]:
			ip.echo(b)
			ip.appendEntry(b)
			ip.emit(ip.prompt())
		case int(b) == ip.set.sreg[5]:
			ip.echo(b)
			if n := len(ip.entry); n > 0 {
				ip.entry = ip.entry[:n-1]
			}
		case b == '\n':
		default:
			ip.echo(b)
			ip.appendEntry(b)
		}
	}
}

func (ip *interpreter) appendEntry(b byte) {
	if len(ip.entry) < maxEntryLen {
		ip.entry = append(ip.entry, b)
	} else {
		ip.entryBad = true
	}
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// endEntry finishes the message entry: submit (Ctrl-Z) or cancel (ESC), then
// execute what remains of the command line.
func (ip *interpreter) endEntry(submit bool) {
	text := ip.st == stText
	ip.st = stIdle
	ip.out.setReserved(false)
	rest := ip.rest
	ip.rest = ""
	var err error
	if submit {
		if text {
			err = ip.submitText()
		} else {
			err = ip.submitPDU()
		}
	}
	ip.strayURC() // AT+CMGS is done
	if err != nil {
		ip.final(err)
		return
	}
	ip.run(rest)
}

// echo queues a received character for echo when echo is on (ATE1).
func (ip *interpreter) echo(b byte) {
	if ip.set.echo {
		ip.echoBuf = append(ip.echoBuf, b)
	}
}

func (ip *interpreter) flushEcho() {
	if len(ip.echoBuf) > 0 {
		ip.out.write(ip.echoBuf)
		ip.echoBuf = ip.echoBuf[:0]
	}
}
