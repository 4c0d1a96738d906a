package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/simgate/simgate/natsauth"
)

// Auth returns the NATS authentication settings of n, for the rules of
// natsauth and for natsauth.ClientOptions.
func (n NATS) Auth() natsauth.Settings {
	return natsauth.Settings{
		URL:    n.URL,
		Listen: n.Listen,
		Client: natsauth.Client{
			User:         n.User,
			Password:     string(n.Password),
			PasswordFile: n.PasswordFile,
			Token:        string(n.Token),
			TokenFile:    n.TokenFile,
			NkeySeedFile: n.NkeySeedFile,
			CredsFile:    n.CredsFile,
			CAFile:       n.TLS.CAFile,
			CertFile:     n.TLS.CertFile,
			KeyFile:      n.TLS.KeyFile,
			ServerName:   n.TLS.ServerName,
		},
		Embedded: natsauth.Embedded{
			User:         n.Embedded.User,
			PasswordFile: n.Embedded.PasswordFile,
			TokenFile:    n.Embedded.TokenFile,
			CertFile:     n.Embedded.TLS.CertFile,
			KeyFile:      n.Embedded.TLS.KeyFile,
		},
	}
}

// KeyNames names the NATS authentication settings as serve and
// check-config take them: configuration keys, and the environment
// variables of the password and the token.
func KeyNames() natsauth.Names {
	return natsauth.Names{
		User:                 "nats.user",
		Password:             EnvNATSPassword,
		PasswordFile:         "nats.password_file",
		Token:                EnvNATSToken,
		TokenFile:            "nats.token_file",
		NkeySeedFile:         "nats.nkey_seed_file",
		CredsFile:            "nats.creds_file",
		CAFile:               "nats.tls.ca_file",
		CertFile:             "nats.tls.cert_file",
		KeyFile:              "nats.tls.key_file",
		ServerName:           "nats.tls.server_name",
		URL:                  "nats.url",
		Listen:               "nats.listen",
		Embedded:             "nats.embedded",
		EmbeddedUser:         "nats.embedded.user",
		EmbeddedPasswordFile: "nats.embedded.password_file",
		EmbeddedTokenFile:    "nats.embedded.token_file",
		EmbeddedCertFile:     "nats.embedded.tls.cert_file",
		EmbeddedKeyFile:      "nats.embedded.tls.key_file",
	}
}

// FlagNames names the NATS authentication settings as a client command
// (simgate send) takes them: the flags of Client.Flags, and the
// environment variables of the password and the token. Client commands
// have no embedded server: those names are empty.
func FlagNames() natsauth.Names {
	return natsauth.Names{
		User:         "--user",
		Password:     "$" + EnvNATSPassword,
		PasswordFile: "--password-file",
		Token:        "$" + EnvNATSToken,
		TokenFile:    "--token-file",
		NkeySeedFile: "--nkey-seed-file",
		CredsFile:    "--creds",
		CAFile:       "--tls-ca",
		CertFile:     "--tls-cert",
		KeyFile:      "--tls-key",
		URL:          "--nats-url",
	}
}

// Client is how a client command such as simgate send reaches NATS: the
// server and the authentication, from flags and the environment.
type Client struct {
	// URL is --nats-url, else $SIMGATE_NATS_URL, else nats.DefaultURL.
	URL string
	// Auth is from the flags, with Password and Token from
	// SIMGATE_NATS_PASSWORD and SIMGATE_NATS_TOKEN.
	Auth natsauth.Client
	// StateDir is --state-dir: the state directory of a simgate daemon on
	// this host, whose publisher nkey seed (see natsauth.SeedFile) is used
	// when no other authentication is given. Empty: the directories in
	// StateDirs.
	StateDir string
}

// StateDirs are where a client command looks for the publisher seed of a
// simgate daemon on the same host, in order: $STATE_DIRECTORY, the system
// service's /var/lib/simgate, then $XDG_STATE_HOME/simgate or
// ~/.local/state/simgate (a daemon run by the same user).
func StateDirs() []string {
	return []string{os.Getenv("STATE_DIRECTORY"), "/var/lib/simgate", defaultStateDir()}
}

// Flags defines c's flags on fs, named as FlagNames says.
func (c *Client) Flags(fs *pflag.FlagSet) {
	n := FlagNames()
	flag := func(p *string, name, usage string) {
		fs.StringVar(p, strings.TrimPrefix(name, "--"), "", usage)
	}
	flag(&c.URL, n.URL, "NATS server (default $"+EnvNATSURL+" or "+nats.DefaultURL+")")
	flag(&c.Auth.User, n.User, "NATS user (password from "+n.PasswordFile+" or "+n.Password+")")
	flag(&c.Auth.PasswordFile, n.PasswordFile, "file holding the NATS password")
	flag(&c.Auth.TokenFile, n.TokenFile, "file holding the NATS token (or "+n.Token+")")
	flag(&c.Auth.NkeySeedFile, n.NkeySeedFile, "file holding a NATS user nkey seed")
	flag(&c.Auth.CredsFile, n.CredsFile, "NATS credentials file")
	flag(&c.Auth.CAFile, n.CAFile, "CA file verifying the NATS server")
	flag(&c.Auth.CertFile, n.CertFile, "client certificate file")
	flag(&c.Auth.KeyFile, n.KeyFile, "client key file")
	fs.StringVar(&c.StateDir, "state-dir", "", "state directory of a simgate on this host, whose publisher credentials are used when no other authentication is given (default: $STATE_DIRECTORY, /var/lib/simgate, ~/.local/state/simgate)")
}

// Complete, once the flags are parsed, takes the URL, the password and
// the token from the environment (the flags set no secret), and checks
// the authentication with the rules serve applies, naming flags.
func (c *Client) Complete() error {
	if c.URL == "" {
		c.URL = os.Getenv(EnvNATSURL)
	}
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	c.Auth.Password = os.Getenv(EnvNATSPassword)
	c.Auth.Token = os.Getenv(EnvNATSToken)
	if err := (natsauth.Settings{URL: c.URL, Client: c.Auth}).Validate(FlagNames()); err != nil {
		return err
	}
	a := c.Auth
	if a.User != "" || a.Password != "" || a.Token != "" || a.TokenFile != "" || a.NkeySeedFile != "" || a.CredsFile != "" {
		return nil
	}
	// No authentication given: a simgate on this host's publisher seed.
	dirs := StateDirs()
	if c.StateDir != "" {
		dirs = []string{c.StateDir}
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if seed := natsauth.SeedFile(d, natsauth.RolePublisher); readable(seed) {
			c.Auth.NkeySeedFile = seed
			return nil
		}
	}
	if c.StateDir != "" {
		return fmt.Errorf("--state-dir %s: no readable %s", c.StateDir, natsauth.SeedFile(c.StateDir, natsauth.RolePublisher))
	}
	return nil
}

// readable reports whether the file at path can be opened for reading.
func readable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
