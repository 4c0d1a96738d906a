package queue

import (
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// embeddedAuth configures the embedded server's client authentication from
// cfg: a user and password, or a token. Nothing configured leaves it open.
func embeddedAuth(opts *server.Options, cfg EmbeddedConfig) error {
	user, password, token, err := cfg.Auth.Credentials()
	if err != nil {
		return err
	}
	opts.Username, opts.Password, opts.Authorization = user, password, token
	return nil
}

// ClientOptions returns the options that authenticate a client (such as
// the daemon's own in-process connection) to the embedded server.
func (cfg EmbeddedConfig) ClientOptions() ([]nats.Option, error) {
	return cfg.Auth.ClientOptions()
}
