package natsauth

import (
	"net/url"
	"strings"
)

// RedactURL returns a NATS server URL, or a comma-separated list of them,
// with any password or token in it replaced by "xxxxx", so that it can be
// logged or put in an error.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if strings.Contains(p, "@") {
				parts[i] = "[redacted]" // unparsable with credentials: show nothing
			}
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token alone
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
