package otp

import (
	"fmt"
	"regexp"
	"strings"
)

// Route names destinations a modem is preferred for: an ISO region ("DK")
// or an E.164 prefix ("+4530").
type Route string

var (
	routeRegion = regexp.MustCompile(`^[A-Z]{2}$`)
	routePrefix = regexp.MustCompile(`^\+[1-9][0-9]{0,14}$`)
)

// Validate returns an error unless r is an ISO region or an E.164 prefix.
func (r Route) Validate() error {
	if routeRegion.MatchString(string(r)) || routePrefix.MatchString(string(r)) {
		return nil
	}
	return fmt.Errorf("route %q: want an ISO region such as DK or an E.164 prefix such as +4530", string(r))
}

// Match reports whether n is one of r's destinations.
func (r Route) Match(n Number) bool {
	if strings.HasPrefix(string(r), "+") {
		return strings.HasPrefix(n.E164, string(r))
	}
	return n.Region == string(r)
}
