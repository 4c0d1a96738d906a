package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/gateway"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: take OTP jobs from NATS and send them through the modems",
		Long: `Run the daemon. Without nats.url an embedded NATS server with JetStream is
started on nats.listen, storing under state_dir. With --simulate N, N simulated
modems on pseudo-terminals replace the configured ones: no real SMS is sent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format)
			ctx := cmd.Context()
			d, err := gateway.Start(ctx, cfg, log, buildVersion())
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return d.Stop(sctx)
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}
