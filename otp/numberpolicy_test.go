package otp

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultBlockedTypes(t *testing.T) {
	want := []string{"premium_rate", "shared_cost", "toll_free", "uan", "pager", "voicemail"}
	got := DefaultBlockedTypes()
	if !slices.Equal(got, want) {
		t.Fatalf("DefaultBlockedTypes() = %v, want %v", got, want)
	}
	got[0] = "mobile"
	if again := DefaultBlockedTypes(); !slices.Equal(again, want) {
		t.Errorf("DefaultBlockedTypes() shares its slice: %v", again)
	}
	if err := (NumberPolicy{BlockedTypes: DefaultBlockedTypes()}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestNumberPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy NumberPolicy
		want   []string // parts of the error; none means valid
	}{
		{name: "zero"},
		{name: "default", policy: NumberPolicy{BlockedTypes: DefaultBlockedTypes()}},
		{name: "every type", policy: NumberPolicy{BlockedTypes: numberTypeNames()}},
		{name: "regions in any case", policy: NumberPolicy{AllowedRegions: []string{"DK", "se", "Gb"}, BlockedRegions: []string{"ru"}}},
		{name: "special regions", policy: NumberPolicy{AllowedRegions: []string{"XK", "AC", "TA", "GG"}}},
		{name: "duplicates", policy: NumberPolicy{BlockedTypes: []string{"voip", "voip"}, BlockedRegions: []string{"RU", "ru"}}},

		{name: "unknown type", policy: NumberPolicy{BlockedTypes: []string{"premium"}},
			want: []string{`unknown number type "premium"`, "known number types are fixed_line, mobile,"}},
		{name: "type in upper case", policy: NumberPolicy{BlockedTypes: []string{"PREMIUM_RATE"}},
			want: []string{`unknown number type "PREMIUM_RATE"`}},
		{name: "type with a dash", policy: NumberPolicy{BlockedTypes: []string{"toll-free"}},
			want: []string{`unknown number type "toll-free"`}},
		{name: "empty type", policy: NumberPolicy{BlockedTypes: []string{""}},
			want: []string{`unknown number type ""`}},
		{name: "alpha-3 region", policy: NumberPolicy{AllowedRegions: []string{"DNK"}},
			want: []string{`allowed region "DNK" is not an ISO 3166-1 alpha-2 code`}},
		{name: "non-geographic region", policy: NumberPolicy{AllowedRegions: []string{"001"}},
			want: []string{`allowed region "001" is not an ISO 3166-1 alpha-2 code`}},
		{name: "empty region", policy: NumberPolicy{BlockedRegions: []string{""}},
			want: []string{`blocked region "" is not an ISO 3166-1 alpha-2 code`}},
		{name: "padded region", policy: NumberPolicy{BlockedRegions: []string{" DK"}},
			want: []string{`blocked region " DK" is not an ISO 3166-1 alpha-2 code`}},
		{name: "UK", policy: NumberPolicy{BlockedRegions: []string{"uk"}},
			want: []string{`blocked region "uk" is not a region code: the United Kingdom is "GB"`}},
		{name: "unknown region", policy: NumberPolicy{AllowedRegions: []string{"XX"}},
			want: []string{`allowed region "XX" is not a region with phone numbers`}},
		{name: "allowed and blocked", policy: NumberPolicy{AllowedRegions: []string{"DK", "SE"}, BlockedRegions: []string{"se"}},
			want: []string{`region "se" is both allowed and blocked`}},
		{name: "every problem", policy: NumberPolicy{
			BlockedTypes:   []string{"mobile", "premium", "Voip"},
			AllowedRegions: []string{"DK", "EU"},
			BlockedRegions: []string{"dk", "1"},
		}, want: []string{
			`unknown number type "premium"`, `unknown number type "Voip"`,
			`allowed region "EU" is not a region with phone numbers`,
			`blocked region "1" is not an ISO 3166-1 alpha-2 code`,
			`region "dk" is both allowed and blocked`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.policy)
			}
			if !strings.HasPrefix(err.Error(), "number policy: ") {
				t.Errorf("error %q does not say what it is about", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestNumberPolicyCheck(t *testing.T) {
	parse := func(raw string) Number {
		n, err := ParseNumber(raw, "")
		if err != nil {
			t.Fatalf("ParseNumber(%q): %v", raw, err)
		}
		return n
	}
	var (
		dkMobile  = parse("+45 26 22 79 21")    // fixed_line_or_mobile
		gbMobile  = parse("+44 7400 123456")    // mobile
		gbFixed   = parse("+44 121 234 5678")   // fixed_line
		gbPremium = parse("+44 901 234 5678")   // premium_rate
		usToll    = parse("+1 800 234 5678")    // toll_free
		deShared  = parse("+49 180 12345")      // shared_cost
		gbVoIP    = parse("+44 56 1234 5678")   // voip
		gbUAN     = parse("+44 55 1234 5678")   // uan
		gbPager   = parse("+44 7640 123456")    // pager
		deVoice   = parse("+49 177 99 1234567") // voicemail
		usNumber  = parse("+1 650 253 0000")    // US
		caNumber  = parse("+1 613 555 0123")    // +1 too, but Canada
		gbPersona = parse("+44 70 1234 5678")   // personal_number
		dflt      = NumberPolicy{BlockedTypes: DefaultBlockedTypes()}
	)
	for _, tc := range []struct {
		name   string
		policy NumberPolicy
		n      Number
		reason Reason
		detail string
	}{
		{name: "zero policy accepts premium", n: gbPremium},
		{name: "zero policy accepts a hand-made number", n: Number{}},
		{name: "default accepts mobile", policy: dflt, n: gbMobile},
		{name: "default accepts fixed_line_or_mobile", policy: dflt, n: dkMobile},
		{name: "default accepts fixed_line", policy: dflt, n: gbFixed},
		{name: "default accepts voip", policy: dflt, n: gbVoIP},
		{name: "default accepts personal_number", policy: dflt, n: gbPersona},
		{name: "default refuses premium_rate", policy: dflt, n: gbPremium, reason: ReasonNumberTypeBlocked, detail: "premium_rate"},
		{name: "default refuses toll_free", policy: dflt, n: usToll, reason: ReasonNumberTypeBlocked, detail: "toll_free"},
		{name: "default refuses shared_cost", policy: dflt, n: deShared, reason: ReasonNumberTypeBlocked, detail: "shared_cost"},
		{name: "default refuses uan", policy: dflt, n: gbUAN, reason: ReasonNumberTypeBlocked, detail: "uan"},
		{name: "default refuses pager", policy: dflt, n: gbPager, reason: ReasonNumberTypeBlocked, detail: "pager"},
		{name: "default refuses voicemail", policy: dflt, n: deVoice, reason: ReasonNumberTypeBlocked, detail: "voicemail"},
		{name: "voip blocked", policy: NumberPolicy{BlockedTypes: []string{"voip"}}, n: gbVoIP, reason: ReasonNumberTypeBlocked, detail: "voip"},
		{name: "fixed_line does not block fixed_line_or_mobile", policy: NumberPolicy{BlockedTypes: []string{"fixed_line"}}, n: dkMobile},
		{name: "fixed_line blocked", policy: NumberPolicy{BlockedTypes: []string{"fixed_line"}}, n: gbFixed, reason: ReasonNumberTypeBlocked, detail: "fixed_line"},
		{name: "a number without a type is unknown", policy: NumberPolicy{BlockedTypes: []string{"unknown"}},
			n: Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}, reason: ReasonNumberTypeBlocked, detail: "unknown"},

		{name: "allowed region", policy: NumberPolicy{AllowedRegions: []string{"DK", "GB"}}, n: dkMobile},
		{name: "allowed region, any case", policy: NumberPolicy{AllowedRegions: []string{"dk"}}, n: dkMobile},
		{name: "region not allowed", policy: NumberPolicy{AllowedRegions: []string{"DK"}}, n: gbMobile, reason: ReasonCountryBlocked, detail: "GB"},
		{name: "the number's region, not the calling code's", policy: NumberPolicy{AllowedRegions: []string{"US"}},
			n: caNumber, reason: ReasonCountryBlocked, detail: "CA"},
		{name: "blocked region", policy: NumberPolicy{BlockedRegions: []string{"ca"}}, n: caNumber, reason: ReasonCountryBlocked, detail: "CA"},
		{name: "other region of the calling code", policy: NumberPolicy{BlockedRegions: []string{"CA"}}, n: usNumber},
		{name: "blocked wins over allowed", policy: NumberPolicy{AllowedRegions: []string{"DK"}, BlockedRegions: []string{"DK"}},
			n: dkMobile, reason: ReasonCountryBlocked, detail: "DK"},
		{name: "region before type", policy: NumberPolicy{BlockedTypes: DefaultBlockedTypes(), BlockedRegions: []string{"GB"}},
			n: gbPremium, reason: ReasonCountryBlocked, detail: "GB"},
		{name: "number without a region", policy: NumberPolicy{AllowedRegions: []string{"DK"}},
			n: Number{E164: "+4526227921"}, reason: ReasonCountryBlocked, detail: "unknown region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.n)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check(%v): %v", tc.n, err)
				}
				return
			}
			re, ok := AsReject(err)
			if !ok {
				t.Fatalf("Check(%v) = %v; want %s", tc.n, err, tc.reason)
			}
			if re.Reason != tc.reason || re.Field != "to" {
				t.Errorf("rejected %s (field %q), want %s (field \"to\")", re.Reason, re.Field, tc.reason)
			}
			if !strings.Contains(re.Detail, tc.detail) {
				t.Errorf("Detail %q does not name %q", re.Detail, tc.detail)
			}
			// Regions and types have no digits: a digit would be a part
			// of the number.
			if strings.ContainsAny(re.Detail, "0123456789") {
				t.Errorf("Detail %q has digits", re.Detail)
			}
		})
	}
}
