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

// ClearTextHosts returns the hosts of urls (comma-separated) that would be
// sent a password or a token in clear: a plain nats:// URL to a host that
// is not loopback, with no TLS configured in c, and a password or token in
// the URL or in c. Nkeys and creds never send their secret.
func ClearTextHosts(urls string, c Client) []string {
	if c.CAFile != "" || c.CertFile != "" || c.ServerName != "" {
		return nil
	}
	secretInC := c.Password != "" || c.PasswordFile != "" || c.Token != "" || c.TokenFile != ""
	var hosts []string
	for _, p := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "") {
			continue // tls://, wss://: encrypted
		}
		if u.User == nil && !secretInC {
			continue
		}
		if h := u.Hostname(); h != "" && !loopbackHost(h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
