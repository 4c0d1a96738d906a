package otp

import (
	"encoding/json"
	"strings"
	"testing"
)

// decodeCase is an input and the rejection it gets ("" reason: none).
type decodeCase struct {
	in     string
	reason Reason
	field  string
}

func (tc decodeCase) check(t *testing.T, err error) {
	t.Helper()
	if tc.reason == "" {
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
		}
		return
	}
	if re, ok := AsReject(err); !ok || re.Reason != tc.reason || re.Field != tc.field {
		t.Errorf("%.60s: %v, want %s on %q", tc.in, err, tc.reason, tc.field)
	}
}

func TestDecodeCheck(t *testing.T) {
	for _, tc := range []decodeCase{
		{in: `{"id":"v-1","code":"034812"}`},
		{in: `{"to":"+45 26 22 79 21","code":"0348120348"}`},
		{in: `{"to":"26227921","region":"DK","code":"034812"}`},
		{in: `{"code":"034812"}`, reason: ReasonMissingField, field: "id"},
		{in: `{"id":"v-1","to":"+4526227921","code":"034812"}`, reason: ReasonMalformed, field: "to"},
		{in: `{"id":"v 1","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{in: `{"id":"v-1","region":"DK","code":"034812"}`, reason: ReasonMalformed, field: "region"},
		{in: `{"to":"1-800-FLOWERS","code":"034812"}`, reason: ReasonInvalidNumber, field: "to"},
		{in: `{"id":"v-1"}`, reason: ReasonMissingField, field: "code"},
		{in: `{"id":"v-1","code":"12345"}`, reason: ReasonInvalidCode, field: "code"},
		{in: `{"id":"v-1","code":"12345678901"}`, reason: ReasonInvalidCode, field: "code"},
		{in: `{"id":"v-1","code":"１２３４５６"}`, reason: ReasonInvalidCode, field: "code"},
		{in: `{"id":"v-1","code":123456}`, reason: ReasonMalformed, field: "code"},
		{in: `{"id":"v-1","code":"034812","guess":true}`, reason: ReasonUnknownField, field: "guess"},
		{in: `{"id":"v-1","code":"034812"} {}`, reason: ReasonMalformed},
		{in: `null`, reason: ReasonMalformed},
		{in: `["v-1"]`, reason: ReasonMalformed},
		{in: "{\"id\":\"v-1\",\"code\":\"03481\xff\"}", reason: ReasonMalformed},
		{in: `{"id":"v-1","code":"034812","to":"` + strings.Repeat("1", MaxCheckSize) + `"}`, reason: ReasonMalformed},
	} {
		_, err := DecodeCheck([]byte(tc.in))
		tc.check(t, err)
	}
}

// FuzzDecodeCheck: any input is a check that keeps its rules, or a typed
// rejection with a reason; never a panic.
func FuzzDecodeCheck(f *testing.F) {
	for _, s := range []string{`{"id":"v-1","code":"034812"}`, `{"to":"+4526227921","code":"0348120348"}`,
		`{"to":"26227921","region":"DK","code":"034812"}`, `{"code":"1"}`, `{}`, `null`, `{"id":"x","code":"123456","x":1}`} {
		f.Add([]byte(s))
	}
	codeSchema := schemaPattern(f, "schema/check.schema.json", "code")
	idSchema := schemaPattern(f, "schema/check.schema.json", "id")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCheck(data)
		if err != nil {
			if re, ok := AsReject(err); !ok || re.Reason == "" {
				t.Fatalf("error %v (%T) is not a *RejectError with a reason", err, err)
			}
			return
		}
		if (c.ID == "") == (c.To == "") || (c.ID != "" && !ValidID(c.ID)) || !verifyCode(c.Code) || (c.ID != "" && c.Region != "") {
			t.Fatalf("accepted %+v", c)
		}
		// What is accepted is what the published schema allows.
		if !codeSchema.MatchString(c.Code) || (c.ID != "" && !idSchema.MatchString(c.ID)) {
			t.Fatalf("accepted %+v, which the schema refuses", c)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := DecodeCheck(again); err != nil || c2 != c {
			t.Fatalf("%+v does not read back: %+v %v", c, c2, err)
		}
	})
}

func TestDecodeVerify(t *testing.T) {
	for _, tc := range []decodeCase{
		{in: `{"id":"v-1","to":"+4526227921"}`},
		{in: `{"id":"v-1","to":"+4526227921","digits":8,"new":true,"ttl":"5m","template":"login","origin":"example.com"}`},
		{in: `{"to":"+4526227921"}`, reason: ReasonMissingField, field: "id"},
		{in: `{"id":"v-1"}`, reason: ReasonMissingField, field: "to"},
		{in: `{"id":"v-1","to":"+4526227921","code":"123456"}`, reason: ReasonUnknownField, field: "code"},
		{in: `{"id":"v-1","to":"+4526227921","text":"hi"}`, reason: ReasonUnknownField, field: "text"},
		{in: `{"id":"v-1","to":"+4526227921","digits":5}`, reason: ReasonInvalidCode, field: "digits"},
		{in: `{"id":"v-1","to":"+4526227921","digits":11}`, reason: ReasonInvalidCode, field: "digits"},
		{in: `{"id":"v-1","to":"+4526227921","ttl":"soon"}`, reason: ReasonInvalidTTL, field: "ttl"},
		{in: `{"id":"v-1","to":"+4526227921","region":"DNK"}`, reason: ReasonMalformed, field: "region"},
		{in: `{"id":"v-1","to":"+4526227921","app_hash":"short"}`, reason: ReasonInvalidAppHash, field: "app_hash"},
		{in: `{"id":"v-1","to":"+4526227921"} x`, reason: ReasonMalformed},
	} {
		_, err := DecodeVerify([]byte(tc.in))
		tc.check(t, err)
	}
}

// FuzzDecodeVerify: any input is a request whose job (with any code of
// its length) is a valid job, or a typed rejection.
func FuzzDecodeVerify(f *testing.F) {
	for _, s := range []string{`{"id":"v-1","to":"+4526227921"}`, `{"id":"v-1","to":"+4526227921","digits":10,"new":true,"origin":"a.example"}`,
		`{"id":"v","to":"1","ttl":30}`, `{}`, `{"id":"v-1","to":"+4526227921","digits":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeVerify(data)
		if err != nil {
			if re, ok := AsReject(err); !ok || re.Reason == "" {
				t.Fatalf("error %v (%T) is not a *RejectError with a reason", err, err)
			}
			return
		}
		digits := max(r.Digits, 6)
		j := r.Job(strings.Repeat("9", digits))
		if err := j.validate(); err != nil || (r.Digits != 0 && (r.Digits < 6 || r.Digits > 10)) {
			t.Fatalf("accepted %+v: its job %v", r, err)
		}
	})
}
