package modem

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/tpdu"
)

// deliverTPDUs encodes text from from as SMS-DELIVER TPDUs.
func deliverTPDUs(t testing.TB, from, text string, at time.Time, opts ...sms.EncoderOption) [][]byte {
	t.Helper()
	tps, err := sms.Encode([]byte(text), append([]sms.EncoderOption{sms.AsDeliver, sms.From(from)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range tps {
		tps[i].SCTS = tpdu.Timestamp{Time: at}
		b, err := tps[i].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestParseDeliver(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 5, 0, time.FixedZone("", 3600))
	one := deliverTPDUs(t, "+4520000000", "STOP", at)[0]
	parts := deliverTPDUs(t, "+4520000000", strings.Repeat("Ваш баланс 12,34 EUR. ", 5), at)
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	badTZ := append([]byte(nil), one...)
	badTZ[len(badTZ)-1-4-1] = 0xa0 // the SCTS's time zone: before TP-UDL and 4 octets of "STOP"
	report := statusReportTPDU(t, 1, "+4520000000", 0, at, at)
	for _, tc := range []struct {
		name    string
		pdu     string
		length  int
		text    string
		sctsOK  bool
		wantErr error
	}{
		{"with SCA", withSCA(t, one, "+4540390999"), len(one), "STOP", true, nil},
		{"length unknown", withSCA(t, one, "+4540390999"), -1, "STOP", true, nil},
		{"without SCA", hex.EncodeToString(one), len(one), "STOP", true, nil},
		{"time zone 0xA0", withSCA(t, badTZ, "+4540390999"), len(badTZ), "STOP", false, nil},
		{"a status report", hex.EncodeToString(report), len(report), "", false, ErrNotDeliver},
		{"truncated", hex.EncodeToString(one[:8]), 8, "", false, errors.New("")},
		{"not hex", "zz", 1, "", false, errors.New("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseDeliver(tc.pdu, tc.length)
			if tc.wantErr != nil {
				if err == nil || errors.Is(tc.wantErr, ErrNotDeliver) && !errors.Is(err, ErrNotDeliver) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			msg, err := sms.Decode([]*tpdu.TPDU{tp})
			if err != nil || string(msg) != tc.text || tp.OA.Number() != "+4520000000" {
				t.Errorf("got %q from %s, %v", msg, tp.OA.Number(), err)
			}
			if tc.sctsOK != tp.SCTS.Equal(at) || !tc.sctsOK && !tp.SCTS.IsZero() {
				t.Errorf("SCTS %v", tp.SCTS.Time)
			}
		})
	}
	// Concatenated UCS-2 parts come apart and back together.
	var tps []*tpdu.TPDU
	for _, p := range parts {
		tp, err := ParseDeliver(hex.EncodeToString(p), len(p))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := tp.ConcatInfo(); !ok {
			t.Error("a part without its concatenation header")
		}
		tps = append(tps, tp)
	}
	if msg, err := sms.Decode(tps); err != nil || !strings.HasPrefix(string(msg), "Ваш баланс") {
		t.Errorf("reassembled %q %v", msg, err)
	}
}

func FuzzParseDeliver(f *testing.F) {
	at := time.Date(2026, 11, 29, 10, 0, 5, 0, time.UTC)
	for _, p := range deliverTPDUs(f, "+4520000000", strings.Repeat("Ваш баланс 12,34 EUR. ", 5), at) {
		f.Add(hex.EncodeToString(p), len(p))
	}
	one := deliverTPDUs(f, "+4520000000", "STOP", at)[0]
	f.Add(withSCA(f, one, "+4540390999"), len(one))
	f.Add(hex.EncodeToString(one), -1)
	f.Fuzz(func(t *testing.T, pdu string, length int) {
		tp, err := ParseDeliver(pdu, length)
		if err != nil {
			return
		}
		_, _ = sms.Decode([]*tpdu.TPDU{tp})
		_ = tp.OA.Number()
	})
}
