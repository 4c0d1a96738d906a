package policy

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

var recordCases = []any{
	&jobRecord{State: stateQueuing, At: 1764400000123, Body: "00112233445566778899aabbccddeeff", Number: "num.ffeeddccbbaa99887766554433221100"},
	&jobRecord{State: otp.StateFailed, Reason: "unknown_outcome", At: 1, Body: "not hex", Seq: 1 << 40, Conflicts: 3,
		Number: "other", Resend: true, Attempts: 5, Event: json.RawMessage(`{"type":"failed"}`)},
	&jobRecord{State: "some_future_state"},
	&numberRecord{},
	&numberRecord{Sends: []int64{1764400000000, 1764400060000, 1764400060000}, Codes: []codeEntry{{ID: "a", At: 1764400000000, Exp: 1764400600000}, {ID: "b", At: 1764400060000, Exp: 1764400060001}}, Last: idTag("b"), LastAt: 1764400060000},
	&numberRecord{Sends: []int64{-5, 0, 7}, LastAt: -9},
	&prefixRecord{Blocked: 1764403600000, Nums: []prefixNumber{{Tag: [6]byte{1, 2, 3, 4, 5, 6}, At: 1764400000000}, {At: -1}}},
	&prefixRecord{},
	&counterRecord{First: 29406666, B: []int{0, 3, 0, 1 << 20}},
	&counterRecord{},
}

// TestRecordsRoundTrip: every record reads back as it was written.
func TestRecordsRoundTrip(t *testing.T) {
	for _, c := range recordCases {
		r := c.(record)
		got := reflect.New(reflect.TypeOf(c).Elem()).Interface().(record)
		if err := got.unmarshal(r.marshal(nil)); err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		if !equalRecords(got, r) {
			t.Errorf("read back %+v, wrote %+v", got, r)
		}
	}
}

// equalRecords compares records, nil and empty slices alike.
func equalRecords(a, b any) bool {
	norm := func(r any) any {
		switch r := r.(type) {
		case *numberRecord:
			c := *r
			if len(c.Sends) == 0 {
				c.Sends = nil
			}
			if len(c.Codes) == 0 {
				c.Codes = nil
			}
			return c
		case *prefixRecord:
			c := *r
			if len(c.Nums) == 0 {
				c.Nums = nil
			}
			return c
		case *counterRecord:
			c := *r
			if len(c.B) == 0 {
				c.B = nil
			}
			return c
		}
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestLegacyRecords: records earlier versions wrote as JSON are read.
func TestLegacyRecords(t *testing.T) {
	var j jobRecord
	if err := j.unmarshal([]byte(`{"s":"accepted","t":1764400000123,"b":"00112233445566778899aabbccddeeff","q":7,"n":"num.x","v":true,"a":2,"e":{"type":"sent"}}`)); err != nil ||
		j.State != otp.StateAccepted || j.Seq != 7 || !j.Resend || j.Attempts != 2 || string(j.Event) != `{"type":"sent"}` {
		t.Errorf("job: %+v %v", j, err)
	}
	var n numberRecord
	if err := n.unmarshal([]byte(`{"s":[1,2],"c":[{"i":"a","t":1,"e":600001}],"l":"a","j":"a","k":1}`)); err != nil ||
		!reflect.DeepEqual(n.Sends, []int64{1, 2}) || len(n.Codes) != 1 || n.Codes[0].ID != "a" || n.Last != idTag("a") || n.LastAt != 1 {
		t.Errorf("number: %+v %v", n, err)
	}
	var p prefixRecord
	if err := p.unmarshal([]byte(`{"b":5,"n":{"0102030405ff":9}}`)); err != nil || p.Blocked != 5 || len(p.Nums) != 1 ||
		p.Nums[0].Tag != [6]byte{1, 2, 3, 4, 5, 0xff} || p.Nums[0].At != 9 {
		t.Errorf("prefix: %+v %v", p, err)
	}
	if err := p.unmarshal([]byte(`{"n":{"zz":9}}`)); err == nil {
		t.Error("prefix with a malformed number hash: no error")
	}
	var c counterRecord
	if err := c.unmarshal([]byte(`{"f":3,"b":[1,2]}`)); err != nil || c.First != 3 || !reflect.DeepEqual(c.B, []int{1, 2}) {
		t.Errorf("counter: %+v %v", c, err)
	}
}

// FuzzRecords: any bytes decode to a record or errRecord-like error,
// never a panic; what decodes writes back to what reads the same.
func FuzzRecords(f *testing.F) {
	for _, c := range recordCases {
		f.Add(c.(record).marshal(nil))
	}
	f.Add([]byte(`{"s":"sent"}`))
	f.Add([]byte{recordV1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range []record{&jobRecord{}, &numberRecord{}, &prefixRecord{}, &counterRecord{}} {
			if r.unmarshal(b) != nil {
				continue
			}
			again := reflect.New(reflect.TypeOf(r).Elem()).Interface().(record)
			if err := again.unmarshal(r.marshal(nil)); err != nil {
				t.Fatalf("%T %+v does not read back: %v", r, r, err)
			}
			if !equalRecords(again, r) {
				t.Fatalf("%T: read back %+v, wrote %+v", r, again, r)
			}
		}
	})
}

// FuzzBodyHash: the body hashed is what json.Marshal wrote in earlier
// versions, byte for byte, so that a job's hash stays the same.
func FuzzBodyHash(f *testing.F) {
	f.Add("+4526227921", "123456", "", int64(time.Minute), "login", "da", "example.com", "FA+9qCX9VSu")
	f.Add("+4526227921", "", "Din kode <b>&\"\\\u2028\x01\xff", int64(0), "", "", "", "")
	f.Fuzz(func(t *testing.T, number, code, text string, ttl int64, template, locale, origin, appHash string) {
		j := otp.Prepared{Job: otp.Job{Code: code, Text: text, TTL: otp.Duration(ttl), Template: template, Locale: locale, Origin: origin, AppHash: appHash},
			Number: otp.Number{E164: number}}
		want, _ := json.Marshal([]any{j.Number.E164, j.Code, j.Text, int64(j.Job.TTL), j.Template, j.Locale, j.Origin, j.AppHash})
		if got := appendBody(nil, j); string(got) != string(want) {
			t.Fatalf("appendBody = %s, json.Marshal = %s", got, want)
		}
	})
}

// TestKeysAgree: the keys of one decision, built together, are those each
// single-key function gives.
func TestKeysAgree(t *testing.T) {
	p, _, _ := newPolicy(t, DefaultConfig())
	for _, j := range []otp.Prepared{job("a", "+4526227921", "123456"), job("a-much-longer-id-0123456789", "+447400123456", "")} {
		k := p.keysOf(j, p.macs.new())
		if k.job != jobKey(j.ID) || k.number != p.NumberKey(j.Number.E164) || k.block != p.blockKey(j.Number.E164) ||
			k.country != countryPrefix+j.Number.Region || k.body != p.bodyHash(j) {
			t.Errorf("%s: keysOf %+v disagrees", j.ID, k)
		}
	}
}
