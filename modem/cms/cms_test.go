package cms

import "testing"

func TestTable(t *testing.T) {
	for i, e := range table {
		if e.Text == "" {
			t.Errorf("%d: no text", e.Code)
		}
		if i > 0 && table[i-1].Code >= e.Code {
			t.Errorf("%d after %d: the table must be in increasing order", e.Code, table[i-1].Code)
		}
		if got, ok := Lookup(e.Code); !ok || got != e {
			t.Errorf("Lookup(%d) = %+v, %v", e.Code, got, ok)
		}
		if Text(e.Code) != e.Text {
			t.Errorf("Text(%d) = %q", e.Code, Text(e.Code))
		}
	}
	for _, code := range []int{-1, 0, 2, 128, 195, 306, 512, 1 << 20} {
		if e, ok := Lookup(code); ok || Text(code) != "" {
			t.Errorf("Lookup(%d) = %+v, %v; want none", code, e, ok)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	permanent := map[int]bool{
		// RP causes: the destination or the message is wrong.
		1: true, 8: true, 10: true, 21: true, 29: true, 30: true, 50: true, 69: true,
		96: true, 97: true, 98: true, 99: true, 111: true, 127: true,
		// ME and TA errors: the PDU is wrong or the SIM unusable.
		303: true, 304: true, 305: true, 310: true, 313: true, 315: true, 316: true, 318: true,
	}
	for code := 128; code <= 255; code++ { // TP-FCS
		switch code {
		case 0xC0, 0xC2, 0xD2, 0xD4, 0xFF: // busy, failures, unspecified
		default:
			permanent[code] = true
		}
	}
	for code := -1; code < 1024; code++ {
		if got := IsPermanent(code); got != permanent[code] {
			t.Errorf("IsPermanent(%d) = %v", code, got)
		}
	}
}
