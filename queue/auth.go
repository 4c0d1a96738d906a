package queue

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// AuthConfig is how simgate authenticates to a NATS server and secures the
// connection. At most one of password, token, nkey seed and creds is set.
// Secrets come from files (or, for Password and Token, from a value the
// caller read from the environment); they never appear in errors.
type AuthConfig struct {
	// User and Password (or PasswordFile) log in with a user name and
	// password. Password wins over PasswordFile when both are set.
	User         string
	Password     string
	PasswordFile string
	// Token (or TokenFile) is an authorization token.
	Token     string
	TokenFile string
	// NkeySeedFile holds a user nkey seed (SU...).
	NkeySeedFile string
	// CredsFile is a decentralised-auth credentials file (user JWT and seed).
	CredsFile string
	// CAFile holds the CA certificates that verify the server; CertFile and
	// KeyFile are a client certificate. Any of them turns TLS on.
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the host name checked in the server certificate.
	ServerName string
}

// ClientOptions returns the nats.Connect options for c. Every file is read
// (and checked) now, so a missing or malformed file fails at start; errors
// name the file, never its contents.
func ClientOptions(c AuthConfig) ([]nats.Option, error) {
	var opts []nats.Option
	n := 0
	for _, set := range []bool{
		c.Password != "" || c.PasswordFile != "",
		c.Token != "" || c.TokenFile != "",
		c.NkeySeedFile != "",
		c.CredsFile != "",
	} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("nats auth: set at most one of password, token, nkey seed and creds")
	}
	switch {
	case c.Password != "" || c.PasswordFile != "":
		if c.User == "" {
			return nil, errors.New("nats auth: a password needs a user")
		}
		pw := c.Password
		if pw == "" {
			var err error
			if pw, err = readSecret("password", c.PasswordFile); err != nil {
				return nil, err
			}
		}
		opts = append(opts, nats.UserInfo(c.User, pw))
	case c.User != "":
		return nil, errors.New("nats auth: a user needs a password")
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

	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("nats tls: a client certificate needs both a cert file and a key file")
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

// embeddedAuth configures the embedded server's client authentication from
// cfg: a user and password, or a token. Nothing configured leaves it open.
func embeddedAuth(opts *server.Options, cfg EmbeddedConfig) error {
	a, err := cfg.auth()
	if err != nil {
		return err
	}
	switch {
	case a.User != "":
		if a.PasswordFile == "" {
			return errors.New("embedded nats: a user needs a password file")
		}
		pw, err := readSecret("embedded password", a.PasswordFile)
		if err != nil {
			return err
		}
		opts.Username, opts.Password = a.User, pw
	case a.TokenFile != "":
		tok, err := readSecret("embedded token", a.TokenFile)
		if err != nil {
			return err
		}
		opts.Authorization = tok
	}
	return nil
}

func (cfg EmbeddedConfig) auth() (AuthConfig, error) {
	if cfg.PasswordFile != "" && cfg.TokenFile != "" {
		return AuthConfig{}, errors.New("embedded nats: set a password file or a token file, not both")
	}
	if cfg.PasswordFile != "" && cfg.User == "" {
		return AuthConfig{}, errors.New("embedded nats: a password file needs a user")
	}
	return AuthConfig{User: cfg.User, PasswordFile: cfg.PasswordFile, TokenFile: cfg.TokenFile}, nil
}

// ClientOptions returns the options that authenticate a client (such as
// the daemon's own in-process connection) to the embedded server.
func (cfg EmbeddedConfig) ClientOptions() ([]nats.Option, error) {
	a, err := cfg.auth()
	if err != nil {
		return nil, err
	}
	return ClientOptions(a)
}
