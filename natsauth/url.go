package natsauth

import (
	"errors"
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
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // as nats.go completes it
		}
		u, err := url.Parse(p)
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

// RedactError returns err fit to print when it may quote urls (one URL or
// a comma-separated list, as for RedactURL): nats.Connect returns net/url's
// parse errors as they are, and they quote the whole URL, password
// included. When err's message holds user information of urls, the result
// is a new error with it replaced by "xxxxx" (the URL of a parse error by
// RedactURL's form); it wraps nothing, so that no caller can reach the
// original text. Otherwise it is err itself.
func RedactError(err error, urls string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	if ue := (*url.Error)(nil); errors.As(err, &ue) && strings.Contains(ue.URL, "@") {
		reason := ue.Err.Error()
		if ee := url.EscapeError(""); errors.As(ue.Err, &ee) {
			reason = "invalid URL escape" // the escape may be in the password
		}
		red = strings.ReplaceAll(red, ue.Error(), ue.Op+" "+RedactURL(ue.URL)+": "+reason)
	}
	for _, p := range strings.Split(urls, ",") {
		p = strings.TrimSpace(p)
		info, ok := userinfo(p)
		if !ok {
			continue
		}
		red = strings.ReplaceAll(red, p, RedactURL(p))
		red = strings.ReplaceAll(red, info+"@", "xxxxx@")
		if _, pw, ok := strings.Cut(info, ":"); ok && len(pw) >= 4 {
			red = strings.ReplaceAll(red, pw, "xxxxx")
		}
		if dec, err := url.PathUnescape(info); err == nil && dec != info {
			red = strings.ReplaceAll(red, dec, "xxxxx")
		}
	}
	if red == msg {
		return err
	}
	return errors.New(red)
}

// userinfo returns the user information of a URL as written (before the
// last @ of what follows the scheme), also of one that does not parse.
func userinfo(s string) (string, bool) {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	i := strings.LastIndex(s, "@")
	if i <= 0 {
		return "", false
	}
	return s[:i], true
}
