package modem

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// statusReportTPDU builds an SMS-STATUS-REPORT TPDU.
func statusReportTPDU(t testing.TB, mr byte, ra string, st byte, scts, dt time.Time) []byte {
	t.Helper()
	p := tpdu.TPDU{Direction: tpdu.MT, MR: mr, ST: st}
	p.FirstOctet = tpdu.FirstOctet(tpdu.MtCommand) // MTI 2 towards the phone: SMS-STATUS-REPORT
	p.RA = tpdu.NewAddress(tpdu.FromNumber(ra))
	p.SCTS = tpdu.Timestamp{Time: scts}
	p.DT = tpdu.Timestamp{Time: dt}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSCA prefixes a TPDU with a service centre address, as +CDS does.
func withSCA(t testing.TB, tp []byte, sca string) string {
	t.Helper()
	var p pdumode.PDU
	p.SMSC.SetNumber(sca)
	p.TPDU = tp
	s, err := p.MarshalHexString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseStatusReport(t *testing.T) {
	loc := time.FixedZone("", 3600)
	scts := time.Date(2026, 11, 23, 10, 0, 5, 0, loc)
	dt := time.Date(2026, 11, 23, 10, 0, 9, 0, loc)
	tp := statusReportTPDU(t, 0xfe, "+4526227921", 0x00, scts, dt)
	full := withSCA(t, tp, "+4540390999")
	bare := strings.ToUpper(hex.EncodeToString(tp))
	deliver := hex.EncodeToString([]byte{0x04, 0x0b, 0x91, 0x54, 0x62, 0x22, 0x97, 0x12, 0xf1, 0x00, 0x00, 0x62, 0x11, 0x32, 0x01, 0x00, 0x50, 0x40, 0x01, 0x31})

	tests := []struct {
		name   string
		pdu    string
		length int
		ok     bool
	}{
		{"with SCA", full, len(tp), true},
		{"with SCA, length unknown", full, -1, true},
		{"without SCA", bare, len(tp), true},
		{"empty SCA", "00" + bare, len(tp), true},
		{"lower case and spaces", " " + strings.ToLower(full) + " ", len(tp), true},
		{"SCA length disagrees", full, len(tp) - 1, false},
		{"shorter than length", bare, len(tp) + 1, false},
		{"not hex", "zz" + bare, len(tp) + 1, false},
		{"truncated", bare[:20], 10, false},
		{"a deliver", deliver, len(deliver) / 2, false},
		{"empty", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseStatusReport(tc.pdu, tc.length)
			if !tc.ok {
				if err == nil {
					t.Fatalf("got %+v, want an error", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.MR != 0xfe || r.Recipient != "+4526227921" || r.TPStatus != 0 {
				t.Errorf("got %+v", r)
			}
			if !r.SCTS.Equal(scts) || !r.Discharge.Equal(dt) {
				t.Errorf("times %v %v, want %v %v", r.SCTS, r.Discharge, scts, dt)
			}
		})
	}
}

func TestClassifyStatus(t *testing.T) {
	tests := []struct {
		st    byte
		want  Delivery
		final bool
	}{
		{0x00, Delivered, true},
		{0x01, Delivered, true},
		{0x02, Delivered, true},
		{0x1f, Delivered, true},
		{0x20, Pending, false},
		{0x21, Pending, false},
		{0x3f, Pending, false},
		{0x40, Undeliverable, true},
		{0x41, Undeliverable, true},
		{0x45, Undeliverable, true},
		{0x46, ValidityExpired, true},
		{0x47, Undeliverable, true},
		{0x60, Undeliverable, true}, // temporary, but the SC stopped trying
		{0x62, Undeliverable, true},
		{0x7f, Undeliverable, true},
		{0x80, Undeliverable, true}, // reserved: "service rejected"
		{0xff, Undeliverable, true},
	}
	for _, tc := range tests {
		got := Classify(tc.st)
		if got != tc.want || got.Final() != tc.final {
			t.Errorf("Classify(%#02x) = %v (final %v), want %v (final %v)", tc.st, got, got.Final(), tc.want, tc.final)
		}
	}
	for d, want := range map[Delivery]string{Delivered: "delivered", Pending: "pending", Undeliverable: "failed", ValidityExpired: "expired", 9: "Delivery(9)"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(d), d.String(), want)
		}
	}
}

func TestParseIndications(t *testing.T) {
	tp := statusReportTPDU(t, 7, "+4526227921", 0x46, time.Now(), time.Now())
	pdu := withSCA(t, tp, "+4540390999")
	n := strconv.Itoa(len(tp))

	t.Run("CDS", func(t *testing.T) {
		r, err := parseCDS([]string{"+CDS: " + n, pdu})
		if err != nil || r.MR != 7 || r.Delivery() != ValidityExpired {
			t.Fatalf("got %+v, %v", r, err)
		}
		for _, bad := range [][]string{{"+CDS: x", pdu}, {"+CDS: 0", pdu}, {"+CDS: " + n}, {"+CDS: 300", pdu}} {
			if _, err := parseCDS(bad); err == nil {
				t.Errorf("parseCDS(%q): no error", bad)
			}
		}
	})
	t.Run("CDSI", func(t *testing.T) {
		for line, want := range map[string]struct {
			mem string
			idx int
			ok  bool
		}{
			`+CDSI: "SR",3`:  {"SR", 3, true},
			`+CDSI:"ME", 12`: {"ME", 12, true},
			`+CDSI: "SR"`:    {ok: false},
			`+CDSI: "SR",-1`: {ok: false},
			`+CDSI: "",1`:    {ok: false},
			`+CDSI: "S;R",1`: {ok: false},
		} {
			mem, idx, err := parseStoredIndication("+CDSI", line)
			if (err == nil) != want.ok || want.ok && (mem != want.mem || idx != want.idx) {
				t.Errorf("parseStoredIndication(%q) = %q, %d, %v", line, mem, idx, err)
			}
		}
	})
	t.Run("CMGR", func(t *testing.T) {
		// A URC line that leaked into the answer comes first.
		got, length, err := parseCMGRPDU([]string{"+CDSI: \"SR\",4", "+CMGR: 0,," + n, pdu})
		if err != nil || got != pdu || strconv.Itoa(length) != n {
			t.Fatalf("got %q, %d, %v", got, length, err)
		}
		if r, err := ParseStatusReport(got, length); err != nil || r.MR != 7 {
			t.Fatalf("report %+v, %v", r, err)
		}
		for _, bad := range [][]string{{"+CMGR: 0,," + n}, {"+CMGR: x", pdu}, {pdu}} {
			if _, _, err := parseCMGRPDU(bad); err == nil {
				t.Errorf("parseCMGRPDU(%q): no error", bad)
			}
		}
		// A modem back in text mode answers with the sender in the header:
		// the error, which is logged, does not quote it.
		textMode := []string{`+CMGR: "REC UNREAD","+4526227921",,"26/11/29,12:00:00+04"`, "Your code"}
		if _, _, err := parseCMGRPDU(textMode); err == nil || strings.Contains(err.Error(), "4526227921") {
			t.Errorf("text-mode answer: %v", err)
		}
	})
	t.Run("CMGL", func(t *testing.T) {
		got := parseCMGL([]string{"+CMGL: 1,0,," + n, pdu, "+CMTI: \"SM\",2", "+CMGL: 4,1,," + n, pdu, "+CMGL: bad", "+CMGL: 5,1,,9"})
		if len(got) != 2 || got[0].index != 1 || got[1].index != 4 || got[1].length != len(tp) || got[1].pdu != pdu {
			t.Fatalf("got %+v", got)
		}
	})
}

func TestCSMSService(t *testing.T) {
	for lines, want := range map[string]int{
		"+CSMS: 1,1,1,1": 1,
		"+CSMS: 0,1,1,1": 0,
		"+CSMS: x":       -1,
		"":               -1,
	} {
		if got := csmsService([]string{lines}); got != want {
			t.Errorf("csmsService(%q) = %d, want %d", lines, got, want)
		}
	}
}

// FuzzParseStatusReport feeds the report decoder what a modem might say:
// it must never panic, and what it accepts must be a status report.
// TestParseStatusReportBadTimeStamp: a report whose time stamps a service
// centre wrote wrong (a time-zone octet 0xA0, seen in the wild; a digit
// that is not BCD) is still read: reference, recipient and status, its
// times unknown.
func TestParseStatusReportBadTimeStamp(t *testing.T) {
	loc := time.FixedZone("", 3600)
	scts := time.Date(2026, 11, 23, 10, 0, 5, 0, loc)
	tp := statusReportTPDU(t, 0x17, "+4526227921", 0x00, scts, scts.Add(4*time.Second))
	tsAt := len(tp) - 15 // SCTS, DT, ST end the TPDU
	for _, tc := range []struct {
		name       string
		at         int // octet of the TPDU to set
		to         byte
		sctsKnown  bool
		dischKnown bool
	}{
		{"DT time zone 0xA0", tsAt + 13, 0xa0, true, false},
		{"SCTS time zone 0xA0", tsAt + 6, 0xa0, false, true},
		{"SCTS hour not BCD", tsAt + 3, 0x0b, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := append([]byte(nil), tp...)
			bad[tc.at] = tc.to
			r, err := ParseStatusReport(withSCA(t, bad, "+4540390999"), len(bad))
			if err != nil {
				t.Fatal(err)
			}
			if r.MR != 0x17 || r.Recipient != "+4526227921" || r.TPStatus != 0 || r.Delivery() != Delivered {
				t.Errorf("got %+v", r)
			}
			if r.SCTS.IsZero() == tc.sctsKnown || r.Discharge.IsZero() == tc.dischKnown {
				t.Errorf("SCTS %v, discharge %v: want known %v, %v", r.SCTS, r.Discharge, tc.sctsKnown, tc.dischKnown)
			}
			if tc.sctsKnown && !r.SCTS.Equal(scts) {
				t.Errorf("SCTS %v, want %v", r.SCTS, scts)
			}
		})
	}
	// The loose reading agrees with the library's on a clean report.
	r, _ := ParseStatusReport(hex.EncodeToString(tp), len(tp))
	l, err := parseStatusReportLoose(tp)
	if err != nil || l != r && !(l.MR == r.MR && l.Recipient == r.Recipient && l.TPStatus == r.TPStatus && l.SCTS.Equal(r.SCTS) && l.Discharge.Equal(r.Discharge)) {
		t.Errorf("loose %+v %v, library %+v", l, err, r)
	}
}

func FuzzParseStatusReport(f *testing.F) {
	tp := statusReportTPDU(f, 200, "+4526227921", 0x41, time.Now(), time.Now())
	f.Add(withSCA(f, tp, "+4540390999"), len(tp))
	f.Add(hex.EncodeToString(tp), len(tp))
	f.Add(hex.EncodeToString(tp), -1)
	f.Add("0006", 1)
	f.Fuzz(func(t *testing.T, pdu string, length int) {
		r, err := ParseStatusReport(pdu, length)
		if err != nil {
			return
		}
		if r.MR < 0 || r.MR > 255 {
			t.Fatalf("MR %d", r.MR)
		}
		_ = r.Delivery().String()
		// The same report without its front matter parses the same.
		b, _ := hex.DecodeString(strings.TrimSpace(pdu))
		if length >= 0 && length <= len(b) {
			r2, err := ParseStatusReport(hex.EncodeToString(b[len(b)-length:]), length)
			if err != nil || r2.MR != r.MR || r2.Recipient != r.Recipient || r2.TPStatus != r.TPStatus ||
				!r2.SCTS.Equal(r.SCTS) || !r2.Discharge.Equal(r.Discharge) {
				t.Fatalf("bare TPDU: %+v, %v; with SCA: %+v", r2, err, r)
			}
		}
	})
}

// FuzzParseCDS feeds the indication parsers arbitrary lines.
func FuzzParseCDS(f *testing.F) {
	tp := statusReportTPDU(f, 1, "+4526227921", 0, time.Now(), time.Now())
	pdu := withSCA(f, tp, "+4540390999")
	f.Add("+CDS: "+strconv.Itoa(len(tp)), pdu)
	f.Add(`+CDSI: "SR",1`, "")
	f.Add("+CMGR: 0,,"+strconv.Itoa(len(tp)), pdu)
	f.Fuzz(func(t *testing.T, l1, l2 string) {
		parseCDS([]string{l1, l2})
		parseStoredIndication("+CDSI", l1)
		parseCMGRPDU([]string{l1, l2})
		parseCMGL([]string{l1, l2})
		csmsService([]string{l1})
	})
}
