package daemon

import (
	"errors"
	"reflect"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/gateway"
)

// Reload applies the settings of cfg that are safe to change while jobs
// flow: number, code, text, size and ttl rules (otp.default_ttl,
// otp.max_ttl, otp.region, otp.numbers, otp.min_code_digits,
// otp.allow_text, otp.max_parts), templates (otp.brand, otp.locale, otp.templates) and the
// duplicate and rate limits (policy, except hash_key_file). They are
// swapped at once: a job already taken finishes with the settings it read.
// The log level is the caller's (it owns the logger).
//
// An invalid cfg is rejected whole and the running settings stay. Other
// changed keys are logged as needing a restart and not applied.
func (d *Daemon) Reload(cfg config.Config) error {
	if d.gw == nil {
		return errors.New("daemon not started")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	pol, err := d.newPolicy(cfg)
	if err != nil {
		return err
	}
	settings, warnings, err := live(cfg, pol)
	if err != nil {
		return err
	}

	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if keys := restartOnly(d.live, cfg); len(keys) > 0 {
		d.log.Warn("reload: changed settings apply only after a restart", "keys", keys)
	}
	for _, w := range warnings {
		d.log.Warn("template: " + w)
	}
	d.gw.SetLive(settings)
	// Keep what runs: the live keys from cfg, the others as started.
	applied := d.live
	applied.Log.Level = cfg.Log.Level
	applied.OTP.DefaultTTL, applied.OTP.MaxTTL, applied.OTP.Region = cfg.OTP.DefaultTTL, cfg.OTP.MaxTTL, cfg.OTP.Region
	applied.OTP.Brand, applied.OTP.Locale, applied.OTP.Templates = cfg.OTP.Brand, cfg.OTP.Locale, cfg.OTP.Templates
	applied.OTP.Numbers = cfg.OTP.Numbers
	applied.OTP.MinCodeDigits, applied.OTP.AllowText, applied.OTP.MaxParts = cfg.OTP.MinCodeDigits, cfg.OTP.AllowText, cfg.OTP.MaxParts
	hashKeyFile := applied.Policy.HashKeyFile
	applied.Policy = cfg.Policy
	applied.Policy.HashKeyFile = hashKeyFile
	d.live = applied
	return nil
}

// restartOnly names the keys that differ between the running configuration
// and cfg and cannot change live.
func restartOnly(running, cfg config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("node", running.Node, cfg.Node)
	diff("state_dir", running.StateDir, cfg.StateDir)
	diff("simulate", running.Simulate, cfg.Simulate)
	diff("log.format", running.Log.Format, cfg.Log.Format)
	diff("nats", running.NATS, cfg.NATS)
	diff("metrics", running.Metrics, cfg.Metrics)
	diff("otp.max_attempts", running.OTP.MaxAttempts, cfg.OTP.MaxAttempts)
	diff("otp.retry_delay", running.OTP.RetryDelay, cfg.OTP.RetryDelay)
	diff("policy.hash_key_file", running.Policy.HashKeyFile, cfg.Policy.HashKeyFile)
	diff("modems", running.Modems, cfg.Modems)
	return keys
}

// Live returns the settings in use (see Reload).
func (d *Daemon) Live() gateway.Live {
	if d.gw == nil {
		return gateway.Live{}
	}
	return d.gw.Live()
}
