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

// ParseNumber normalises what a person typed into an E.164 number. region is
// the ISO region used for national numbers and for the international dialling
// prefix ("011" in "US"); it may be empty when raw starts with '+'.
//
// Letters are refused before parsing: libphonenumber would silently map
// "1-800-FLOWERS" onto digits.
func ParseNumber(raw, region string) (Number, error) {
	if raw == "" {
		return Number{}, reject(ReasonMissingField, "to", "phone number is empty")
	}
	if len(raw) > 40 {
		return Number{}, reject(ReasonInvalidNumber, "to", "phone number is longer than 40 characters")
	}
	for _, c := range raw {
		if !strings.ContainsRune("0123456789 +-().", c) {
			return Number{}, reject(ReasonInvalidNumber, "to", "phone number may contain only digits, spaces and +-().")
		}
	}
	region = strings.ToUpper(region)
	pn, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return Number{}, reject(ReasonInvalidNumber, "to", "cannot parse phone number: %v", err)
	}
	if !phonenumbers.IsValidNumber(pn) {
		return Number{}, reject(ReasonInvalidNumber, "to", "not a valid phone number for its region")
	}
	return Number{
		E164:        phonenumbers.Format(pn, phonenumbers.E164),
		CountryCode: int(pn.GetCountryCode()),
		Region:      phonenumbers.GetRegionCodeForNumber(pn),
	}, nil
}
