package otp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The secrets used throughout the job tests: a rejection's Detail must never
// repeat them.
const (
	testCode   = "034812"
	testNumber = "26227921" // a valid Danish mobile number
)

func TestDecodeJob(t *testing.T) {
	// padTo pads a valid job with trailing whitespace up to n bytes.
	padTo := func(job string, n int) string { return job + strings.Repeat(" ", n-len(job)) }
	const valid = `{"id":"login-42_a","to":"+45 26 22 79 21","code":"034812"}`

	for _, tc := range []struct {
		name   string
		in     string
		want   *Job   // the decoded job when err is nil
		reason Reason // the expected rejection; "" means success
		field  string // the expected RejectError.Field
	}{
		// Accepted jobs.
		{name: "valid code job", in: valid,
			want: &Job{ID: "login-42_a", To: "+45 26 22 79 21", Code: testCode}},
		{name: "valid text job", in: `{"id":"t1","to":"26227921","region":"dk","text":"Hej, din pakke er klar ✓"}`,
			want: &Job{ID: "t1", To: "26227921", Region: "dk", Text: "Hej, din pakke er klar ✓"}},
		{name: "all fields", in: `{"id":"x","to":"+4526227921","region":"DK","code":"1234","ttl":"5m","template":"login","locale":"da-DK"}`,
			want: &Job{ID: "x", To: "+4526227921", Region: "DK", Code: "1234", TTL: Duration(5 * time.Minute), Template: "login", Locale: "da-DK"}},
		{name: "ttl duration string", in: `{"id":"a","to":"+4526227921","code":"1234","ttl":"90s"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "1234", TTL: Duration(90 * time.Second)}},
		{name: "ttl seconds", in: `{"id":"a","to":"+4526227921","code":"1234","ttl":300}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "1234", TTL: Duration(300 * time.Second)}},
		{name: "ttl fractional seconds", in: `{"id":"a","to":"+4526227921","code":"1234","ttl":1.5}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "1234", TTL: Duration(1500 * time.Millisecond)}},
		{name: "ttl zero means default", in: `{"id":"a","to":"+4526227921","code":"1234","ttl":0}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "1234"}},
		{name: "leading zero code", in: `{"id":"a","to":"+4526227921","code":"034812"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "034812"}},
		{name: "4 digit code", in: `{"id":"a","to":"+4526227921","code":"0000"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "0000"}},
		{name: "10 digit code", in: `{"id":"a","to":"+4526227921","code":"0123456789"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: "0123456789"}},
		{name: "64 char id", in: `{"id":"` + strings.Repeat("a", 64) + `","to":"+4526227921","code":"1234"}`,
			want: &Job{ID: strings.Repeat("a", 64), To: "+4526227921", Code: "1234"}},
		{name: "trailing newline", in: valid + "\n",
			want: &Job{ID: "login-42_a", To: "+45 26 22 79 21", Code: testCode}},
		{name: "exactly MaxJobSize", in: padTo(valid, MaxJobSize),
			want: &Job{ID: "login-42_a", To: "+45 26 22 79 21", Code: testCode}},
		{name: "text of MaxTextLen runes", in: `{"id":"a","to":"+4526227921","text":"` + strings.Repeat("é", MaxTextLen) + `"}`,
			want: &Job{ID: "a", To: "+4526227921", Text: strings.Repeat("é", MaxTextLen)}},

		// Missing fields.
		{name: "missing id", in: `{"to":"+4526227921","code":"034812"}`, reason: ReasonMissingField, field: "id"},
		{name: "empty id", in: `{"id":"","to":"+4526227921","code":"034812"}`, reason: ReasonMissingField, field: "id"},
		{name: "null id", in: `{"id":null,"to":"+4526227921","code":"034812"}`, reason: ReasonMissingField, field: "id"},
		{name: "missing to", in: `{"id":"a","code":"034812"}`, reason: ReasonMissingField, field: "to"},
		{name: "missing code and text", in: `{"id":"a","to":"+4526227921"}`, reason: ReasonMissingField, field: "code"},
		{name: "empty code and text", in: `{"id":"a","to":"+4526227921","code":"","text":""}`, reason: ReasonMissingField, field: "code"},
		{name: "code and text", in: `{"id":"a","to":"+4526227921","code":"034812","text":"hi"}`, reason: ReasonMalformed, field: "text"},

		// Bad ids.
		{name: "id with dots", in: `{"id":"a.b","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{name: "id with spaces", in: `{"id":"a b","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{name: "65 char id", in: `{"id":"` + strings.Repeat("a", 65) + `","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{name: "id star", in: `{"id":"*","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{name: "id gt", in: `{"id":">","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},
		{name: "id non-ASCII", in: `{"id":"æøå","to":"+4526227921","code":"034812"}`, reason: ReasonInvalidID, field: "id"},

		// Bad codes.
		{name: "code with letters", in: `{"id":"a","to":"+4526227921","code":"03a812"}`, reason: ReasonInvalidCode, field: "code"},
		{name: "3 digit code", in: `{"id":"a","to":"+4526227921","code":"034"}`, reason: ReasonInvalidCode, field: "code"},
		{name: "11 digit code", in: `{"id":"a","to":"+4526227921","code":"03481203481"}`, reason: ReasonInvalidCode, field: "code"},
		{name: "code with space", in: `{"id":"a","to":"+4526227921","code":"034 812"}`, reason: ReasonInvalidCode, field: "code"},
		{name: "code with fullwidth digits", in: `{"id":"a","to":"+4526227921","code":"０３４８"}`, reason: ReasonInvalidCode, field: "code"},
		{name: "code as number", in: `{"id":"a","to":"+4526227921","code":34812}`, reason: ReasonMalformed, field: "code"},

		// Unknown fields and wrong types.
		{name: "unknown field", in: `{"id":"a","to":"+4526227921","code":"034812","priority":1}`, reason: ReasonUnknownField, field: "priority"},
		{name: "unknown object field", in: `{"id":"a","to":"+4526227921","code":"034812","meta":{"a":1}}`, reason: ReasonUnknownField, field: "meta"},
		{name: "wrong type to", in: `{"id":"a","to":45,"code":"034812"}`, reason: ReasonMalformed, field: "to"},
		{name: "wrong type region", in: `{"id":"a","to":"+4526227921","code":"034812","region":true}`, reason: ReasonMalformed, field: "region"},

		// TTL.
		{name: "bad ttl string", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":"soon"}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "ttl without unit", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":"300"}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "ttl bool", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":true}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "ttl null", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":null}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "ttl huge", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":1e300}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "negative ttl seconds", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":-5}`, reason: ReasonInvalidTTL, field: "ttl"},
		{name: "negative ttl string", in: `{"id":"a","to":"+4526227921","code":"034812","ttl":"-1m"}`, reason: ReasonInvalidTTL, field: "ttl"},

		// Other fields.
		{name: "bad region", in: `{"id":"a","to":"26227921","region":"DNK","code":"034812"}`, reason: ReasonMalformed, field: "region"},
		{name: "bad template", in: `{"id":"a","to":"+4526227921","code":"034812","template":"../x"}`, reason: ReasonUnknownTemplate, field: "template"},
		{name: "bad locale", in: `{"id":"a","to":"+4526227921","code":"034812","locale":"da DK"}`, reason: ReasonUnknownTemplate, field: "locale"},

		// Not a job at all.
		{name: "trailing object", in: valid + ` {}`, reason: ReasonMalformed},
		{name: "trailing garbage", in: valid + `x`, reason: ReasonMalformed},
		{name: "not JSON", in: `id=a&to=26227921`, reason: ReasonMalformed},
		{name: "empty", in: ``, reason: ReasonMalformed},
		{name: "truncated", in: valid[:len(valid)-1], reason: ReasonMalformed},
		{name: "null", in: `null`, reason: ReasonMalformed},
		{name: "array", in: `[]`, reason: ReasonMalformed},
		{name: "string", in: `"034812"`, reason: ReasonMalformed},
		{name: "number", in: `42`, reason: ReasonMalformed},
		{name: "larger than MaxJobSize", in: padTo(valid, MaxJobSize+1), reason: ReasonMalformed},
		{name: "invalid UTF-8 text", in: `{"id":"a","to":"+4526227921","text":"ab` + "\xff\xfe" + `cd"}`, reason: ReasonMalformed},
		{name: "invalid UTF-8 whole job", in: "\xff" + valid, reason: ReasonMalformed},
		{name: "text over MaxTextLen", in: `{"id":"a","to":"+4526227921","text":"` + strings.Repeat("é", MaxTextLen+1) + `"}`, reason: ReasonInvalidText, field: "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := DecodeJob([]byte(tc.in))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("DecodeJob: %v", err)
				}
				if j != *tc.want {
					t.Errorf("DecodeJob = %+v, want %+v", j, *tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeJob accepted %+v, want %s", j, tc.reason)
			}
			re, ok := AsReject(err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *RejectError", err, err)
			}
			if re.Reason != tc.reason || re.Field != tc.field {
				t.Errorf("rejected %s (field %q), want %s (field %q): %v", re.Reason, re.Field, tc.reason, tc.field, err)
			}
			if re.Detail == "" || strings.HasPrefix(re.Detail, " ") {
				t.Errorf("poor Detail %q", re.Detail)
			}
			for _, secret := range []string{testCode, testNumber} {
				if strings.Contains(re.Detail, secret) {
					t.Errorf("Detail %q reveals %q", re.Detail, secret)
				}
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 1500 * time.Millisecond, 90 * time.Second, time.Hour} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil || time.Duration(got) != d {
			t.Errorf("%s: marshalled %s, unmarshalled %s, %v", d, b, time.Duration(got), err)
		}
	}
}

func TestLimitsPrepare(t *testing.T) {
	limits := Limits{DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour, Region: "DK"}
	for _, tc := range []struct {
		name   string
		limits Limits
		job    Job
		ttl    time.Duration
		number Number
		reason Reason
		field  string
	}{
		{name: "default ttl", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode},
			ttl: 5 * time.Minute, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "job ttl", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(90 * time.Second)},
			ttl: 90 * time.Second, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "ttl at max", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(time.Hour)},
			ttl: time.Hour, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "ttl over max", limits: limits,
			job:    Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(time.Hour + time.Second)},
			reason: ReasonInvalidTTL, field: "ttl"},
		{name: "no max", limits: Limits{DefaultTTL: time.Minute},
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(1000 * time.Hour)},
			ttl: 1000 * time.Hour, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "default region for national number", limits: limits,
			job: Job{ID: "a", To: "26 22 79 21", Code: testCode},
			ttl: 5 * time.Minute, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "job region overrides", limits: limits,
			job: Job{ID: "a", To: "(650) 253-0000", Region: "us", Code: testCode},
			ttl: 5 * time.Minute, number: Number{E164: "+16502530000", CountryCode: 1, Region: "US"}},
		{name: "job region sets the international prefix", limits: limits,
			job: Job{ID: "a", To: "011 45 26227921", Region: "US", Code: testCode},
			ttl: 5 * time.Minute, number: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}},
		{name: "national number without any region", limits: Limits{DefaultTTL: time.Minute},
			job:    Job{ID: "a", To: "26227921", Code: testCode},
			reason: ReasonInvalidNumber, field: "to"},
		{name: "invalid number", limits: limits,
			job:    Job{ID: "a", To: "+45 1", Code: testCode},
			reason: ReasonInvalidNumber, field: "to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.limits.Prepare(tc.job)
			if tc.reason != "" {
				re, ok := AsReject(err)
				if !ok {
					t.Fatalf("Prepare = %+v, %v; want %s", p, err, tc.reason)
				}
				if re.Reason != tc.reason || re.Field != tc.field {
					t.Errorf("rejected %s (field %q), want %s (field %q)", re.Reason, re.Field, tc.reason, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if p.TTL != tc.ttl {
				t.Errorf("TTL %s, want %s", p.TTL, tc.ttl)
			}
			if p.Number != tc.number {
				t.Errorf("Number %#v, want %#v", p.Number, tc.number)
			}
			if p.Job != tc.job {
				t.Errorf("Job %+v, want it unchanged %+v", p.Job, tc.job)
			}
		})
	}
}

func FuzzDecodeJob(f *testing.F) {
	for _, s := range []string{
		`{"id":"login-42_a","to":"+45 26 22 79 21","code":"034812"}`,
		`{"id":"t1","to":"26227921","region":"dk","text":"Hej ✓"}`,
		`{"id":"x","to":"+4526227921","region":"DK","code":"1234","ttl":"5m","template":"login","locale":"da-DK"}`,
		`{"id":"a","to":"+4526227921","code":"1234","ttl":300}`,
		`{"id":"a","to":"+4526227921","code":"1234","ttl":1.5e2}`,
		`{"id":"a","to":"+4526227921","code":"1234","ttl":-1}`,
		`{"id":"a","to":"+4526227921","code":"1234","ttl":"1h2m3.5s"}`,
		`{"id":"a","to":"+4526227921","code":"034812","text":"hi"}`,
		`{"id":"a.b","to":"+4526227921","code":"034812"}`,
		`{"id":"a","to":45,"code":"034812"}`,
		`{"id":"a","to":"+4526227921","code":"034812","priority":1}`,
		`{"ID":"a","To":"+4526227921","CODE":"034812"}`,
		`{"id":"a","to":"+4526227921","text":"a\u00e9\ud83d\ude00\ud800"}`,
		`{"id":"a","to":"+4526227921","text":"ab` + "\xff" + `"}`,
		`{"id":"a","to":"+4526227921","code":"034812"} {}`,
		`null`, `[]`, `""`, `{}`, `{"id":`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			re, ok := AsReject(err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *RejectError", err, err)
			}
			if re.Reason == "" {
				t.Fatalf("RejectError without a Reason: %v", err)
			}
			return
		}
		if !ValidID(j.ID) {
			t.Fatalf("accepted invalid id %q", j.ID)
		}
		if (j.Code == "") == (j.Text == "") {
			t.Fatalf("accepted a job with code %q and text %q", j.Code, j.Text)
		}
		if j.Code != "" && !codePattern.MatchString(j.Code) {
			t.Fatalf("accepted code %q", j.Code)
		}
		if !utf8.ValidString(j.Text) || utf8.RuneCountInString(j.Text) > MaxTextLen {
			t.Fatalf("accepted text %q", j.Text)
		}
		if j.TTL < 0 || j.To == "" {
			t.Fatalf("accepted %+v", j)
		}
		if !utf8.Valid(data) || len(data) > MaxJobSize {
			t.Fatalf("accepted a job that is not UTF-8 or too large: %q", data)
		}
		// An accepted job survives a round trip through its own encoding.
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("marshal %+v: %v", j, err)
		}
		again, err := DecodeJob(b)
		if err != nil || again != j {
			t.Fatalf("round trip of %+v through %s: %+v, %v", j, b, again, err)
		}
	})
}

// Make sure the sentinel stays an error the decoder can find in the chain.
func TestBadDurationIsWrapped(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"x"`)); !errors.Is(err, errBadDuration) {
		t.Errorf("UnmarshalJSON: %v", err)
	}
}
