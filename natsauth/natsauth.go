// Package natsauth holds simgate's rules for authenticating to NATS, one
// set for serve, check-config and send, and turns settings that follow
// them into nats.go connect options.
//
// Messages name what the user set through a Names table (configuration
// keys, or command-line flags), never a secret.
package natsauth

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/simgate/simgate/keyfile"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Client is how a client authenticates to a NATS server and secures the
// connection. At most one of password, token, nkey seed and creds is set.
// Secrets come from files or, for Password and Token, from a value the
// caller read from the environment.
type Client struct {
	// User with Password or PasswordFile (not both) logs in with a user
	// name and password.
	User         string
	Password     string
	PasswordFile string
	// Token or TokenFile (not both) is an authorization token.
	Token     string
	TokenFile string
	// NkeySeedFile holds a user nkey seed (SU...).
	NkeySeedFile string
	// CredsFile is a decentralised-auth credentials file (user JWT and seed).
	CredsFile string
	// CAFile holds the CA certificates that verify the server; CertFile and
	// KeyFile are a client certificate (both or neither). Any of them, or
	// ServerName, turns TLS on.
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the host name checked in the server certificate.
	ServerName string
}

// Embedded secures simgate's embedded server beyond its two role nkeys
// (see RoleKey), which are always required.
type Embedded struct {
	// User with PasswordFile is an extra publisher login by password, for
	// clients that cannot use an nkey.
	User         string
	PasswordFile string
	// TokenFile is no longer supported: a token cannot coexist with the
	// role users. Validate says so.
	TokenFile string
	// CertFile and KeyFile are the listener's TLS certificate and key,
	// required when it listens on a non-loopback address.
	CertFile string
	KeyFile  string
}

// Settings is everything the rules look at.
type Settings struct {
	// URL is the external server; empty starts the embedded one.
	URL string
	// Listen is the embedded server's client address; "-" listens on no
	// port.
	Listen string
	// Client is the authentication to the external server.
	Client Client
	// Embedded is the embedded server's client authentication.
	Embedded Embedded
}

// Names are what the user calls each setting: a message names the settings
// it is about by these. A name may be empty for a setting the user cannot
// give (send has no embedded server); no rule then needs it.
type Names struct {
	User, Password, PasswordFile, Token, TokenFile, NkeySeedFile, CredsFile string
	CAFile, CertFile, KeyFile, ServerName                                   string
	URL, Listen                                                             string
	Embedded, EmbeddedUser, EmbeddedPasswordFile, EmbeddedTokenFile         string
	EmbeddedCertFile, EmbeddedKeyFile                                       string
}

// fieldNames names settings by their Go fields, for callers that did not
// validate first.
func fieldNames() Names {
	return Names{
		User: "User", Password: "Password", PasswordFile: "PasswordFile",
		Token: "Token", TokenFile: "TokenFile", NkeySeedFile: "NkeySeedFile", CredsFile: "CredsFile",
		CAFile: "CAFile", CertFile: "CertFile", KeyFile: "KeyFile", ServerName: "ServerName",
		URL: "URL", Listen: "Listen",
		Embedded: "Embedded", EmbeddedUser: "Embedded.User",
		EmbeddedPasswordFile: "Embedded.PasswordFile", EmbeddedTokenFile: "Embedded.TokenFile",
		EmbeddedCertFile: "Embedded.CertFile", EmbeddedKeyFile: "Embedded.KeyFile",
	}
}

// Validate returns every problem of s, one error each (joined), naming
// settings by n; nil when s follows the rules:
//
//   - at most one of password, token, nkey seed and creds;
//   - a user needs a password, a password needs a user;
//   - a password file and a password from the environment exclude each
//     other, and so do a token file and a token from the environment;
//   - a client certificate needs both its cert and its key file;
//   - with an external server (URL), no embedded settings; with the
//     embedded one, no settings for an external server;
//   - the embedded server takes a user and password file (an extra
//     publisher login), no token, and a TLS certificate and key, which it
//     needs when it listens on a non-loopback address.
//
// Files are not read: ClientOptions and Embedded.Credentials do that.
func (s Settings) Validate(n Names) error {
	errs := s.Client.problems(n)
	e := s.Embedded
	if s.URL != "" {
		if e != (Embedded{}) {
			errs = append(errs, fmt.Errorf("%s: only for the embedded server, but %s is set", n.Embedded, n.URL))
		}
		return errors.Join(errs...)
	}
	if set := s.Client.set(n); len(set) > 0 {
		errs = append(errs, fmt.Errorf("%s: only for an external server (%s); the embedded server takes %s",
			strings.Join(set, ", "), n.URL, n.Embedded))
	}
	errs = append(errs, e.problems(n)...)
	if e.CertFile == "" && s.Listen != "-" && !loopback(s.Listen) {
		errs = append(errs, fmt.Errorf("%s %s is not loopback: configure TLS with %s and %s",
			n.Listen, s.Listen, n.EmbeddedCertFile, n.EmbeddedKeyFile))
	}
	return errors.Join(errs...)
}

// problems checks c on its own.
func (c Client) problems(n Names) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.PasswordFile != "" && c.Password != "" {
		bad("%s and %s: set one", n.PasswordFile, n.Password)
	}
	if c.TokenFile != "" && c.Token != "" {
		bad("%s and %s: set one", n.TokenFile, n.Token)
	}
	password := either(c.PasswordFile, n.PasswordFile, c.Password, n.Password)
	var methods []string
	for _, m := range []string{
		password,
		either(c.TokenFile, n.TokenFile, c.Token, n.Token),
		either(c.NkeySeedFile, n.NkeySeedFile, "", ""),
		either(c.CredsFile, n.CredsFile, "", ""),
	} {
		if m != "" {
			methods = append(methods, m)
		}
	}
	if len(methods) > 1 {
		bad("%s: use at most one way to authenticate", strings.Join(methods, ", "))
	}
	if password != "" && c.User == "" {
		bad("%s needs %s", password, n.User)
	}
	if c.User != "" && password == "" {
		bad("%s needs %s or %s", n.User, n.PasswordFile, n.Password)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("%s and %s: set both or neither", n.CertFile, n.KeyFile)
	}
	return errs
}

// either returns the name of the first of two settings that is set, or "".
func either(a, aName, b, bName string) string {
	switch {
	case a != "":
		return aName
	case b != "":
		return bName
	}
	return ""
}

// set names the settings of c that are set.
func (c Client) set(n Names) []string {
	var out []string
	for _, f := range []struct{ value, name string }{
		{c.User, n.User}, {c.Password, n.Password}, {c.PasswordFile, n.PasswordFile},
		{c.Token, n.Token}, {c.TokenFile, n.TokenFile},
		{c.NkeySeedFile, n.NkeySeedFile}, {c.CredsFile, n.CredsFile},
		{c.CAFile, n.CAFile}, {c.CertFile, n.CertFile}, {c.KeyFile, n.KeyFile}, {c.ServerName, n.ServerName},
	} {
		if f.value != "" {
			out = append(out, f.name)
		}
	}
	return out
}

// problems checks e on its own.
func (e Embedded) problems(n Names) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if e.TokenFile != "" {
		bad("%s: no longer supported: publishers authenticate with the generated nkey seed (%s/%s.nk) or %s and %s",
			n.EmbeddedTokenFile, SeedDir, RolePublisher, n.EmbeddedUser, n.EmbeddedPasswordFile)
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		bad("%s and %s: set both or neither", n.EmbeddedCertFile, n.EmbeddedKeyFile)
	}
	if e.PasswordFile != "" && e.User == "" {
		bad("%s needs %s", n.EmbeddedPasswordFile, n.EmbeddedUser)
	}
	if e.User != "" && e.PasswordFile == "" {
		bad("%s needs %s", n.EmbeddedUser, n.EmbeddedPasswordFile)
	}
	return errs
}

// loopback reports whether addr (host:port) only listens on a loopback
// address. An empty host means every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true // a malformed address is the caller's to report
	}
	return loopbackHost(host)
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientOptions returns the nats.Connect options for c. It applies the
// rules of Validate first (naming Go fields: validate with the user's
// names before). Every file is read (and checked) now, so a missing or
// malformed file fails at start; errors name the file, never its contents.
func ClientOptions(c Client) ([]nats.Option, error) {
	if errs := c.problems(fieldNames()); len(errs) > 0 {
		return nil, fmt.Errorf("nats auth: %w", errors.Join(errs...))
	}
	var opts []nats.Option
	switch {
	case c.User != "":
		pw := c.Password
		if pw == "" {
			var err error
			if pw, err = readSecret("password", c.PasswordFile); err != nil {
				return nil, err
			}
		}
		opts = append(opts, nats.UserInfo(c.User, pw))
	case c.Token != "" || c.TokenFile != "":
		tok := c.Token
		if tok == "" {
			var err error
			if tok, err = readSecret("token", c.TokenFile); err != nil {
				return nil, err
			}
		}
		opts = append(opts, nats.Token(tok))
	case c.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed file %s: %w", c.NkeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		if err := checkCreds(c.CredsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}

	if c.CAFile != "" || c.CertFile != "" || c.ServerName != "" {
		// Secure first: RootCAs and ClientCert fill in its tls.Config.
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}))
		if c.CAFile != "" {
			opts = append(opts, nats.RootCAs(c.CAFile))
		}
		if c.CertFile != "" {
			opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
		}
	}
	// Apply the options once now, so unreadable TLS files fail here.
	var probe nats.Options
	for _, o := range opts {
		if err := o(&probe); err != nil {
			return nil, fmt.Errorf("nats tls: %w", err)
		}
	}
	return opts, nil
}

// Credentials reads the password of e's publisher login; both are empty
// when e configures none.
func (e Embedded) Credentials() (user, password string, err error) {
	if errs := e.problems(fieldNames()); len(errs) > 0 {
		return "", "", fmt.Errorf("embedded nats auth: %w", errors.Join(errs...))
	}
	if e.User == "" {
		return "", "", nil
	}
	// The server's own secret, like the seeds and the hash key: only its
	// owner may read the file.
	b, err := keyfile.Read(e.PasswordFile)
	if err != nil {
		return "", "", fmt.Errorf("nats embedded password: %w", err)
	}
	return e.User, string(b), nil
}

// TLS returns the embedded server's TLS configuration, or nil when e
// configures none. The files are read now.
func (e Embedded) TLS() (*tls.Config, error) {
	if e.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("embedded nats tls: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// readSecret reads a one-line secret file, dropping the line end.
func readSecret(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// *PathError: "open <path>: <reason>", no contents.
		return "", fmt.Errorf("nats %s file: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("nats %s file %s is empty", what, path)
	}
	return s, nil
}

// checkCreds makes sure a creds file holds a user JWT and a user seed; the
// nats client reads it again at every (re)connect.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats creds file: %w", err)
	}
	defer clear(b)
	if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
		return fmt.Errorf("nats creds file %s: no user JWT", path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("nats creds file %s: no user nkey seed", path)
	}
	kp.Wipe()
	return nil
}
