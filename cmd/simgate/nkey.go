package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/natsauth"
)

func newNkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nkey FILE",
		Short: "Make a NATS user nkey seed in FILE (unless it exists) and print its public key",
		Long: `Make a NATS user nkey seed in FILE, mode 0600, unless FILE exists, and print
its public key. The seed stays with its user: simgate reads it with
nats.nkey_seed_file, an auth service with its NATS client (nats --nkey FILE).
The public key goes into the server's configuration: see
configs/nats/simgate-accounts.conf.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := natsauth.RoleKey(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
}
