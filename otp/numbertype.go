package otp

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers/v2"
	"github.com/nyaruka/phonenumbers/v2/metadata"
)

// classify returns the region and the type of number pn as
// phonenumbers.GetRegionCodeForNumber and GetNumberType do, in one pass
// over libphonenumber's metadata: those build each pattern into a new
// string, look it up in a locked cache and match it twice, on every call,
// and both find the region; a flood of numbers paid for that several times
// over per number. A number is valid when its type is not UNKNOWN
// (IsValidNumber is the same test). TestValidAsLibphonenumber holds it to
// the library's answers.
func classify(pn *phonenumbers.PhoneNumber) (string, phonenumbers.PhoneNumberType) {
	cc := int(pn.GetCountryCode())
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	region, typ, typed := "", phonenumbers.UNKNOWN, false
	switch len(regions) {
	case 0:
		return "", phonenumbers.UNKNOWN
	case 1:
		region = regions[0]
	default:
		for _, r := range regions {
			md, _ := metadata.RegionMetadata(r)
			if md == nil {
				continue
			}
			if ld := md.GetLeadingDigits(); ld != "" {
				if leadingDigits(md).MatchString(nsn) {
					region = r
					break
				}
			} else if t := numberType(nsn, md); t != phonenumbers.UNKNOWN {
				region, typ, typed = r, t, true
				break
			}
		}
	}
	if region == "" || typed {
		return region, typ
	}
	var md *metadata.PhoneMetadata
	if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
		md, _ = metadata.NonGeoMetadata(cc)
	} else {
		md, _ = metadata.RegionMetadata(region)
	}
	if md == nil {
		return region, phonenumbers.UNKNOWN
	}
	return region, numberType(nsn, md)
}

// numberType is libphonenumber's getNumberTypeHelper.
func numberType(nsn string, md *metadata.PhoneMetadata) phonenumbers.PhoneNumberType {
	if !matchesDesc(nsn, md.GetGeneralDesc()) {
		return phonenumbers.UNKNOWN
	}
	for _, d := range [...]struct {
		desc *metadata.PhoneNumberDesc
		typ  phonenumbers.PhoneNumberType
	}{
		{md.GetPremiumRate(), phonenumbers.PREMIUM_RATE},
		{md.GetTollFree(), phonenumbers.TOLL_FREE},
		{md.GetSharedCost(), phonenumbers.SHARED_COST},
		{md.GetVoip(), phonenumbers.VOIP},
		{md.GetPersonalNumber(), phonenumbers.PERSONAL_NUMBER},
		{md.GetPager(), phonenumbers.PAGER},
		{md.GetUan(), phonenumbers.UAN},
		{md.GetVoicemail(), phonenumbers.VOICEMAIL},
	} {
		if matchesDesc(nsn, d.desc) {
			return d.typ
		}
	}
	same := md.GetSameMobileAndFixedLinePattern()
	if matchesDesc(nsn, md.GetFixedLine()) {
		if same || matchesDesc(nsn, md.GetMobile()) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	}
	if !same && matchesDesc(nsn, md.GetMobile()) {
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

// matchesDesc is libphonenumber's isNumberMatchingDesc: a possible length
// of d, and its pattern in full. A missing description matches nothing.
func matchesDesc(nsn string, d *metadata.PhoneNumberDesc) bool {
	if d == nil {
		return nsn == ""
	}
	if len(d.PossibleLength) > 0 && !slices.Contains(d.PossibleLength, int32(len(nsn))) {
		return false
	}
	return descPattern(d).MatchString(nsn)
}

// Compiled patterns of libphonenumber's metadata, which does not change
// while the process runs: a cache, like a package's compiled regexps.
var (
	descPatterns    sync.Map // *metadata.PhoneNumberDesc -> *regexp.Regexp
	leadingDigitsP  sync.Map // *metadata.PhoneMetadata -> *regexp.Regexp
	nationalPrefixP sync.Map // *metadata.PhoneMetadata -> *regexp.Regexp
)

func descPattern(d *metadata.PhoneNumberDesc) *regexp.Regexp {
	return compiled(&descPatterns, d, d.GetNationalNumberPattern(), true)
}

func nationalPrefix(md *metadata.PhoneMetadata) *regexp.Regexp {
	return compiled(&nationalPrefixP, md, md.GetNationalPrefixForParsing(), false)
}

func leadingDigits(md *metadata.PhoneMetadata) *regexp.Regexp {
	return compiled(&leadingDigitsP, md, md.GetLeadingDigits(), false)
}

// compiled returns pattern raw, anchored at the start (and at the end when
// whole), from cache under owner, compiling it the first time.
func compiled(cache *sync.Map, owner any, raw string, whole bool) *regexp.Regexp {
	if re, ok := cache.Load(owner); ok {
		return re.(*regexp.Regexp)
	}
	src := "^(?:" + raw + ")"
	if whole {
		src += "$"
	}
	re := regexp.MustCompile(src)
	cache.Store(owner, re)
	return re
}

// parseE164 reads raw in E.164 form ("+" and digits) without
// phonenumbers.Parse, whose general reader (punctuation, extensions,
// prefixes, letters) a flood of well-formed numbers pays for. It declines
// (ok false) any number whose reading could differ from Parse's: one whose
// national number starts with 0 (Italian leading zeros, national
// prefixes), or one that starts with what its country's national prefix
// for parsing matches (Parse might strip it). TestValidAsLibphonenumber and
// FuzzParseNumber hold it to Parse.
func parseE164(raw string) (pn *phonenumbers.PhoneNumber, ok bool) {
	if len(raw) < 4 || len(raw) > 18 || raw[0] != '+' || raw[1] == '0' {
		return nil, false
	}
	for i := 1; i < len(raw); i++ {
		if c := raw[i]; c < '0' || c > '9' {
			return nil, false
		}
	}
	digits := raw[1:]
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc, _ := strconv.Atoi(digits[:n])
		regions := phonenumbers.GetRegionCodesForCountryCode(cc)
		if len(regions) == 0 {
			continue
		}
		nsn := digits[n:]
		if len(nsn) < 2 || len(nsn) > 17 || nsn[0] == '0' {
			return nil, false
		}
		var md *metadata.PhoneMetadata
		if regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
			md, _ = metadata.NonGeoMetadata(cc)
		} else {
			md, _ = metadata.RegionMetadata(regions[0])
		}
		if md == nil {
			return nil, false
		}
		if md.GetNationalPrefixForParsing() != "" && nationalPrefix(md).MatchString(nsn) {
			return nil, false
		}
		national, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return nil, false
		}
		code := int32(cc)
		return &phonenumbers.PhoneNumber{CountryCode: &code, NationalNumber: &national}, true
	}
	return nil, false
}
