package modemsim

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"github.com/warthog618/sms/encoding/ucs2"
)

// cmdCMGS handles AT+CMGS: it checks the parameters, writes the "> " prompt and
// switches the input to message entry.
func (ip *interpreter) cmdCMGS(c command) error {
	switch c.op {
	case opTest:
		return nil
	case opSet:
	default:
		return errSyntax
	}
	if err := ip.simErr(true); err != nil {
		return err
	}
	if ip.cfg.FullStorageRefuses && ip.memUsed("SM") >= memCapacity {
		return cmsMemoryFull // as some modems do with a full SIM
	}
	ps, err := parseParams(c.args, 2)
	if ip.set.cmgf == 0 {
		if err != nil || len(ps) != 1 || ps[0].empty() {
			return cmsInvalidPDUParam
		}
		n, err := intParam(ps, 0, 0, 1, 176)
		if err != nil {
			return cmsInvalidPDUParam
		}
		ip.entryLen = n
		ip.st = stPDU
	} else {
		if err != nil {
			return cmsInvalidTextParam
		}
		da, ok := strParam(ps, 0)
		if !ok {
			return cmsInvalidTextParam
		}
		if ip.set.cscs == "UCS2" {
			if da, err = decodeUCS2Hex(da); err != nil {
				return cmsInvalidTextParam
			}
		}
		if !validNumber(da) {
			return cmsInvalidTextParam
		}
		t, err := intParam(ps, 1, toa(da), 128, 255)
		if err != nil {
			return cmsInvalidTextParam
		}
		ip.entryDA, ip.entryTA = da, t
		ip.st = stText
	}
	ip.entry = ip.entry[:0]
	ip.entryBad = false
	// Reserve the line first: no URC may come between the prompt and the
	// message entry.
	ip.out.setReserved(true)
	ip.emit(ip.prompt())
	return errSuspend
}

// validNumber accepts a dialling number: up to 20 digits, optional "+".
func validNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// decodeUCS2Hex decodes a string given in the "UCS2" character set (+CSCS).
func decodeUCS2Hex(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", err
	}
	r, err := ucs2.Decode(b)
	if err != nil {
		return "", err
	}
	return string(r), nil
}

// submitPDU validates the PDU entered after AT+CMGS=<length> and sends it.
func (ip *interpreter) submitPDU() error {
	hexs := string(ip.entry)
	if ip.entryBad || hexs == "" {
		return cmsInvalidPDUParam
	}
	p, err := pdumode.UnmarshalHexString(hexs)
	if err != nil || len(p.TPDU) != ip.entryLen {
		return cmsInvalidPDUParam
	}
	t, err := sms.Unmarshal(p.TPDU, sms.AsMO)
	if err != nil || t.SmsType() != tpdu.SmsSubmit {
		return cmsInvalidPDUParam
	}
	if p.SMSC.Addr == "" && ip.sca == "" {
		return cmsSMSCUnknown
	}
	return ip.send(t, hexs)
}

// submitText builds the SMS-SUBMIT for a message entered in text mode
// (one segment, parameters from +CSMP) and sends it.
func (ip *interpreter) submitText() error {
	text := string(ip.entry)
	if ip.entryBad {
		return cmsInvalidTextParam
	}
	if ip.set.cscs == "UCS2" {
		var err error
		if text, err = decodeUCS2Hex(text); err != nil {
			return cmsInvalidTextParam
		}
	}
	pdus, err := sms.Encode([]byte(text), sms.To(ip.entryDA))
	if err != nil || len(pdus) != 1 {
		return cmsInvalidTextParam
	}
	pdus[0].DA = tpdu.Address{TOA: byte(ip.entryTA), Addr: strings.TrimPrefix(ip.entryDA, "+")}
	if ip.set.csmp[0]&tpdu.FoSRR != 0 {
		pdus[0].FirstOctet |= tpdu.FoSRR
	}
	b, err := pdus[0].MarshalBinary()
	if err != nil {
		return cmsInvalidTextParam
	}
	hexs, err := (&pdumode.PDU{TPDU: b}).MarshalHexString()
	if err != nil {
		return cmsInvalidTextParam
	}
	t, err := sms.Unmarshal(b, sms.AsMO)
	if err != nil {
		return cmsInvalidTextParam
	}
	return ip.send(t, strings.ToUpper(hexs))
}

// send hands an accepted SMS-SUBMIT to the simulated network.
func (ip *interpreter) send(t *tpdu.TPDU, hexs string) error {
	if !registered(ip.effReg()) {
		return cmsNoNetworkService
	}
	if len(ip.failCodes) > 0 {
		code := ip.failCodes[0]
		ip.failCodes = ip.failCodes[1:]
		ip.log.Info("modemsim: failing send as asked", "modem", ip.cfg.Name, "code", code)
		return cmsError(code)
	}
	if ip.cfg.FailRate > 0 && ip.rng.Float64() < ip.cfg.FailRate {
		code := ip.cfg.FailCodes[ip.rng.IntN(len(ip.cfg.FailCodes))]
		ip.log.Info("modemsim: failing send at random", "modem", ip.cfg.Name, "code", code)
		return cmsError(code)
	}
	if ip.cfg.HangRate > 0 && ip.rng.Float64() < ip.cfg.HangRate {
		ip.log.Info("modemsim: hanging during a send at random", "modem", ip.cfg.Name, "for", ip.cfg.HangFor)
		ip.hangFor(ip.cfg.HangFor)
	}
	if err := ip.waitSendDelay(); err != nil {
		return err
	}
	mr := ip.nextMR
	ip.nextMR = (mr + 1) % 256

	d := decodeSubmit(t)
	if d.decodeErr != nil {
		ip.log.Warn("modemsim: cannot decode message text", "modem", ip.cfg.Name, "err", d.decodeErr)
	}
	sub := Submission{
		Modem:     ip.cfg.Name,
		MR:        mr,
		To:        t.DA.Number(),
		Text:      d.text,
		Encoding:  d.encoding,
		Part:      1,
		Parts:     1,
		ConcatRef: 0,
		SRR:       t.FirstOctet.SRR(),
		PDU:       hexs,
		At:        time.Now(),
	}
	if d.concat {
		sub.Part, sub.Parts, sub.ConcatRef = d.part, d.parts, d.ref
	}
	ip.subs = append(ip.subs, sub)
	msg, complete := ip.collect(sub, t, d)

	if ip.omitCMGS > 0 {
		// Sent, but answered with a bare OK, as some firmware does.
		ip.omitCMGS--
		ip.log.Info("modemsim: answering a send without +CMGS as asked", "modem", ip.cfg.Name)
	} else {
		ip.info("+CMGS: " + strconv.Itoa(mr))
	}
	answered := time.Now()
	ip.log.Info("modemsim: SMS submitted", "modem", ip.cfg.Name, "mr", mr, "to", mask(sub.To),
		"part", sub.Part, "parts", sub.Parts, "encoding", sub.Encoding)
	if f := ip.cfg.OnSubmit; f != nil {
		ip.afterFinal = append(ip.afterFinal, func() { f(sub) })
	}
	if complete {
		ip.msgs = append(ip.msgs, msg)
		if f := ip.cfg.OnMessage; f != nil {
			cp := msg
			cp.MRs = append([]int(nil), msg.MRs...)
			ip.afterFinal = append(ip.afterFinal, func() { f(cp) })
		}
	}
	if sub.SRR {
		ip.planReport(sub, t.DA, answered)
	}
	return nil
}

// waitSendDelay waits for the network latency with the lock released. The
// delay is re-read when SetSendDelay changes it; Close aborts the wait.
func (ip *interpreter) waitSendDelay() error {
	start := time.Now()
	if f := ip.cfg.OnSending; f != nil && ip.sendDelay > 0 {
		ip.post(f)
	}
	for {
		rem := time.Until(start.Add(ip.sendDelay))
		if rem <= 0 {
			return nil
		}
		changed := ip.delayChanged
		timer := time.NewTimer(rem)
		ip.mu.Unlock()
		select {
		case <-timer.C:
		case <-changed:
		case <-ip.done:
		}
		timer.Stop()
		ip.mu.Lock()
		if ip.closing() {
			return errAborted
		}
	}
}

// decoded is what the simulator reads from an SMS-SUBMIT.
type decoded struct {
	text, encoding   string
	concat, wide     bool
	part, parts, ref int
	decodeErr        error
}

func decodeSubmit(t *tpdu.TPDU) decoded {
	var d decoded
	alpha, _ := t.Alphabet()
	switch alpha {
	case tpdu.AlphaUCS2:
		d.encoding = "ucs2"
	case tpdu.Alpha8Bit:
		d.encoding = "8bit"
	default:
		d.encoding = "gsm7"
	}
	text, err := tpdu.DecodeUserData(t.UD, t.UDH, alpha, tpdu.WithAllCharsets)
	var dangling ucs2.ErrDanglingSurrogate
	if err != nil && !errors.As(err, &dangling) {
		d.decodeErr = err
	}
	d.text = string(text)
	if parts, part, ref, ok := t.UDH.ConcatInfo8(); ok {
		d.concat, d.parts, d.part, d.ref = true, parts, part, ref
	} else if parts, part, ref, ok := t.UDH.ConcatInfo16(); ok {
		d.concat, d.wide, d.parts, d.part, d.ref = true, true, parts, part, ref
	}
	return d
}

// concatKey identifies the parts of one concatenated message.
type concatKey struct {
	to         string
	ref, parts int
	wide       bool
}

// partial is a concatenated message being reassembled.
type partial struct {
	tpdus []*tpdu.TPDU
	texts []string
	mrs   []int
	got   int
	srr   bool
	seq   uint64
}

// collect adds a submission to its message and returns the message when it
// is complete.
func (ip *interpreter) collect(sub Submission, t *tpdu.TPDU, d decoded) (Message, bool) {
	if !d.concat || d.parts == 1 && d.part == 1 {
		return Message{
			Modem: sub.Modem, To: sub.To, Text: sub.Text, Encoding: sub.Encoding,
			Parts: 1, MRs: []int{sub.MR}, SRR: sub.SRR,
		}, true
	}
	if d.parts < 1 || d.part < 1 || d.part > d.parts {
		ip.log.Warn("modemsim: inconsistent concatenation header", "modem", ip.cfg.Name,
			"mr", sub.MR, "part", d.part, "parts", d.parts)
		return Message{}, false
	}
	k := concatKey{to: sub.To, ref: d.ref, parts: d.parts, wide: d.wide}
	p := ip.partials[k]
	if p == nil {
		if len(ip.partials) >= maxPartials {
			ip.evictOldest()
		}
		ip.partialSeq++
		p = &partial{
			tpdus: make([]*tpdu.TPDU, d.parts),
			texts: make([]string, d.parts),
			mrs:   make([]int, d.parts),
			seq:   ip.partialSeq,
		}
		ip.partials[k] = p
	}
	if p.tpdus[d.part-1] != nil {
		ip.log.Warn("modemsim: duplicate part of a concatenated message", "modem", ip.cfg.Name,
			"mr", sub.MR, "ref", d.ref, "part", d.part)
		return Message{}, false
	}
	p.tpdus[d.part-1] = t
	p.texts[d.part-1] = sub.Text
	p.mrs[d.part-1] = sub.MR
	p.srr = p.srr || sub.SRR
	p.got++
	if p.got < d.parts {
		return Message{}, false
	}
	delete(ip.partials, k)
	text := strings.Join(p.texts, "")
	if b, err := sms.Decode(p.tpdus); err == nil {
		text = string(b) // also joins UCS-2 surrogate pairs split across parts
	}
	enc := decodeSubmit(p.tpdus[0]).encoding
	return Message{
		Modem: sub.Modem, To: sub.To, Text: text, Encoding: enc,
		Parts: d.parts, MRs: p.mrs, SRR: p.srr,
	}, true
}

func (ip *interpreter) evictOldest() {
	var oldest concatKey
	var seq uint64
	for k, p := range ip.partials {
		if seq == 0 || p.seq < seq {
			oldest, seq = k, p.seq
		}
	}
	delete(ip.partials, oldest)
}

// mask hides the middle of a phone number for logs.
func mask(number string) string {
	if len(number) <= 5 {
		return strings.Repeat("*", len(number))
	}
	return number[:3] + strings.Repeat("*", len(number)-5) + number[len(number)-2:]
}
