package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

// Exit statuses of simgate send.
const (
	exitRejected = 2 // the job was rejected
	exitFailed   = 3 // the job failed or expired
)

func newSendCmd() *cobra.Command {
	var (
		job     otp.Job
		ttl     time.Duration
		conn    config.Client
		wait    bool
		waitDel bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "send --to NUMBER (--code DIGITS | --text TEXT)",
		Short: "Send one OTP (or text) through otp.request and optionally follow its events",
		Long: `Send one job through otp.request and print the immediate answer as JSON.
With --wait, follow the job's events until a final one and print each;
with --wait-delivery, on to the status report's verdict.
Exit status: 0 sent (delivered with --wait-delivery; accepted without
--wait), 2 rejected, 3 failed, expired or not delivered, 1 any other error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if job.ID == "" {
				job.ID = rand.Text()
			}
			job.TTL = otp.Duration(ttl)
			if err := codeFromStdin(cmd, &job.Code); err != nil {
				return err
			}
			opts, err := clientOptions(cmd, &conn)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return send(ctx, cmd, conn.URL, append(opts, nats.Name("simgate send")), job, wait || waitDel, waitDel)
		},
	}
	f := cmd.Flags()
	f.StringVar(&job.To, "to", "", "destination phone number")
	f.StringVar(&job.Region, "region", "", "ISO region for a national number (DK)")
	f.StringVar(&job.Code, "code", "", "one-time code: 6-10 digits (4 or 5 only where the daemon sets otp.min_code_digits lower); - reads it from standard input")
	f.StringVar(&job.Text, "text", "", "plain SMS text instead of a code (refused unless the daemon sets otp.allow_text)")
	f.StringVar(&job.ID, "id", "", "job id (idempotency key); random when empty")
	f.StringVar(&job.Template, "template", "", "template name")
	f.StringVar(&job.Locale, "locale", "", "template locale")
	f.DurationVar(&ttl, "ttl", 0, "how long the code is worth sending (default: the daemon's)")
	f.BoolVar(&wait, "wait", false, "follow the job's events until a final one")
	f.BoolVar(&waitDel, "wait-delivery", false, "follow the job's events until its delivery outcome (status report)")
	f.DurationVar(&timeout, "timeout", 3*time.Minute, "give up after this long")
	conn.Flags(f)
	cmd.MarkFlagRequired("to")
	return cmd
}

// codeFromStdin replaces a code given as "-" with the first line of cmd's
// standard input, without its surrounding white space: a code on the
// command line stays in the shell's history.
func codeFromStdin(cmd *cobra.Command, code *string) error {
	if *code != "-" {
		return nil
	}
	// A code is at most 10 digits: past 256 bytes the line is cut (and
	// the daemon refuses it).
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 256)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the code from standard input: %w", err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return errors.New("read the code from standard input: nothing there")
	}
	*code = line
	return nil
}

// clientOptions completes conn (the URL and secrets from the environment,
// else a simgate on this host's publisher seed), returns its NATS options,
// and warns on cmd's stderr when credentials would go in clear.
func clientOptions(cmd *cobra.Command, conn *config.Client) ([]nats.Option, error) {
	if err := conn.Complete(); err != nil {
		return nil, err
	}
	opts, err := natsauth.ClientOptions(conn.Auth)
	if err != nil {
		return nil, err
	}
	if hosts := natsauth.ClearTextHosts(conn.URL, conn.Auth); len(hosts) > 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: nats credentials go in clear over plain nats:// to", strings.Join(hosts, ", ")+": use tls:// or --tls-ca")
	}
	return opts, nil
}

// connect connects to url and returns a client on the connection, and a
// function that closes it. Errors never show a secret of url.
func connect(url string, opts []nats.Option) (*client.Client, func(), error) {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		// A parse error quotes the URL, password and all.
		return nil, nil, fmt.Errorf("connect to %s: %w", natsauth.RedactURL(url), natsauth.RedactError(err, url))
	}
	c, err := client.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return c, nc.Close, nil
}

// callError is the error of a call to simgate over url, without a secret
// of url.
func callError(url string, err error) error {
	return fmt.Errorf("%s: %w", natsauth.RedactURL(url), natsauth.RedactError(err, url))
}

func send(ctx context.Context, cmd *cobra.Command, url string, opts []nats.Option, job otp.Job, wait, delivery bool) error {
	c, closeConn, err := connect(url, opts)
	if err != nil {
		return err
	}
	defer closeConn()
	reply, err := c.Request(ctx, job)
	if err != nil {
		return callError(url, err)
	}
	out := cmd.OutOrStdout()
	enc := json.NewEncoder(out)
	enc.Encode(reply)
	switch reply.Status {
	case otp.ReplyRejected:
		return &exitError{exitRejected, fmt.Errorf("rejected: %s %s", reply.Reason, reply.Detail)}
	case otp.ReplyError:
		return fmt.Errorf("simgate could not queue the job: %s", reply.Detail)
	}
	if !wait {
		return nil
	}
	// For a duplicate of another id, that job's fate is this one's.
	for ev, err := range c.Events(ctx, reply.Follow()) {
		if err != nil {
			return err
		}
		enc.Encode(ev)
		switch {
		case ev.Type == otp.StateSent && delivery && !ev.Last():
			// The status report's verdict follows.
		case ev.Type == otp.StateDelivered:
			return nil
		case !ev.Type.DeliveryFinal() && !ev.Type.Final():
		case ev.Type == otp.StateSent:
			return nil
		case ev.Type == otp.StateRejected:
			return &exitError{exitRejected, fmt.Errorf("%s: %s", ev.Type, ev.Reason)}
		default:
			return &exitError{exitFailed, fmt.Errorf("%s: %s", ev.Type, ev.Reason)}
		}
	}
	return ctx.Err()
}
