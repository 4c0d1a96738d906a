package queue

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedAuth configures the embedded server's users from cfg: the
// daemon's and the publishers' nkeys, a publisher login by password, and
// TLS on the listener.
func embeddedAuth(opts *server.Options, cfg EmbeddedConfig) error {
	if cfg.Daemon == "" || cfg.Publisher == "" {
		if cfg.Listen != "-" || cfg.Daemon != cfg.Publisher {
			return errors.New("embedded nats: the daemon and publisher keys are required on a listening server")
		}
		return nil // in-process connections only
	}
	opts.Nkeys = []*server.NkeyUser{
		{Nkey: cfg.Daemon},
		{Nkey: cfg.Publisher, Permissions: PublisherPermissions()},
	}
	user, password, err := cfg.Auth.Credentials()
	if err != nil {
		return err
	}
	if user != "" {
		opts.Users = []*server.User{{Username: user, Password: password, Permissions: PublisherPermissions()}}
	}
	tc, err := cfg.Auth.TLS()
	if err != nil {
		return err
	}
	if tc != nil {
		opts.TLSConfig, opts.TLSTimeout = tc, (2 * time.Second).Seconds()
	}
	return nil
}
