package otp

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers/v2"
)

// NumberPolicy decides which valid numbers may receive OTPs. The zero value
// accepts every number ParseNumber accepts.
//
// A policy is checked once, at start-up, with Validate; Check then compares
// names as they are: a misspelt type or region in an unvalidated policy
// blocks nothing.
type NumberPolicy struct {
	// BlockedTypes are the number types refused, by the names of the
	// NumberType constants ("premium_rate", "shared_cost", "toll_free",
	// "uan", "pager", "voicemail", "voip", "personal_number", "fixed_line",
	// "mobile", "fixed_line_or_mobile", "unknown"); see DefaultBlockedTypes.
	// Names are lower-case. Blocking "fixed_line" does not block
	// "fixed_line_or_mobile", the type of every number in regions whose
	// numbering plan does not tell the two apart (US, CA, ...).
	BlockedTypes []string
	// AllowedRegions, if non-empty, is the only ISO 3166-1 alpha-2 regions
	// accepted; BlockedRegions are refused (also when allowed). Regions are
	// compared ignoring case. The region is the number's own ("CA" for
	// +1 613 ...), not the calling code's.
	AllowedRegions, BlockedRegions []string
}

// DefaultBlockedTypes returns the number types an OTP gateway should refuse:
// premium_rate, shared_cost, toll_free, uan, pager and voicemail. None of
// them belongs to a person's phone, and the premium and shared-cost ranges
// are what SMS pumping (toll fraud) aims at. The slice is new on every call.
func DefaultBlockedTypes() []string {
	return []string{
		NumberTypePremiumRate, NumberTypeSharedCost, NumberTypeTollFree,
		NumberTypeUAN, NumberTypePager, NumberTypeVoicemail,
	}
}

// Validate reports every unknown type name and every malformed or unknown
// region of the policy, in one error.
func (p NumberPolicy) Validate() error {
	var problems []string
	for _, t := range p.BlockedTypes {
		if !knownNumberType(t) {
			problems = append(problems, fmt.Sprintf("unknown number type %q", t))
		}
	}
	for _, list := range []struct {
		name    string
		regions []string
	}{{"allowed", p.AllowedRegions}, {"blocked", p.BlockedRegions}} {
		for _, r := range list.regions {
			if problem := regionProblem(r); problem != "" {
				problems = append(problems, fmt.Sprintf("%s region %q %s", list.name, r, problem))
			}
		}
	}
	for _, r := range p.BlockedRegions {
		if containsFold(p.AllowedRegions, r) {
			problems = append(problems, fmt.Sprintf("region %q is both allowed and blocked", r))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if slices.ContainsFunc(problems, func(s string) bool { return strings.HasPrefix(s, "unknown number type") }) {
		problems = append(problems, "known number types are "+strings.Join(numberTypeNames(), ", "))
	}
	return errors.New("number policy: " + strings.Join(problems, "; "))
}

// regionProblem says what is wrong with a configured region, or "" when it
// is an ISO 3166-1 alpha-2 region that libphonenumber has numbers for.
func regionProblem(r string) string {
	switch {
	case !regionPattern.MatchString(r):
		return "is not an ISO 3166-1 alpha-2 code"
	case strings.EqualFold(r, "UK"):
		return `is not a region code: the United Kingdom is "GB"`
	case phonenumbers.GetCountryCodeForRegion(strings.ToUpper(r)) == 0:
		return "is not a region with phone numbers"
	}
	return ""
}

// numberTypeNames lists the names of all number types.
func numberTypeNames() []string {
	var names []string
	for t := phonenumbers.FIXED_LINE; t <= phonenumbers.UNKNOWN; t++ {
		names = append(names, numberTypeName(t))
	}
	return names
}

// Check refuses a number the policy does not accept, with a *RejectError of
// ReasonCountryBlocked or ReasonNumberTypeBlocked (Field "to"). The region is
// checked first. The Detail names the region or the type, never the number.
// A Number without a Type (not made by ParseNumber) counts as "unknown".
func (p NumberPolicy) Check(n Number) error {
	if (len(p.AllowedRegions) > 0 && !containsFold(p.AllowedRegions, n.Region)) || containsFold(p.BlockedRegions, n.Region) {
		if n.Region == "" {
			return reject(ReasonCountryBlocked, "to", "numbers of an unknown region are not accepted")
		}
		return reject(ReasonCountryBlocked, "to", "numbers of region %s are not accepted", n.Region)
	}
	typ := n.Type
	if typ == "" {
		typ = NumberTypeUnknown
	}
	if slices.Contains(p.BlockedTypes, typ) {
		return reject(ReasonNumberTypeBlocked, "to", "%s numbers are not accepted", typ)
	}
	return nil
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(e string) bool { return strings.EqualFold(e, s) })
}
