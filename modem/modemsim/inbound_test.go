package modemsim

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// readPDU decodes the SMS-DELIVER in a +CMGR answer or a +CMT indication
// (its PDU on the line after the header).
func readPDU(t *testing.T, answer string) *tpdu.TPDU {
	t.Helper()
	m := regexp.MustCompile(`(?m)^([0-9A-F]{20,})\r?$`).FindStringSubmatch(answer)
	if m == nil {
		t.Fatalf("no PDU in %q", answer)
	}
	b, _ := hex.DecodeString(m[1])
	p, err := pdumode.UnmarshalBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := sms.Unmarshal(p.TPDU, sms.AsMT)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestReceive: incoming messages are stored and indicated (+CMTI), read
// back by index in PDU and text mode, concatenated parts carry their
// reassembly header, a full memory loses what comes, and <mt>=2 routes a
// message (+CMT) without storing it.
func TestReceive(t *testing.T) {
	l := newLocal(t, Config{})
	m := l.modem()
	l.exchange("ATE0;+CMGF=0;+CNMI=2,1,0,0,0;+CPMS=\"SM\",\"SM\",\"SM\"\r")

	ds, err := m.Receive(Incoming{From: "+4520000000", Text: "STOP"})
	if err != nil || len(ds) != 1 || ds[0] != (Delivery{Route: RouteCMTI, Index: 1}) {
		t.Fatalf("receive: %+v %v", ds, err)
	}
	if got := l.out.take(); got != "\r\n+CMTI: \"SM\",1\r\n" {
		t.Errorf("indication %q", got)
	}
	tp := readPDU(t, l.exchange("AT+CMGR=1\r"))
	if msg, _ := sms.Decode([]*tpdu.TPDU{tp}); string(msg) != "STOP" || tp.OA.Number() != "+4520000000" || tp.SmsType() != tpdu.SmsDeliver {
		t.Errorf("read back %q from %s", msg, tp.OA.Number())
	}

	// Two UCS-2 parts, both stored, reassembled by their header.
	long := strings.Repeat("Ваш баланс: 12,34 EUR. ", 4)
	ds, err = m.Receive(Incoming{From: "Telco", Text: long, UCS2: true})
	if err != nil || len(ds) != 2 || ds[0].Index != 2 || ds[1].Index != 3 {
		t.Fatalf("receive two parts: %+v %v", ds, err)
	}
	l.out.take()
	var parts []*tpdu.TPDU
	for i := 2; i <= 3; i++ {
		parts = append(parts, readPDU(t, l.exchange(fmt.Sprintf("AT+CMGR=%d\r", i))))
	}
	if msg, err := sms.Decode(parts); err != nil || string(msg) != long || parts[0].DCS != tpdu.DcsUCS2Data {
		t.Errorf("reassembled %q %v", msg, err)
	}
	if got := l.exchange("AT+CMGF=1;+CMGR=1\r"); !strings.Contains(got, `"REC READ","+4520000000",,"`) || !strings.Contains(got, "\r\nSTOP\r\n") {
		t.Errorf("text mode: %q", got)
	}
	l.exchange("AT+CMGF=0;+CMGD=0,4\r")

	// A full memory loses what comes.
	for i := range memCapacity {
		if ds, _ := m.Receive(Incoming{From: "+4520000000", Text: fmt.Sprint("m", i)}); ds[0].Route != RouteCMTI {
			t.Fatalf("message %d: %+v", i, ds)
		}
	}
	if ds, _ := m.Receive(Incoming{From: "+4520000000", Text: "one too many"}); ds[0].Route != RouteLost {
		t.Errorf("into a full memory: %+v", ds)
	}
	l.out.take()
	if got := l.exchange("AT+CPMS?\r"); !strings.Contains(got, `"SM",30,30`) {
		t.Errorf("%q", got)
	}

	// Routed, not stored.
	l.exchange("AT+CMGD=0,4;+CNMI=2,2,0,0,0\r")
	if ds, _ := m.Receive(Incoming{From: "+4520000000", Text: "START"}); ds[0] != (Delivery{Route: RouteCMT}) {
		t.Errorf("routed: %+v", ds)
	}
	got := l.out.take()
	if !strings.HasPrefix(got, "\r\n+CMT: ,") {
		t.Fatalf("routed: %q", got)
	}
	if msg, _ := sms.Decode([]*tpdu.TPDU{readPDU(t, got)}); string(msg) != "START" {
		t.Errorf("routed %q", msg)
	}
}

// TestFullStorageRefuses: with FullStorageRefuses, a full SIM makes
// AT+CMGS answer 322 until a message is deleted.
func TestFullStorageRefuses(t *testing.T) {
	l := newLocal(t, Config{FullStorageRefuses: true})
	m := l.modem()
	l.exchange("ATE0;+CMEE=1;+CMGF=0;+CNMI=2,1,0,0,0;+CPMS=\"SM\"\r")
	p := srrPDU(t, "x", "+4526227921")
	for i := range memCapacity {
		m.Receive(Incoming{From: "+4520000000", Text: fmt.Sprint("m", i)})
	}
	l.out.take()
	if got := l.exchange(fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex)); !strings.Contains(got, "+CMS ERROR: 322") {
		t.Errorf("send with a full SIM: %q", got)
	}
	l.exchange("AT+CMGD=1\r")
	if got := l.exchange(fmt.Sprintf("AT+CMGS=%d\r%s\x1a", p.len, p.hex)); !strings.Contains(got, "+CMGS:") {
		t.Errorf("send after a delete: %q", got)
	}
}

// TestReceiveRef16: Ref16 numbers the parts with a 16-bit reference.
func TestReceiveRef16(t *testing.T) {
	l := newLocal(t, Config{})
	m := l.modem()
	l.exchange("ATE0;+CMGF=0;+CNMI=2,1,0,0,0;+CPMS=\"SM\"\r")
	long := strings.Repeat("Your subscription renews on 01.02.2027. ", 9)
	ds, err := m.Receive(Incoming{From: "Telco", Text: long, Ref16: true})
	if err != nil || len(ds) != 3 {
		t.Fatalf("receive: %+v %v", ds, err)
	}
	l.out.take()
	var parts []*tpdu.TPDU
	for _, d := range ds {
		tp := readPDU(t, l.exchange(fmt.Sprintf("AT+CMGR=%d\r", d.Index)))
		if _, _, _, ok := tp.UDH.ConcatInfo16(); !ok {
			t.Errorf("part %d without a 16-bit reference: %+v", d.Index, tp.UDH)
		}
		parts = append(parts, tp)
	}
	if msg, err := sms.Decode(parts); err != nil || string(msg) != long {
		t.Errorf("reassembled %q %v", msg, err)
	}
}
