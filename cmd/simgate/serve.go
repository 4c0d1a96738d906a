package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
)

func newServeCmd() *cobra.Command {
	var stopTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: take OTP jobs from NATS and send them through the modems",
		Long: `Run the daemon. Without nats.url an embedded NATS server with JetStream is
started on nats.listen, storing under state_dir. With --simulate N, N simulated
modems on pseudo-terminals replace the configured ones: no real SMS is sent.

SIGTERM or SIGINT stop it gracefully: no new job is taken, a job fetched but
not started is handed back, and a send in progress finishes (at most
--stop-timeout). SIGHUP reloads the configuration (same --config, flags and
environment): number rules, ttls, templates, rate limits and the log level
change at once; an invalid file changes nothing. Under systemd
(Type=notify) it reports READY, RELOADING, STOPPING, STATUS and feeds the
watchdog while NATS is connected and the modem workers run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Catch SIGHUP before anything else: its default action kills.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)

			flags := cmd.Flags()
			cfg, err := config.Load(flags)
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			level.Set(parseLevel(cfg.Log.Level))
			log := newLevelLogger(cmd.ErrOrStderr(), level, cfg.Log.Format)
			ctx := cmd.Context()
			notify := newNotifier()
			// While NATS is away the unit stays "activating", saying why.
			d, err := daemon.Start(ctx, cfg, log, buildVersion(), daemon.WithStatus(func(status string) {
				notify.Notify("STATUS=" + status)
			}))
			if err != nil {
				return err
			}
			s := &service{
				d: d, log: log, level: level, notify: notify,
				load:        func() (config.Config, error) { return config.Load(flags) },
				hup:         hup,
				stopTimeout: stopTimeout,
				statusEvery: 5 * time.Second,
			}
			return s.run(ctx)
		},
	}
	config.Flags(cmd.Flags())
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", 135*time.Second,
		"on SIGTERM, how long to wait for sends in progress (keep it below systemd's TimeoutStopSec)")
	return cmd
}
