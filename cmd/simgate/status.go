package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/otp"
)

func newStatusCmd() *cobra.Command {
	var (
		conn    config.Client
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every daemon's modems: state, SIM, network, signal, balance, sends, last error",
		Long: `Ask every simgate daemon on the NATS server or cluster for its status
(simgate.status: each daemon answers once) and print one line per modem,
with the daemon's node and the shared queue's depth; --json prints the
answers as they came (otp.Status). It connects as simgate send does (the
publisher's credentials, or an operator's); it does not open any modem,
so it works while the daemons hold them.
Exit status: 0 when every modem is ready or busy, 3 when one is not, 1
when no daemon answered.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := clientOptions(cmd, &conn)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return status(ctx, cmd, conn.URL, append(opts, nats.Name("simgate status")), asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the daemons' answers as JSON, one per line")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "wait this long for the first answer")
	conn.Flags(f)
	return cmd
}

func status(ctx context.Context, cmd *cobra.Command, url string, opts []nats.Option, asJSON bool) error {
	c, closeConn, err := connect(url, opts)
	if err != nil {
		return err
	}
	defer closeConn()
	all, err := c.Status(ctx, 500*time.Millisecond)
	if err != nil {
		return callError(url, err)
	}
	out := cmd.OutOrStdout()
	notReady := 0
	for _, st := range all {
		for _, m := range st.Modems {
			if m.State != "ready" && m.State != "busy" {
				notReady++
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		for _, st := range all {
			enc.Encode(st)
		}
	} else {
		printStatus(out, all)
	}
	if notReady > 0 {
		return &exitError{exitNotApproved, fmt.Errorf("%d modem(s) not ready", notReady)}
	}
	return nil
}

// printStatus writes one line per modem.
func printStatus(w io.Writer, all []otp.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tMODEM\tSTATE\tSIM\tNETWORK\tOPERATOR\tSIGNAL\tBALANCE\tSENT TODAY\tCAPS\tSIM STORAGE\tLAST ERROR")
	for _, st := range all {
		for _, m := range st.Modems {
			signal, balance, caps, storage := "-", "-", "-", "-"
			if m.SignalDBm != nil {
				signal = strconv.Itoa(*m.SignalDBm) + " dBm"
			}
			if m.Balance != nil {
				balance = strconv.FormatFloat(*m.Balance, 'f', -1, 64)
			}
			if m.PerMinute > 0 || m.PerDay > 0 {
				caps = fmt.Sprintf("%d/min %d/day", m.PerMinute, m.PerDay)
			}
			if m.StorageSize > 0 {
				storage = fmt.Sprintf("%d/%d", m.StorageUsed, m.StorageSize)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", st.Node, m.Name, m.State,
				dash(m.SIM), dash(m.Registration), dash(m.Operator), signal, balance, m.SentToday, caps, storage, dash(m.LastError))
		}
	}
	tw.Flush()
	for _, st := range all {
		q := "unknown"
		if st.QueuePending >= 0 {
			q = strconv.FormatInt(st.QueuePending, 10)
		}
		fmt.Fprintf(w, "%s: version %s, %d modem(s), queue %s\n", st.Node, dash(st.Version), len(st.Modems), q)
	}
}
