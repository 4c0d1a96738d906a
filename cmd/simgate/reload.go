package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/simgate/simgate/config"
)

// runningDaemon is what the service loop needs of a *daemon.Daemon.
type runningDaemon interface {
	Reload(config.Config) error
	Healthy() error
	ModemsReady() int
	Modems() int
	Stop(context.Context) error
}

// service runs a started daemon under a service manager: it reports to
// systemd (sd_notify), reloads on SIGHUP and stops when ctx ends.
type service struct {
	d      runningDaemon
	log    *slog.Logger
	level  *slog.LevelVar
	notify *notifier
	// load reads the configuration afresh (same flags, file and
	// environment as at start).
	load func() (config.Config, error)
	// hup delivers SIGHUP.
	hup <-chan os.Signal
	// stopTimeout bounds the wait for sends in progress on stop.
	stopTimeout time.Duration
	// statusEvery is how often STATUS= is refreshed.
	statusEvery time.Duration
}

// run reports READY=1, then serves until ctx ends, and stops the daemon.
//
// WATCHDOG=1 is sent every WatchdogSec/2 only while the daemon is healthy
// (Daemon.Healthy: NATS connected and every modem worker loop running), so
// systemd restarts a daemon that lost NATS or a worker for WatchdogSec.
// Zero modems ready is not unhealthy: a restart would not bring back an
// unplugged modem, and the status line and /readyz show it.
func (s *service) run(ctx context.Context) error {
	status := s.status()
	s.send("READY=1\nSTATUS=" + status)

	var watchdog <-chan time.Time
	if iv := s.notify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
		s.log.Debug("systemd watchdog enabled", "interval", iv)
	}
	every := s.statusEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var unhealthy error
	for {
		select {
		case <-ctx.Done():
			s.log.Info("shutting down", "timeout", s.stopTimeout)
			s.send("STOPPING=1\nSTATUS=stopping: finishing sends in progress")
			sctx, cancel := context.WithTimeout(context.Background(), s.stopTimeout)
			defer cancel()
			return s.d.Stop(sctx)
		case <-s.hup:
			s.reload()
			status = s.status()
			s.send("READY=1\nSTATUS=" + status)
		case <-watchdog:
			err := s.d.Healthy()
			if err == nil {
				s.send("WATCHDOG=1")
				if unhealthy != nil {
					s.log.Info("healthy again")
				}
			} else if unhealthy == nil || unhealthy.Error() != err.Error() {
				s.log.Warn("unhealthy: not feeding the systemd watchdog", "err", err)
			}
			unhealthy = err
		case <-tick.C:
			if st := s.status(); st != status {
				status = st
				s.send("STATUS=" + status)
			}
		}
	}
}

// reload reads the configuration again and applies what can change live.
// A configuration that does not load or validate changes nothing.
func (s *service) reload() {
	s.send("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec() + "\nSTATUS=reloading")
	s.log.Info("reloading configuration")
	cfg, err := s.load()
	if err == nil {
		err = s.d.Reload(cfg)
	}
	if err != nil {
		s.log.Error("reload rejected, running settings kept", "err", err)
		return
	}
	if s.level != nil {
		s.level.Set(parseLevel(cfg.Log.Level))
	}
	s.log.Info("configuration reloaded", "log_level", cfg.Log.Level)
}

func (s *service) status() string {
	st := fmt.Sprintf("%d/%d modems ready", s.d.ModemsReady(), s.d.Modems())
	if err := s.d.Healthy(); err != nil {
		st += "; " + err.Error()
	}
	return st
}

func (s *service) send(state string) {
	if err := s.notify.Notify(state); err != nil {
		s.log.Warn("notify systemd", "err", err)
	}
}
