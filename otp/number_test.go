package otp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers/v2"
)

// Danish numbers: 26227921 is a valid mobile number (libphonenumber types
// it fixed_line_or_mobile: Danish ranges mix both). 12345678 is not a valid
// Danish number at all (no Danish number range starts with 1), so it is only
// used as an invalid example; "011-45-..." is tested with 26227921.
func TestParseNumber(t *testing.T) {
	dk := Number{E164: "+4526227921", CountryCode: 45, Region: "DK", Type: NumberTypeFixedLineOrMobile}
	for _, tc := range []struct {
		raw, region string
		want        Number
		reason      Reason
		detail      string // a part of the rejection's Detail
	}{
		// The ways people write a Danish number.
		{raw: "+45 26 22 79 21", want: dk},
		{raw: "+45-26227921", want: dk},
		{raw: "+4526227921", want: dk},
		{raw: "+45 (26) 22-79.21", want: dk},
		{raw: "(+45) 26227921", want: dk},
		{raw: "0045 26227921", region: "DK", want: dk},
		// 00 is the international prefix when no region says otherwise;
		// 011 is North America's and needs the region.
		{raw: "0045 26227921", want: dk},
		{raw: "0046 70 123 45 67", want: Number{E164: "+46701234567", CountryCode: 46, Region: "SE", Type: NumberTypeMobile}},
		{raw: "(0046) 70 123 45 67", want: Number{E164: "+46701234567", CountryCode: 46, Region: "SE", Type: NumberTypeMobile}},
		{raw: "011-45-26227921", reason: ReasonInvalidNumber},
		{raw: "26227921", region: "DK", want: dk},
		{raw: "26227921", region: "dk", want: dk},
		{raw: "011-45-26227921", region: "US", want: dk},
		{raw: "+45 26227921", region: "US", want: dk}, // '+' wins over the region
		// Letters are refused before parsing, also a country name.
		{raw: "Denmark (+45) 26227921", reason: ReasonInvalidNumber, detail: "only digits"},
		{raw: "Denmark (+45) 26227921", region: "DK", reason: ReasonInvalidNumber, detail: "only digits"},

		{raw: "+1 650 253 0000", want: Number{E164: "+16502530000", CountryCode: 1, Region: "US", Type: NumberTypeFixedLineOrMobile}},
		{raw: "(650) 253-0000", region: "US", want: Number{E164: "+16502530000", CountryCode: 1, Region: "US", Type: NumberTypeFixedLineOrMobile}},
		// The region comes from the number, not from the calling code: +1
		// 613 is Ottawa, Canada.
		{raw: "+1 613 555 0123", want: Number{E164: "+16135550123", CountryCode: 1, Region: "CA", Type: NumberTypeFixedLineOrMobile}},
		{raw: "613-555-0123", region: "US", want: Number{E164: "+16135550123", CountryCode: 1, Region: "CA", Type: NumberTypeFixedLineOrMobile}},
		{raw: "+358 40 1234567", want: Number{E164: "+358401234567", CountryCode: 358, Region: "FI", Type: NumberTypeMobile}},
		{raw: "+7 701 123 4567", want: Number{E164: "+77011234567", CountryCode: 7, Region: "KZ", Type: NumberTypeMobile}},

		// Number types (libphonenumber's example numbers).
		{raw: "+44 121 234 5678", want: Number{E164: "+441212345678", CountryCode: 44, Region: "GB", Type: NumberTypeFixedLine}},
		{raw: "+44 7400 123456", want: Number{E164: "+447400123456", CountryCode: 44, Region: "GB", Type: NumberTypeMobile}},
		{raw: "0800 123 4567", region: "GB", want: Number{E164: "+448001234567", CountryCode: 44, Region: "GB", Type: NumberTypeTollFree}},
		{raw: "+1 800 234 5678", want: Number{E164: "+18002345678", CountryCode: 1, Region: "US", Type: NumberTypeTollFree}},
		{raw: "+44 901 234 5678", want: Number{E164: "+449012345678", CountryCode: 44, Region: "GB", Type: NumberTypePremiumRate}},
		{raw: "1-900-234-5678", region: "US", want: Number{E164: "+19002345678", CountryCode: 1, Region: "US", Type: NumberTypePremiumRate}},
		{raw: "+49 180 12345", want: Number{E164: "+4918012345", CountryCode: 49, Region: "DE", Type: NumberTypeSharedCost}},
		{raw: "+44 56 1234 5678", want: Number{E164: "+445612345678", CountryCode: 44, Region: "GB", Type: NumberTypeVoIP}},
		{raw: "+44 70 1234 5678", want: Number{E164: "+447012345678", CountryCode: 44, Region: "GB", Type: NumberTypePersonalNumber}},
		{raw: "+44 7640 123456", want: Number{E164: "+447640123456", CountryCode: 44, Region: "GB", Type: NumberTypePager}},
		{raw: "+44 55 1234 5678", want: Number{E164: "+445512345678", CountryCode: 44, Region: "GB", Type: NumberTypeUAN}},
		{raw: "+49 177 99 1234567", want: Number{E164: "+49177991234567", CountryCode: 49, Region: "DE", Type: NumberTypeVoicemail}},

		// Non-geographic numbers (libphonenumber region "001") cannot
		// receive SMS.
		{raw: "+800 1234 5678", reason: ReasonInvalidNumber, detail: "non-geographic"},   // international freephone
		{raw: "+808 1234 5678", reason: ReasonInvalidNumber, detail: "non-geographic"},   // international shared cost
		{raw: "+870 301 234 567", reason: ReasonInvalidNumber, detail: "non-geographic"}, // Inmarsat
		{raw: "+979 1 2345 6789", reason: ReasonInvalidNumber, detail: "non-geographic"}, // international premium rate
		{raw: "+881 6 1234 5678", reason: ReasonInvalidNumber, detail: "non-geographic"}, // satellite
		{raw: "+882 34 2 1234", reason: ReasonInvalidNumber, detail: "non-geographic"},   // international networks
		{raw: "+883 510 012 345", reason: ReasonInvalidNumber, detail: "non-geographic"},
		{raw: "+888 1234 5678 901", reason: ReasonInvalidNumber, detail: "non-geographic"},
		{raw: "00800 1234 5678", region: "DK", reason: ReasonInvalidNumber, detail: "non-geographic"},

		{raw: "", region: "DK", reason: ReasonMissingField},
		{raw: "1-800-FLOWERS", region: "US", reason: ReasonInvalidNumber},
		{raw: "+45 2622 7921 ext 5", reason: ReasonInvalidNumber},
		{raw: "+45 2622 7921#", reason: ReasonInvalidNumber},
		{raw: "+45 1", reason: ReasonInvalidNumber},
		{raw: "+45 12345678", reason: ReasonInvalidNumber},
		{raw: "011-45-12345678", region: "US", reason: ReasonInvalidNumber},
		{raw: "26227921", reason: ReasonInvalidNumber}, // national without a region
		{raw: "26227921", region: "XX", reason: ReasonInvalidNumber},
		{raw: "+", reason: ReasonInvalidNumber},
		{raw: "+++", reason: ReasonInvalidNumber},
		{raw: "()-.", region: "DK", reason: ReasonInvalidNumber},
		{raw: "+45 2622７921", reason: ReasonInvalidNumber}, // a fullwidth digit
		{raw: "+45 26227921" + strings.Repeat(" ", 28), want: dk},
		{raw: "+45 26227921" + strings.Repeat(" ", 29), reason: ReasonInvalidNumber}, // 41 characters
		{raw: strings.Repeat("1", 41), region: "US", reason: ReasonInvalidNumber},
	} {
		t.Run(tc.raw+"/"+tc.region, func(t *testing.T) {
			n, err := ParseNumber(tc.raw, tc.region)
			if tc.reason != "" {
				re, ok := AsReject(err)
				if !ok {
					t.Fatalf("ParseNumber = %#v, %v; want %s", n, err, tc.reason)
				}
				if re.Reason != tc.reason || re.Field != "to" {
					t.Errorf("rejected %s (field %q), want %s (field \"to\")", re.Reason, re.Field, tc.reason)
				}
				if n != (Number{}) {
					t.Errorf("rejected with a non-zero Number %#v", n)
				}
				if !strings.Contains(re.Detail, tc.detail) {
					t.Errorf("Detail %q does not say %q", re.Detail, tc.detail)
				}
				if digits := strings.Map(keepDigits, tc.raw); len(digits) > 6 && strings.Contains(strings.Map(keepDigits, re.Detail), digits[len(digits)-6:]) {
					t.Errorf("Detail %q reveals the number", re.Detail)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNumber: %v", err)
			}
			if n != tc.want {
				t.Errorf("ParseNumber = %#v, want %#v", n, tc.want)
			}
		})
	}
}

func keepDigits(r rune) rune {
	if '0' <= r && r <= '9' {
		return r
	}
	return -1
}

// Every type name ParseNumber can give is one a NumberPolicy accepts.
func TestNumberTypeNames(t *testing.T) {
	names := numberTypeNames()
	want := []string{"fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate", "shared_cost",
		"voip", "personal_number", "pager", "uan", "voicemail", "unknown"}
	if !slices.Equal(names, want) {
		t.Errorf("numberTypeNames() = %v, want %v", names, want)
	}
	for _, name := range want {
		if !knownNumberType(name) {
			t.Errorf("knownNumberType(%q) = false", name)
		}
	}
	for _, name := range []string{"", "Mobile", "premium", "PREMIUM_RATE", "premium-rate"} {
		if knownNumberType(name) {
			t.Errorf("knownNumberType(%q) = true", name)
		}
	}
}

func TestNumberMasked(t *testing.T) {
	for _, tc := range []struct {
		n    Number
		want string
	}{
		{Number{E164: "+4526227921", CountryCode: 45, Region: "DK"}, "+45******21"},
		{Number{E164: "+16502530000", CountryCode: 1, Region: "US"}, "+1********00"},
		{Number{E164: "+358401234567", CountryCode: 358, Region: "FI"}, "+358*******67"},
		{Number{E164: "+6837290", CountryCode: 683, Region: "NU"}, "+683**90"},
		// Inconsistent values fall back to MaskRaw.
		{Number{E164: "+4526227921"}, "*********21"},
		{Number{E164: "+4526227921", CountryCode: 46}, "*********21"},
		{Number{E164: "+452", CountryCode: 45}, "**52"},
		{Number{}, ""},
	} {
		if got := tc.n.Masked(); got != tc.want {
			t.Errorf("%#v.Masked() = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestMaskRaw(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"1", "*"},
		{"12", "**"},
		{"123", "*23"},
		{"+45 26227921", "**********21"},
		{"ÆØÅæøå", "****øå"}, // characters, not bytes
		{"1234567890123456", "**************56"},
		// Longer input keeps the mask at 16 characters.
		{"12345678901234567", "**************67"},
		{strings.Repeat("9", 40) + "12", "**************12"},
	} {
		if got := MaskRaw(tc.in); got != tc.want {
			t.Errorf("MaskRaw(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A Number printed by accident must not reveal the number.
func TestNumberStringHidesNumber(t *testing.T) {
	for _, raw := range []string{"+4526227921", "+16502530000", "+16135550123", "+358401234567", "+447400123456"} {
		n, err := ParseNumber(raw, "")
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		national := strings.TrimPrefix(n.E164, "+"+strconv.Itoa(n.CountryCode))
		for _, s := range []string{n.String(), fmt.Sprint(n), fmt.Sprintf("%v %+v %s", n, n, n), fmt.Sprint(&n)} {
			if strings.Contains(s, national) || strings.Contains(s, raw) {
				t.Errorf("%q reveals %s", s, raw)
			}
		}
		if n.String() != n.Masked() {
			t.Errorf("String() %q != Masked() %q", n.String(), n.Masked())
		}
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range [][2]string{
		{"+45 26 22 79 21", ""}, {"0045 26227921", "DK"}, {"(+45) 26227921", ""}, {"26227921", "dk"},
		{"011-45-26227921", "US"}, {"+1 650 253 0000", ""}, {"+1 613 555 0123", ""}, {"+358 40 1234567", ""},
		{"+800 1234 5678", ""}, {"+683 7290", ""}, {"1-800-FLOWERS", "US"}, {"+45 1", ""}, {"", ""},
		{"+", ""}, {"()", "DK"}, {"+39 06 1234 5678", "IT"}, {"+44 (0) 7400 123456", "GB"}, {"8 800 555 35 35", "RU"},
		{"Denmark (+45) 26227921", "DK"}, {"+979 1 2345 6789", ""}, {"+881 6 1234 5678", ""}, {"+44 901 234 5678", ""},
		{"+447400123456", ""}, {"+44180020123456", ""}, {"+390612345678", ""}, {"+5491112345678", ""}, {"+12015550123", ""},
		{"+525512345678", ""}, {"+4526227921", "US"}, {"+80012345678", ""}, {"+8613912345678", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		if fast, ok := parseE164(raw); ok {
			pn, err := phonenumbers.Parse(raw, region)
			if err != nil || !sameNumber(fast, pn) {
				t.Fatalf("%q: parseE164 %v, Parse %v %v", raw, fast, pn, err)
			}
		}
		if pn, err := phonenumbers.Parse(raw, region); err == nil {
			r, typ := classify(pn)
			if want := phonenumbers.GetRegionCodeForNumber(pn); r != want {
				t.Fatalf("%q: classify region %q, libphonenumber %q", raw, r, want)
			}
			if want := phonenumbers.GetNumberType(pn); typ != want {
				t.Fatalf("%q: classify type %v, libphonenumber %v", raw, typ, want)
			}
		}
		n, err := ParseNumber(raw, region)
		if err != nil {
			re, ok := AsReject(err)
			if !ok || re.Reason == "" {
				t.Fatalf("error %v (%T) is not a *RejectError with a Reason", err, err)
			}
			return
		}
		digits, ok := strings.CutPrefix(n.E164, "+")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("E164 %q", n.E164)
		}
		cc := strconv.Itoa(n.CountryCode)
		national, ok := strings.CutPrefix(digits, cc)
		if n.CountryCode <= 0 || !ok || national == "" {
			t.Fatalf("E164 %q does not start with country code %d", n.E164, n.CountryCode)
		}
		if !regionPattern.MatchString(n.Region) || n.Region != strings.ToUpper(n.Region) {
			t.Fatalf("%q: region %q is not an ISO 3166-1 alpha-2 code", n.E164, n.Region)
		}
		// A valid number matches a number range, so it has a type.
		if !knownNumberType(n.Type) || n.Type == NumberTypeUnknown {
			t.Fatalf("%q: type %q", n.E164, n.Type)
		}
		m := n.Masked()
		if len(national) > 4 && strings.Contains(m, national) {
			t.Fatalf("Masked() %q reveals %s", m, n.E164)
		}
		if len(national) > 2 {
			want := "+" + cc + strings.Repeat("*", len(national)-2) + national[len(national)-2:]
			if m != want {
				t.Fatalf("Masked() = %q, want %q", m, want)
			}
		}
		// The normalised number parses to itself.
		again, err := ParseNumber(n.E164, "")
		if err != nil || again != n {
			t.Fatalf("ParseNumber(%q) = %#v, %v; want %#v", n.E164, again, err, n)
		}
	})
}

// TestValidAsLibphonenumber holds ParseNumber's one pass (classify) to
// libphonenumber's IsValidNumber, GetRegionCodeForNumber and
// GetNumberType, over numbers near each region's and each global
// network's example numbers (their last digits drawn at random, so that
// many are valid and many not): the same numbers accepted, with the same
// region and type.
func TestValidAsLibphonenumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	accepted, refused, fastRead := 0, 0, 0
	var examples []*phonenumbers.PhoneNumber
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.TOLL_FREE, phonenumbers.SHARED_COST, phonenumbers.PAGER} {
			examples = append(examples, phonenumbers.GetExampleNumberForTypeInRegion(region, typ))
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		examples = append(examples, phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	for _, ex := range examples {
		if ex == nil {
			continue
		}
		e164 := phonenumbers.Format(ex, phonenumbers.E164)
		for range 20 {
			keep := max(len(e164)-1-rng.IntN(5), 3)
			raw := e164[:keep] + fmt.Sprintf("%06d", rng.IntN(1e6))[:len(e164)-keep+rng.IntN(2)]
			n, err := ParseNumber(raw, "")
			pn, perr := phonenumbers.Parse(raw, "")
			if fast, ok := parseE164(raw); ok {
				fastRead++
				if perr != nil || !sameNumber(fast, pn) {
					t.Fatalf("%s: parseE164 %v, Parse %v %v", raw, fast, pn, perr)
				}
			}
			if perr == nil {
				region, typ := classify(pn)
				if want := phonenumbers.GetRegionCodeForNumber(pn); region != want {
					t.Fatalf("%s: classify region %q, libphonenumber %q", raw, region, want)
				}
				if want := phonenumbers.GetNumberType(pn); typ != want {
					t.Fatalf("%s: classify type %v, libphonenumber %v", raw, typ, want)
				}
			}
			want := perr == nil && phonenumbers.IsValidNumber(pn) &&
				phonenumbers.GetRegionCodeForNumber(pn) != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
			if (err == nil) != want {
				t.Fatalf("%s: ParseNumber err %v, libphonenumber valid and geographic %v", raw, err, want)
			}
			if err != nil {
				refused++
				continue
			}
			accepted++
			if want := numberTypeName(phonenumbers.GetNumberType(pn)); n.Type != want {
				t.Fatalf("%s: type %s, want %s", raw, n.Type, want)
			}
			if want := phonenumbers.GetRegionCodeForNumber(pn); n.Region != want {
				t.Fatalf("%s: region %s, want %s", raw, n.Region, want)
			}
		}
	}
	if accepted < 2000 || refused < 2000 || fastRead < 2000 {
		t.Fatalf("%d accepted, %d refused, %d read by parseE164: too few for the test to tell", accepted, refused, fastRead)
	}
}

// sameNumber reports whether a and b are the same number as Parse reads
// them.
func sameNumber(a, b *phonenumbers.PhoneNumber) bool {
	return a.GetCountryCode() == b.GetCountryCode() && a.GetNationalNumber() == b.GetNationalNumber() &&
		a.GetItalianLeadingZero() == b.GetItalianLeadingZero() && a.GetNumberOfLeadingZeros() == b.GetNumberOfLeadingZeros() &&
		a.GetExtension() == b.GetExtension()
}

// BenchmarkParseNumber measures one ParseNumber of a British mobile number
// (+44 is shared by four regions: the costliest common case).
func BenchmarkParseNumber(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseNumber(fmt.Sprintf("+447400%06d", i%1_000_000), ""); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMaskSender(t *testing.T) {
	for in, want := range map[string]string{
		"+4526227921": "+45******21",
		"26227921":    "******21",
		"Telco":       "Telco",
		"My Bank":     "My Bank",
		"":            "",
		"+":           "+",
		"12":          "**",
	} {
		if got := MaskSender(in); got != want {
			t.Errorf("MaskSender(%q) = %q, want %q", in, got, want)
		}
	}
}
