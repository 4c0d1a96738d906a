package otp

import (
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers/v2"
)

// Number is a validated phone number.
type Number struct {
	E164        string // "+4526227921"
	CountryCode int    // 45
	Region      string // ISO 3166-1 alpha-2 region of the number, "DK"
	Type        string // what libphonenumber knows of the number range: one of the NumberType constants
}

// Number types, as libphonenumber classifies number ranges
// (phonenumbers.GetNumberType), in the snake_case names a NumberPolicy and
// Number.Type use.
const (
	NumberTypeFixedLine         = "fixed_line"
	NumberTypeMobile            = "mobile"
	NumberTypeFixedLineOrMobile = "fixed_line_or_mobile" // the numbering plan does not tell (US, CA, ...)
	NumberTypeTollFree          = "toll_free"
	NumberTypePremiumRate       = "premium_rate"
	NumberTypeSharedCost        = "shared_cost"
	NumberTypeVoIP              = "voip"
	NumberTypePersonalNumber    = "personal_number"
	NumberTypePager             = "pager"
	NumberTypeUAN               = "uan" // universal access ("company") numbers
	NumberTypeVoicemail         = "voicemail"
	NumberTypeUnknown           = "unknown"
)

// numberTypeName is the snake_case name of a phonenumbers type.
func numberTypeName(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.FIXED_LINE:
		return NumberTypeFixedLine
	case phonenumbers.MOBILE:
		return NumberTypeMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return NumberTypeFixedLineOrMobile
	case phonenumbers.TOLL_FREE:
		return NumberTypeTollFree
	case phonenumbers.PREMIUM_RATE:
		return NumberTypePremiumRate
	case phonenumbers.SHARED_COST:
		return NumberTypeSharedCost
	case phonenumbers.VOIP:
		return NumberTypeVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return NumberTypePersonalNumber
	case phonenumbers.PAGER:
		return NumberTypePager
	case phonenumbers.UAN:
		return NumberTypeUAN
	case phonenumbers.VOICEMAIL:
		return NumberTypeVoicemail
	default:
		return NumberTypeUnknown
	}
}

// knownNumberType reports whether name is one of the NumberType constants.
func knownNumberType(name string) bool {
	for t := phonenumbers.FIXED_LINE; t <= phonenumbers.UNKNOWN; t++ {
		if numberTypeName(t) == name {
			return true
		}
	}
	return false
}

// String returns the masked form, so that a Number printed by accident in a
// log line does not reveal the number.
func (n Number) String() string { return n.Masked() }

// Masked returns the number with all digits hidden except the country code
// and the last two: "+45******21".
func (n Number) Masked() string {
	cc := strconv.Itoa(n.CountryCode)
	digits := strings.TrimPrefix(n.E164, "+")
	if n.CountryCode == 0 || !strings.HasPrefix(digits, cc) || len(digits) < len(cc)+2 {
		return MaskRaw(n.E164)
	}
	hidden := len(digits) - len(cc) - 2
	return "+" + cc + strings.Repeat("*", hidden) + digits[len(digits)-2:]
}

// MaskRaw masks a string that may or may not be a phone number (for example
// the unparsable input of a rejected job): everything but the last two
// characters becomes '*', and the length is not revealed beyond 16.
func MaskRaw(s string) string {
	r := []rune(s)
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	n := min(len(r)-2, 14)
	return strings.Repeat("*", n) + string(r[len(r)-2:])
}

// numberForm refuses what cannot be a phone number as a person types it:
// over 40 characters, or characters other than digits, spaces and +-().
func numberForm(raw string) *RejectError {
	if len(raw) > 40 {
		return reject(ReasonInvalidNumber, "to", "phone number is longer than 40 characters")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return !strings.ContainsRune("0123456789 +-().", r) }) {
		return reject(ReasonInvalidNumber, "to", "phone number may contain only digits, spaces and +-().")
	}
	return nil
}

// ParseNumber normalises what a person typed into an E.164 number. region is
// the ISO region used for national numbers and for the international dialling
// prefix ("011" in "US"); it may be empty when raw starts with '+'.
//
// Letters are refused before parsing: libphonenumber would silently map
// "1-800-FLOWERS" onto digits. So "Denmark (+45) 26227921" is refused too,
// although a person might type it.
//
// Non-geographic numbers (libphonenumber's region "001": international
// freephone +800, shared cost +808, premium rate +979, Inmarsat +870,
// satellite and global networks +881/+882/+883, ...) are refused as
// ReasonInvalidNumber, whatever the NumberPolicy: they are not numbers an
// SMS from a terrestrial SIM reaches, or reaches at satellite prices. The
// returned Number therefore always has an ISO 3166-1 Region, which
// NumberPolicy relies on.
func ParseNumber(raw, region string) (Number, error) {
	if raw == "" {
		return Number{}, reject(ReasonMissingField, "to", "phone number is empty")
	}
	if err := numberForm(raw); err != nil {
		return Number{}, err
	}
	region = strings.ToUpper(region)
	if region == "" {
		// Without a region, the ITU's international prefix 00 (used by
		// most of the world) is read as "+"; other prefixes (011 in
		// North America) depend on a region.
		if rest, ok := strings.CutPrefix(strings.TrimLeft(raw, " ("), "00"); ok {
			raw = "+" + rest
		}
	}
	pn, ok := parseE164(raw)
	if !ok {
		var err error
		if pn, err = phonenumbers.Parse(raw, region); err != nil {
			return Number{}, reject(ReasonInvalidNumber, "to", "cannot parse phone number: %v", err)
		}
	}
	// A number is valid when its region's metadata gives it a type.
	region, typ := classify(pn)
	if typ == phonenumbers.UNKNOWN {
		return Number{}, reject(ReasonInvalidNumber, "to", "not a valid phone number for its region")
	}
	if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY || !regionPattern.MatchString(region) {
		return Number{}, reject(ReasonInvalidNumber, "to", "non-geographic numbers (+%d) cannot receive SMS", pn.GetCountryCode())
	}
	return Number{
		E164:        phonenumbers.Format(pn, phonenumbers.E164),
		CountryCode: int(pn.GetCountryCode()),
		Region:      region,
		Type:        numberTypeName(typ),
	}, nil
}
