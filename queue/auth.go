package queue

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedAuth configures the embedded server's accounts and users from
// cfg: the daemon's nkey in AccountDaemon, the publishers' nkey and a
// publisher login by password in AccountPublishers, and TLS on the
// listener. It reports whether the accounts are in use (a server without
// keys that does not listen has only the global account).
func embeddedAuth(opts *server.Options, cfg EmbeddedConfig) (bool, error) {
	if cfg.Daemon == "" || cfg.Publisher == "" {
		if cfg.Listen != "-" || cfg.Daemon != cfg.Publisher {
			return false, errors.New("embedded nats: the daemon and publisher keys are required on a listening server")
		}
		return false, nil // in-process connections only
	}
	daemon, publishers, err := roleAccounts()
	if err != nil {
		return false, err
	}
	opts.Accounts = []*server.Account{daemon, publishers}
	opts.Nkeys = []*server.NkeyUser{
		{Nkey: cfg.Daemon, Account: daemon},
		{Nkey: cfg.Publisher, Account: publishers, Permissions: PublisherPermissions()},
	}
	user, password, err := cfg.Auth.Credentials()
	if err != nil {
		return false, err
	}
	if user != "" {
		opts.Users = []*server.User{{Username: user, Password: password, Account: publishers, Permissions: PublisherPermissions()}}
	}
	tc, err := cfg.Auth.TLS()
	if err != nil {
		return false, err
	}
	if tc != nil {
		opts.TLSConfig, opts.TLSTimeout = tc, (2 * time.Second).Seconds()
	}
	return true, nil
}
