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
		{name: "all fields", in: `{"id":"x","to":"+4526227921","region":"DK","code":"1234","ttl":"5m","template":"login","locale":"da-DK","origin":"example.com","app_hash":"FA+9qCX9VSu"}`,
			want: &Job{ID: "x", To: "+4526227921", Region: "DK", Code: "1234", TTL: Duration(5 * time.Minute), Template: "login", Locale: "da-DK",
				Origin: "example.com", AppHash: "FA+9qCX9VSu"}},
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

		{name: "origin", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"login.example.com"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, Origin: "login.example.com"}},
		{name: "origin punycode, digits and hyphens", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"a-1.xn--bcher-kva.example.co.uk"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, Origin: "a-1.xn--bcher-kva.example.co.uk"}},
		{name: "origin of MaxOriginLen", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"` + longOrigin(MaxOriginLen) + `"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, Origin: longOrigin(MaxOriginLen)}},
		{name: "origin with 63 character label", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"` + strings.Repeat("a", 63) + `.com"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, Origin: strings.Repeat("a", 63) + ".com"}},
		{name: "app hash", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA+9qCX9VSu"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, AppHash: "FA+9qCX9VSu"}},
		{name: "app hash with slash", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"ab/Cd+09zZ/"}`,
			want: &Job{ID: "a", To: "+4526227921", Code: testCode, AppHash: "ab/Cd+09zZ/"}},
		{name: "empty origin and app hash mean none", in: `{"id":"a","to":"+4526227921","text":"hi","origin":"","app_hash":""}`,
			want: &Job{ID: "a", To: "+4526227921", Text: "hi"}},

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

		// Origin and app hash.
		{name: "origin with text", in: `{"id":"a","to":"+4526227921","text":"hi","origin":"example.com"}`, reason: ReasonMalformed, field: "origin"},
		{name: "app hash with text", in: `{"id":"a","to":"+4526227921","text":"hi","app_hash":"FA+9qCX9VSu"}`, reason: ReasonMalformed, field: "app_hash"},
		{name: "origin without code or text", in: `{"id":"a","to":"+4526227921","origin":"example.com"}`, reason: ReasonMissingField, field: "code"},
		{name: "origin as number", in: `{"id":"a","to":"+4526227921","code":"034812","origin":1}`, reason: ReasonMalformed, field: "origin"},
		{name: "origin with scheme", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"https://example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin with port", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example.com:443"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin with path", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example.com/login"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin with user", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"me@example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin with at", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"@example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin upper case", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"Example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin without dot", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"localhost"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin trailing dot", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example.com."}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin leading dot", in: `{"id":"a","to":"+4526227921","code":"034812","origin":".example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin double dot", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example..com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin label leading hyphen", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"-example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin label trailing hyphen", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example-.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin 64 character label", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"` + strings.Repeat("a", 64) + `.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin over MaxOriginLen", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"` + longOrigin(MaxOriginLen+1) + `"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin IPv4", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"192.168.1.1"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin IPv6", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"[::1]"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin unicode", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"bücher.example"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin underscore", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"_login.example.com"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin space", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example.com #1234"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin newline", in: `{"id":"a","to":"+4526227921","code":"034812","origin":"example.com\n@evil.example"}`, reason: ReasonInvalidOrigin, field: "origin"},
		{name: "app hash too short", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA+9qCX9VS"}`, reason: ReasonInvalidAppHash, field: "app_hash"},
		{name: "app hash too long", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA+9qCX9VSuu"}`, reason: ReasonInvalidAppHash, field: "app_hash"},
		{name: "app hash padding", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA+9qCX9VS="}`, reason: ReasonInvalidAppHash, field: "app_hash"},
		{name: "app hash URL-safe base64", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA-9qCX9VS_"}`, reason: ReasonInvalidAppHash, field: "app_hash"},
		{name: "app hash newline", in: `{"id":"a","to":"+4526227921","code":"034812","app_hash":"FA+9qCX9VS\n"}`, reason: ReasonInvalidAppHash, field: "app_hash"},

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

func TestOriginProblem(t *testing.T) {
	originSchema := schemaPattern(t, "schema/job.schema.json", "origin")
	for _, tc := range []struct{ origin, problem string }{
		{"example.com", ""},
		{"a.b", ""},
		{"login.example.co.uk", ""},
		{"xn--bcher-kva.example", ""},
		{"example.xn--p1ai", ""},
		{"1.example.com", ""},
		{"a--b.example", ""},
		{"0-0.example", ""},
		{strings.Repeat("a", 63) + ".com", ""},
		{longOrigin(MaxOriginLen), ""},

		{longOrigin(MaxOriginLen + 1), "longer than 253"},
		{"https://example.com", "without scheme, port or path"},
		{"example.com:8443", "without scheme, port or path"},
		{"example.com/", "without scheme, port or path"},
		{"example.com?x", "without scheme, port or path"},
		{"example.com#x", "without scheme, port or path"},
		{"[::1]", "without scheme, port or path"},
		{"Example.com", "lower-case"},
		{"EXAMPLE.COM", "lower-case"},
		{"bücher.example", "only a-z 0-9"},
		{"exa mple.com", "only a-z 0-9"},
		{"example.com\n", "only a-z 0-9"},
		{"_acme.example.com", "only a-z 0-9"},
		{"localhost", "at least one dot"},
		{"", "at least one dot"},
		{".", "empty label"},
		{"example.com.", "empty label"},
		{".example.com", "empty label"},
		{"a..example", "empty label"},
		{strings.Repeat("a", 64) + ".com", "longer than 63"},
		{"-a.example", "hyphen"},
		{"a-.example", "hyphen"},
		{"a.-com", "hyphen"},
		{"192.168.0.1", "not an IP address"},
		{"example.123", "not an IP address"},
		{"example.1com", "not an IP address"},
	} {
		got := originProblem(tc.origin)
		if tc.problem == "" && got != "" || !strings.Contains(got, tc.problem) {
			t.Errorf("originProblem(%q) = %q, want %q", tc.origin, got, tc.problem)
		}
		// The published schema agrees, except on the reason.
		if schemaOK := originSchema.MatchString(tc.origin) && len(tc.origin) <= MaxOriginLen; schemaOK != (got == "") {
			t.Errorf("schema says %q is valid: %v; originProblem: %q", tc.origin, schemaOK, got)
		}
	}
}

// longOrigin returns a valid origin of n characters (n >= 5): labels of up
// to 63 "a" before ".com".
func longOrigin(n int) string {
	s := "com"
	for rem := n - len(s); rem > 0; rem = n - len(s) {
		label := min(63, rem-1)
		if rem-1-label == 1 { // would leave room for a dot only
			label--
		}
		s = strings.Repeat("a", label) + "." + s
	}
	return s
}

func TestLongOrigin(t *testing.T) {
	for _, n := range []int{5, 6, 66, 67, 68, 69, 130, 131, 132, 200, MaxOriginLen, MaxOriginLen + 1} {
		o := longOrigin(n)
		if len(o) != n {
			t.Errorf("longOrigin(%d) has %d characters", n, len(o))
		}
		if n <= MaxOriginLen && originProblem(o) != "" {
			t.Errorf("longOrigin(%d) = %q: %s", n, o, originProblem(o))
		}
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
	dk := Number{E164: "+4526227921", CountryCode: 45, Region: "DK", Type: NumberTypeFixedLineOrMobile}
	policy := func(p NumberPolicy) Limits {
		l := limits
		l.Numbers = p
		return l
	}
	gbPremium := Number{E164: "+449012345678", CountryCode: 44, Region: "GB", Type: NumberTypePremiumRate}
	withText := func(l Limits) Limits {
		l.AllowText = true
		return l
	}
	digits := func(n int) Limits {
		l := limits
		l.MinCodeDigits = n
		return l
	}
	for _, tc := range []struct {
		name   string
		limits Limits
		job    Job
		ttl    time.Duration
		number Number
		reason Reason
		field  string
		detail string // in the rejection's detail
	}{
		{name: "default ttl", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode},
			ttl: 5 * time.Minute, number: dk},
		{name: "job ttl", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(90 * time.Second)},
			ttl: 90 * time.Second, number: dk},
		{name: "ttl at max", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(time.Hour)},
			ttl: time.Hour, number: dk},
		{name: "ttl over max", limits: limits,
			job:    Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(time.Hour + time.Second)},
			reason: ReasonInvalidTTL, field: "ttl"},
		{name: "no max", limits: Limits{DefaultTTL: time.Minute},
			job: Job{ID: "a", To: "+4526227921", Code: testCode, TTL: Duration(1000 * time.Hour)},
			ttl: 1000 * time.Hour, number: dk},
		{name: "default region for national number", limits: limits,
			job: Job{ID: "a", To: "26 22 79 21", Code: testCode},
			ttl: 5 * time.Minute, number: dk},
		{name: "job region overrides", limits: limits,
			job: Job{ID: "a", To: "(650) 253-0000", Region: "us", Code: testCode},
			ttl: 5 * time.Minute, number: Number{E164: "+16502530000", CountryCode: 1, Region: "US", Type: NumberTypeFixedLineOrMobile}},
		{name: "job region sets the international prefix", limits: limits,
			job: Job{ID: "a", To: "011 45 26227921", Region: "US", Code: testCode},
			ttl: 5 * time.Minute, number: dk},
		{name: "national number without any region", limits: Limits{DefaultTTL: time.Minute},
			job:    Job{ID: "a", To: "26227921", Code: testCode},
			reason: ReasonInvalidNumber, field: "to"},
		{name: "invalid number", limits: limits,
			job:    Job{ID: "a", To: "+45 1", Code: testCode},
			reason: ReasonInvalidNumber, field: "to"},
		{name: "non-geographic number", limits: limits,
			job:    Job{ID: "a", To: "+800 1234 5678", Code: testCode},
			reason: ReasonInvalidNumber, field: "to"},

		// The number policy.
		{name: "zero policy accepts premium rate", limits: limits,
			job: Job{ID: "a", To: "+44 901 234 5678", Code: testCode},
			ttl: 5 * time.Minute, number: gbPremium},
		{name: "premium rate blocked", limits: policy(NumberPolicy{BlockedTypes: DefaultBlockedTypes()}),
			job:    Job{ID: "a", To: "+44 901 234 5678", Code: testCode},
			reason: ReasonNumberTypeBlocked, field: "to"},
		{name: "text job to premium rate blocked too", limits: withText(policy(NumberPolicy{BlockedTypes: DefaultBlockedTypes()})),
			job:    Job{ID: "a", To: "+44 901 234 5678", Text: "hi"},
			reason: ReasonNumberTypeBlocked, field: "to"},
		{name: "mobile passes the default policy", limits: policy(NumberPolicy{BlockedTypes: DefaultBlockedTypes()}),
			job: Job{ID: "a", To: "26227921", Code: testCode},
			ttl: 5 * time.Minute, number: dk},
		{name: "region allowed", limits: policy(NumberPolicy{AllowedRegions: []string{"DK"}}),
			job: Job{ID: "a", To: "26227921", Code: testCode},
			ttl: 5 * time.Minute, number: dk},
		{name: "region not allowed", limits: policy(NumberPolicy{AllowedRegions: []string{"DK"}}),
			job:    Job{ID: "a", To: "+1 613 555 0123", Code: testCode},
			reason: ReasonCountryBlocked, field: "to"},
		{name: "region blocked", limits: policy(NumberPolicy{BlockedRegions: []string{"dk"}}),
			job:    Job{ID: "a", To: "26227921", Code: testCode},
			reason: ReasonCountryBlocked, field: "to"},
		{name: "ttl checked before the number", limits: policy(NumberPolicy{BlockedRegions: []string{"DK"}}),
			job:    Job{ID: "a", To: "26227921", Code: testCode, TTL: Duration(2 * time.Hour)},
			reason: ReasonInvalidTTL, field: "ttl"},

		// Code length: 6 digits unless configured otherwise.
		{name: "5 digits under the default minimum", limits: limits,
			job:    Job{ID: "a", To: "+4526227921", Code: "03481"},
			reason: ReasonInvalidCode, field: "code", detail: "at least 6 digits"},
		{name: "4 digits under the default minimum", limits: limits,
			job:    Job{ID: "a", To: "+4526227921", Code: "0348"},
			reason: ReasonInvalidCode, field: "code", detail: "at least 6 digits"},
		{name: "6 digits at the default minimum", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: "000000"},
			ttl: 5 * time.Minute, number: dk},
		{name: "10 digits", limits: limits,
			job: Job{ID: "a", To: "+4526227921", Code: "0123456789"},
			ttl: 5 * time.Minute, number: dk},
		{name: "4 digits where configured", limits: digits(4),
			job: Job{ID: "a", To: "+4526227921", Code: "0348"},
			ttl: 5 * time.Minute, number: dk},
		{name: "7 digits under a minimum of 8", limits: digits(8),
			job:    Job{ID: "a", To: "+4526227921", Code: "0348120"},
			reason: ReasonInvalidCode, field: "code", detail: "at least 8 digits"},
		{name: "code length checked before the number", limits: limits,
			job:    Job{ID: "a", To: "+45 1", Code: "0348"},
			reason: ReasonInvalidCode, field: "code"},

		// Plain-text jobs: off unless turned on.
		{name: "text off by default", limits: limits,
			job:    Job{ID: "a", To: "+4526227921", Text: "hi"},
			reason: ReasonTextDisabled, field: "text", detail: "otp.allow_text"},
		{name: "text off in the zero limits", limits: Limits{},
			job:    Job{ID: "a", To: "+4526227921", Text: "hi"},
			reason: ReasonTextDisabled, field: "text"},
		{name: "text where allowed", limits: withText(limits),
			job: Job{ID: "a", To: "+4526227921", Text: "hi"},
			ttl: 5 * time.Minute, number: dk},
		{name: "text allowed still needs a valid number", limits: withText(limits),
			job:    Job{ID: "a", To: "+45 1", Text: "hi"},
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
				if !strings.Contains(re.Detail, tc.detail) {
					t.Errorf("Detail %q, want it to say %q", re.Detail, tc.detail)
				}
				if tc.job.Code != "" && strings.Contains(re.Detail, tc.job.Code) {
					t.Errorf("Detail %q reveals the code", re.Detail)
				}
				if digits := strings.Map(keepDigits, tc.job.To); len(digits) >= 6 && strings.Contains(re.Detail, digits[len(digits)-6:]) {
					t.Errorf("Detail %q reveals the number", re.Detail)
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

func TestLimitsFit(t *testing.T) {
	code := Prepared{Job: Job{ID: "a", To: "+4526227921", Code: testCode}}
	text := Prepared{Job: Job{ID: "a", To: "+4526227921", Text: "x"}}
	for _, tc := range []struct {
		name   string
		limits Limits
		p      Prepared
		text   string
		parts  int
		field  string // of a too_long rejection
		detail string
	}{
		{name: "one SMS", p: code, text: strings.Repeat("a", 160), parts: 1},
		{name: "two SMS", p: code, text: strings.Repeat("a", 161), parts: 2},
		{name: "3 SMS at the default maximum", p: code, text: strings.Repeat("a", 3*153), parts: 3},
		{name: "4 SMS over the default maximum", p: code, text: strings.Repeat("a", 3*153+1), parts: 4,
			field: "template", detail: "takes 4 SMS, more than the maximum 3"},
		{name: "UCS-2 counts 67 per part", p: code, text: strings.Repeat("é✓", 101), parts: 4,
			field: "template", detail: "more than the maximum 3"},
		{name: "text job names the text", p: text, text: strings.Repeat("a", 3*153+1), parts: 4,
			field: "text", detail: "more than the maximum 3"},
		{name: "maximum raised", limits: Limits{MaxParts: 4}, p: text, text: strings.Repeat("a", 4*153), parts: 4},
		{name: "maximum lowered", limits: Limits{MaxParts: 1}, p: code, text: strings.Repeat("a", 161), parts: 2,
			field: "template", detail: "more than the maximum 1"},
		{name: "31 SMS is not one", limits: Limits{MaxParts: 30}, p: text, text: strings.Repeat("a", 30*153+1), parts: 31,
			field: "text", detail: "takes 31 SMS"},
		{name: "the longest text outside the BMP", limits: Limits{MaxParts: MaxSMSParts}, p: text, text: strings.Repeat("😀", MaxTextLen), parts: 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.limits.Fit(tc.p, tc.text)
			if p.Parts != tc.parts {
				t.Errorf("Parts = %d, want %d", p.Parts, tc.parts)
			}
			if p.Job != tc.p.Job {
				t.Errorf("Job %+v, want it unchanged %+v", p.Job, tc.p.Job)
			}
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Fit: %v", err)
				}
				return
			}
			re, ok := AsReject(err)
			if !ok {
				t.Fatalf("Fit = %v, want too_long", err)
			}
			if re.Reason != ReasonTooLong || re.Field != tc.field || !strings.Contains(re.Detail, tc.detail) {
				t.Errorf("rejected %s (field %q): %q; want too_long (field %q): %q", re.Reason, re.Field, re.Detail, tc.field, tc.detail)
			}
			if strings.Contains(re.Detail, "aaa") || strings.Contains(re.Detail, testCode) {
				t.Errorf("Detail %q shows the message", re.Detail)
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
		`{"id":"a","to":"+4526227921","code":"034812","origin":"example.com","app_hash":"FA+9qCX9VSu"}`,
		`{"id":"a","to":"+4526227921","code":"034812","origin":"xn--bcher-kva.example"}`,
		`{"id":"a","to":"+4526227921","code":"034812","origin":"1.2.3.4"}`,
		`{"id":"a","to":"+4526227921","code":"034812","origin":"Example.COM."}`,
		`{"id":"a","to":"+4526227921","text":"hi","origin":"example.com"}`,
		`{"id":"a","to":"+4526227921","text":"hi","app_hash":"FA+9qCX9VSu"}`,
		`null`, `[]`, `""`, `{}`, `{"id":`, ``,
	} {
		f.Add([]byte(s))
	}
	originSchema := schemaPattern(f, "schema/job.schema.json", "origin")
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
		if (j.Origin != "" || j.AppHash != "") && j.Code == "" {
			t.Fatalf("accepted origin %q and app hash %q without a code", j.Origin, j.AppHash)
		}
		if j.Origin != "" && (!originSchema.MatchString(j.Origin) || len(j.Origin) > MaxOriginLen) {
			t.Fatalf("accepted origin %q, which the schema refuses", j.Origin)
		}
		if j.AppHash != "" && !appHashPattern.MatchString(j.AppHash) {
			t.Fatalf("accepted app hash %q", j.AppHash)
		}
		if !utf8.Valid(data) || len(data) > MaxJobSize {
			t.Fatalf("accepted a job that is not UTF-8 or too large: %q", data)
		}
		// The default limits pass no code shorter than 6 digits and no
		// text.
		if p, err := (Limits{}).Prepare(j); err == nil && (p.Text != "" || len(p.Code) < DefaultMinCodeDigits) {
			t.Fatalf("default limits passed code %q, text %q", p.Code, p.Text)
		} else if re, ok := AsReject(err); err != nil && !ok {
			t.Fatalf("Prepare error %v (%T) is not a *RejectError", err, err)
		} else if ok && j.Text != "" && re.Reason != ReasonTextDisabled {
			t.Fatalf("text job rejected with %s, want text_disabled", re.Reason)
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
