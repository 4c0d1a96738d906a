package natsauth_test

import (
	"strings"
	"testing"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/natsauth"
)

// TestValidate is the one test of the rules. Each case gives the exact
// answer of serve and check-config (configuration keys) and of send
// (flags) for the same settings.
func TestValidate(t *testing.T) {
	const (
		url = "nats://nats.example:4222"
		pw  = "env-pa55word-XYZ" // from $SIMGATE_NATS_PASSWORD
		tok = "env-t0ken-XYZ"    // from $SIMGATE_NATS_TOKEN
		// notSend marks settings send cannot express: it has no embedded
		// server, so its URL is never empty.
		notSend = "-"
	)
	type (
		S = natsauth.Settings
		C = natsauth.Client
		E = natsauth.Embedded
	)
	tls := C{CAFile: "/ca", CertFile: "/c", KeyFile: "/k", ServerName: "nats"}
	tests := []struct {
		name string
		s    S
		key  string // serve and check-config; empty: valid
		flag string // send; empty: valid
	}{
		// Valid external settings.
		{"nothing", S{URL: url}, "", ""},
		{"user and password file", S{URL: url, Client: C{User: "u", PasswordFile: "/pw"}}, "", ""},
		{"user and password env", S{URL: url, Client: C{User: "u", Password: pw}}, "", ""},
		{"token file", S{URL: url, Client: C{TokenFile: "/t"}}, "", ""},
		{"token env", S{URL: url, Client: C{Token: tok}}, "", ""},
		{"nkey", S{URL: url, Client: C{NkeySeedFile: "/s"}}, "", ""},
		{"creds and tls", S{URL: url, Client: C{CredsFile: "/c.creds", CAFile: tls.CAFile, CertFile: tls.CertFile, KeyFile: tls.KeyFile}}, "", ""},

		// Password file or password from the environment.
		{"password file and env", S{URL: url, Client: C{User: "u", PasswordFile: "/pw", Password: pw}},
			"nats.password_file and SIMGATE_NATS_PASSWORD: set one",
			"--password-file and $SIMGATE_NATS_PASSWORD: set one"},
		// Token file or token from the environment.
		{"token file and env", S{URL: url, Client: C{TokenFile: "/t", Token: tok}},
			"nats.token_file and SIMGATE_NATS_TOKEN: set one",
			"--token-file and $SIMGATE_NATS_TOKEN: set one"},

		// At most one of password, token, nkey seed, creds.
		{"token env and nkey", S{URL: url, Client: C{Token: tok, NkeySeedFile: "/s"}},
			"SIMGATE_NATS_TOKEN, nats.nkey_seed_file: use at most one way to authenticate",
			"$SIMGATE_NATS_TOKEN, --nkey-seed-file: use at most one way to authenticate"},
		{"nkey and creds", S{URL: url, Client: C{NkeySeedFile: "/s", CredsFile: "/c"}},
			"nats.nkey_seed_file, nats.creds_file: use at most one way to authenticate",
			"--nkey-seed-file, --creds: use at most one way to authenticate"},
		{"password env and token file", S{URL: url, Client: C{User: "u", Password: pw, TokenFile: "/t"}},
			"SIMGATE_NATS_PASSWORD, nats.token_file: use at most one way to authenticate",
			"$SIMGATE_NATS_PASSWORD, --token-file: use at most one way to authenticate"},
		{"all four", S{URL: url, Client: C{User: "u", PasswordFile: "/pw", TokenFile: "/t", NkeySeedFile: "/s", CredsFile: "/c"}},
			"nats.password_file, nats.token_file, nats.nkey_seed_file, nats.creds_file: use at most one way to authenticate",
			"--password-file, --token-file, --nkey-seed-file, --creds: use at most one way to authenticate"},

		// A user needs a password and a password a user.
		{"password file without user", S{URL: url, Client: C{PasswordFile: "/pw"}},
			"nats.password_file needs nats.user",
			"--password-file needs --user"},
		{"password env without user", S{URL: url, Client: C{Password: pw}},
			"SIMGATE_NATS_PASSWORD needs nats.user",
			"$SIMGATE_NATS_PASSWORD needs --user"},
		{"user without password", S{URL: url, Client: C{User: "u"}},
			"nats.user needs nats.password_file or SIMGATE_NATS_PASSWORD",
			"--user needs --password-file or $SIMGATE_NATS_PASSWORD"},

		// A client certificate needs its cert and its key.
		{"cert without key", S{URL: url, Client: C{CertFile: "/c"}},
			"nats.tls.cert_file and nats.tls.key_file: set both or neither",
			"--tls-cert and --tls-key: set both or neither"},
		{"key without cert", S{URL: url, Client: C{CAFile: "/ca", KeyFile: "/k"}},
			"nats.tls.cert_file and nats.tls.key_file: set both or neither",
			"--tls-cert and --tls-key: set both or neither"},

		// Several problems at once, in rule order.
		{"several", S{URL: url, Client: C{PasswordFile: "/pw", Password: pw, Token: tok, KeyFile: "/k"}},
			"nats.password_file and SIMGATE_NATS_PASSWORD: set one\n" +
				"nats.password_file, SIMGATE_NATS_TOKEN: use at most one way to authenticate\n" +
				"nats.password_file needs nats.user\n" +
				"nats.tls.cert_file and nats.tls.key_file: set both or neither",
			"--password-file and $SIMGATE_NATS_PASSWORD: set one\n" +
				"--password-file, $SIMGATE_NATS_TOKEN: use at most one way to authenticate\n" +
				"--password-file needs --user\n" +
				"--tls-cert and --tls-key: set both or neither"},

		// Embedded settings only with the embedded server, external ones
		// only with an external server.
		{"embedded auth with url", S{URL: url, Embedded: E{TokenFile: "/t"}},
			"nats.embedded: only for the embedded server, but nats.url is set", notSend},
		{"external auth for embedded", S{Listen: "127.0.0.1:4222", Client: C{TokenFile: "/t"}},
			"nats.token_file: only for an external server (nats.url); the embedded server takes nats.embedded", notSend},
		{"env secret for embedded", S{Listen: "127.0.0.1:4222", Client: C{Token: tok}},
			"SIMGATE_NATS_TOKEN: only for an external server (nats.url); the embedded server takes nats.embedded", notSend},
		{"tls for embedded", S{Listen: "127.0.0.1:4222", Client: tls},
			"nats.tls.ca_file, nats.tls.cert_file, nats.tls.key_file, nats.tls.server_name: only for an external server (nats.url); the embedded server takes nats.embedded", notSend},

		// The embedded server's own settings (its role nkeys are always on).
		{"embedded password", S{Listen: "127.0.0.1:4222", Embedded: E{User: "u", PasswordFile: "/pw"}}, "", notSend},
		{"embedded token", S{Listen: "127.0.0.1:4222", Embedded: E{TokenFile: "/t"}},
			"nats.embedded.token_file: no longer supported: publishers authenticate with the generated nkey seed (nats/publisher.nk) or nats.embedded.user and nats.embedded.password_file", notSend},
		{"embedded password without user", S{Listen: "127.0.0.1:4222", Embedded: E{PasswordFile: "/pw"}},
			"nats.embedded.password_file needs nats.embedded.user", notSend},
		{"embedded user without password", S{Listen: "127.0.0.1:4222", Embedded: E{User: "u"}},
			"nats.embedded.user needs nats.embedded.password_file", notSend},
		{"embedded cert without key", S{Listen: "127.0.0.1:4222", Embedded: E{CertFile: "/c"}},
			"nats.embedded.tls.cert_file and nats.embedded.tls.key_file: set both or neither", notSend},
		{"embedded tls on loopback", S{Listen: "127.0.0.1:4222", Embedded: E{CertFile: "/c", KeyFile: "/k"}}, "", notSend},

		// A non-loopback listener needs TLS.
		{"loopback v4", S{Listen: "127.0.0.2:4222"}, "", notSend},
		{"loopback v6", S{Listen: "[::1]:4222"}, "", notSend},
		{"localhost", S{Listen: "localhost:4222"}, "", notSend},
		{"no listener", S{Listen: "-"}, "", notSend},
		{"malformed listener is not this rule's", S{Listen: "nowhere"}, "", notSend},
		{"exposed", S{Listen: "0.0.0.0:4222"},
			"nats.listen 0.0.0.0:4222 is not loopback: configure TLS with nats.embedded.tls.cert_file and nats.embedded.tls.key_file", notSend},
		{"exposed on every interface", S{Listen: ":4222"},
			"nats.listen :4222 is not loopback: configure TLS with nats.embedded.tls.cert_file and nats.embedded.tls.key_file", notSend},
		{"exposed by host name", S{Listen: "gw.example:4222"},
			"nats.listen gw.example:4222 is not loopback: configure TLS with nats.embedded.tls.cert_file and nats.embedded.tls.key_file", notSend},
		{"exposed with a password only", S{Listen: "0.0.0.0:4222", Embedded: E{User: "u", PasswordFile: "/pw"}},
			"nats.listen 0.0.0.0:4222 is not loopback: configure TLS with nats.embedded.tls.cert_file and nats.embedded.tls.key_file", notSend},
		{"exposed with tls", S{Listen: "10.0.0.1:4222", Embedded: E{CertFile: "/c", KeyFile: "/k"}}, "", notSend},
		{"exposed with user only", S{Listen: "0.0.0.0:4222", Embedded: E{User: "u"}},
			"nats.embedded.user needs nats.embedded.password_file\n" +
				"nats.listen 0.0.0.0:4222 is not loopback: configure TLS with nats.embedded.tls.cert_file and nats.embedded.tls.key_file", notSend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []struct {
				names  natsauth.Names
				by     string
				want   string
				ignore bool
			}{
				{config.KeyNames(), "keys", tc.key, false},
				{config.FlagNames(), "flags", tc.flag, tc.flag == notSend},
			} {
				if n.ignore {
					continue
				}
				got := ""
				if err := tc.s.Validate(n.names); err != nil {
					got = err.Error()
				}
				if got != n.want {
					t.Errorf("named by %s:\ngot  %q\nwant %q", n.by, got, n.want)
				}
				if strings.Contains(got, pw) || strings.Contains(got, tok) {
					t.Errorf("named by %s: a secret in %q", n.by, got)
				}
			}
		})
	}
}

// TestNamesComplete makes sure the naming tables name every setting a
// rule may mention (send has no embedded server).
func TestNamesComplete(t *testing.T) {
	k, f := config.KeyNames(), config.FlagNames()
	for _, n := range []string{k.User, k.Password, k.PasswordFile, k.Token, k.TokenFile, k.NkeySeedFile, k.CredsFile,
		k.CAFile, k.CertFile, k.KeyFile, k.ServerName, k.URL, k.Listen, k.Embedded, k.EmbeddedUser, k.EmbeddedPasswordFile, k.EmbeddedTokenFile, k.EmbeddedCertFile, k.EmbeddedKeyFile,
		f.User, f.Password, f.PasswordFile, f.Token, f.TokenFile, f.NkeySeedFile, f.CredsFile, f.CAFile, f.CertFile, f.KeyFile, f.URL} {
		if n == "" {
			t.Errorf("a name is missing: %+v %+v", k, f)
		}
	}
}
