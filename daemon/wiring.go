package daemon

import (
	"fmt"
	"time"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/gateway"
	"github.com/simgate/simgate/keyfile"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
	"github.com/simgate/simgate/queue"
)

// This file turns the configuration into each component's options (streams,
// embedded server, policy, live settings, gateway, workers). daemon.go reads
// only what it uses itself: the NATS connection, the hash key file, the
// metrics address and the number of simulated modems.

// streamConfig sizes the job and event streams.
func streamConfig(c config.Config) queue.StreamConfig {
	return queue.StreamConfig{
		Replicas:        c.NATS.Replicas,
		DedupWindow:     c.OTP.MaxTTL,
		EventsMaxAge:    c.NATS.EventsMaxAge,
		AckWait:         c.NATS.AckWait,
		JobsMaxBytes:    int64(c.NATS.Limits.JobsBytes),
		EventsMaxBytes:  int64(c.NATS.Limits.EventsBytes),
		EventsPerJob:    c.NATS.Limits.EventsPerJob,
		InboundMaxAge:   c.Inbound.MaxAge,
		InboundMaxBytes: int64(c.NATS.Limits.InboundBytes),
	}
}

// embeddedConfig configures the embedded NATS server keeping its files in
// store.
func embeddedConfig(c config.Config, store string) (queue.EmbeddedConfig, error) {
	e := c.NATS.Embedded
	sync, err := e.SyncInterval()
	if err != nil {
		return queue.EmbeddedConfig{}, err
	}
	ecfg := queue.EmbeddedConfig{Listen: c.NATS.Listen, StoreDir: store, Name: "simgate", Auth: c.NATS.Auth().Embedded,
		SyncInterval: sync}
	if e.EncryptionKeyFile != "" {
		key, err := keyfile.Read(e.EncryptionKeyFile)
		if err != nil {
			return queue.EmbeddedConfig{}, fmt.Errorf("nats.embedded.encryption_key_file: %w", err)
		}
		ecfg.EncryptionKey = string(key)
	}
	return ecfg, nil
}

// policyConfig returns the duplicate and rate limits, keyed with key.
func policyConfig(c config.Config, key []byte) policy.Config {
	return c.Policy.Limits(key)
}

// live returns the settings a reload may swap: number, code, text, size and
// ttl rules, templates, and the limits of pol (nil: set by the caller). It also returns the renderer's
// warnings about templates (UCS-2, more than one SMS).
func live(c config.Config, pol *policy.Policy) (gateway.Live, []string, error) {
	renderer, err := otp.NewRenderer(c.OTP.Brand, c.OTP.Locale, c.OTP.Templates)
	if err != nil {
		return gateway.Live{}, nil, fmt.Errorf("otp.templates: %w", err)
	}
	if err := renderer.Fit(c.OTP.MaxParts); err != nil {
		return gateway.Live{}, nil, fmt.Errorf("otp.templates: %w", err)
	}
	numbers := c.OTP.Numbers.Policy()
	if err := numbers.Validate(); err != nil {
		return gateway.Live{}, nil, fmt.Errorf("otp.numbers: %w", err)
	}
	return gateway.Live{Limits: c.OTP.Limits(numbers), Renderer: renderer, Policy: pol}, renderer.Check(), nil
}

// gatewayOptions returns the gateway's settings from c; the caller adds the
// NATS handles, the live settings, metrics, logger and journal.
func gatewayOptions(c config.Config, version string) gateway.Options {
	return gateway.Options{
		Node:            c.Node,
		Version:         version,
		MaxAttempts:     c.OTP.MaxAttempts,
		RetryDelay:      c.OTP.RetryDelay,
		AckWait:         c.NATS.AckWait,
		DeliveryTimeout: c.OTP.DeliveryTimeout,
		Routes:          routes(c.Modems),
	}
}

// journalTTL is how long a journalled message is kept: its delivery
// timeout and an hour to spare for a restart.
func journalTTL(c config.Config) time.Duration { return c.OTP.DeliveryTimeout + time.Hour }

// worker returns the worker settings of configured modem m, reading its
// SIM PIN.
func worker(m config.Modem) (gateway.Worker, error) {
	pin, err := m.PIN()
	if err != nil {
		return gateway.Worker{}, err
	}
	pattern, err := m.Balance.Regexp()
	if err != nil {
		return gateway.Worker{}, fmt.Errorf("modem %s: balance.pattern: %w", m.Name, err)
	}
	return gateway.Worker{
		Modem: modem.Config{
			Name: m.Name, Device: m.Device, Baud: m.Baud, PIN: pin,
			CommandTimeout: m.CommandTimeout, SendTimeout: m.SendTimeout,
			USB:   modem.USBMatch{VID: m.USB.VID, PID: m.USB.PID, Serial: m.USB.Serial, Port: m.USB.Port},
			Trace: m.Trace,
		},
		HealthInterval:  m.HealthInterval,
		PerMinute:       m.PerMinute,
		PerDay:          m.PerDay,
		BalanceUSSD:     m.Balance.USSD,
		BalanceInterval: m.Balance.Interval,
		BalancePattern:  pattern,
	}, nil
}

// simulatedWorker returns the worker settings of a simulated modem at
// device.
func simulatedWorker(name, device string) gateway.Worker {
	return gateway.Worker{Modem: modem.Config{Name: name, Device: device,
		CommandTimeout: 5 * time.Second, SendTimeout: 30 * time.Second}}
}

// routes returns the configured routes by modem name.
func routes(modems []config.Modem) map[string][]otp.Route {
	out := map[string][]otp.Route{}
	for _, m := range modems {
		for _, r := range m.Routes {
			out[m.Name] = append(out[m.Name], otp.Route(r))
		}
	}
	return out
}
