package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/otp"
)

// exitNotApproved is the exit status of simgate check for a code that is
// not approved: denied, expired, locked or not found.
const exitNotApproved = 3

func newVerifyCmd() *cobra.Command {
	var (
		req     otp.VerifyRequest
		ttl     time.Duration
		conn    config.Client
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify --to NUMBER",
		Short: "Have simgate make a code and send it (otp.verify); check it with simgate check",
		Long: `Start a managed verification through otp.verify: simgate makes the code,
sends it by SMS and keeps it for otp.check (simgate check). Print the
immediate answer as JSON; "verification" names the verification the SMS's
code belongs to (--id, or for a resend of a code still valid the number's
pending verification), which simgate check --id takes. The code is never
printed: it is only in the SMS.
Exit status: 0 accepted, 2 rejected, 1 any other error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.ID == "" {
				req.ID = rand.Text()
			}
			req.TTL = otp.Duration(ttl)
			opts, err := clientOptions(cmd, &conn)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return startVerify(ctx, cmd, conn.URL, append(opts, nats.Name("simgate verify")), req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "destination phone number")
	f.StringVar(&req.Region, "region", "", "ISO region for a national number (DK)")
	f.StringVar(&req.ID, "id", "", "verification id (idempotency key); random when empty")
	f.IntVar(&req.Digits, "digits", 0, "digits of the code, 6 to 10 (default: 6, or the daemon's otp.min_code_digits if more)")
	f.BoolVar(&req.New, "new", false, "a new code even when the number has one still valid (which is otherwise sent again)")
	f.StringVar(&req.Template, "template", "", "template name")
	f.StringVar(&req.Locale, "locale", "", "template locale")
	f.DurationVar(&ttl, "ttl", 0, "how long the code is valid (default: the daemon's)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	conn.Flags(f)
	cmd.MarkFlagRequired("to")
	return cmd
}

func startVerify(ctx context.Context, cmd *cobra.Command, url string, opts []nats.Option, req otp.VerifyRequest) error {
	c, closeConn, err := connect(url, opts)
	if err != nil {
		return err
	}
	defer closeConn()
	reply, err := c.Verify(ctx, req)
	if err != nil {
		return callError(url, err)
	}
	json.NewEncoder(cmd.OutOrStdout()).Encode(reply)
	switch reply.Status {
	case otp.ReplyAccepted:
		return nil
	case otp.ReplyRejected:
		return &exitError{exitRejected, fmt.Errorf("rejected: %s %s", reply.Reason, reply.Detail)}
	default:
		return fmt.Errorf("simgate could not start the verification: %s", reply.Detail)
	}
}

func newCheckCmd() *cobra.Command {
	var (
		req     otp.CheckRequest
		conn    config.Client
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check (--id ID | --to NUMBER [--region REGION]) --code CODE",
		Short: "Check a code of a managed verification (otp.check); exit status 0 only when approved",
		Long: `Check CODE against a managed verification (see simgate verify) through
otp.check: the one named --id, or the newest pending verification of the
number --to (with --region for a national number). Print the answer as
JSON: approved, denied (with attempts_left), expired, locked, not_found,
rejected (with a reason) or error. The code is never printed.
Exit status: 0 approved (and only then), 3 denied, expired, locked or
not_found, 2 rejected (a malformed check, or rate_limited), 1 any other
error. With --code -, the code is the first line of standard input: a
code on the command line stays in the shell's history.`,
		// No positional arguments, and none echoed: a code typed without
		// --code would be.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errors.New("check takes no arguments: give the code with --code")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := codeFromStdin(cmd, &req.Code); err != nil {
				return err
			}
			opts, err := clientOptions(cmd, &conn)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return check(ctx, cmd, conn.URL, append(opts, nats.Name("simgate check")), req)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "the verification's id (its \"verification\" in simgate verify's answer)")
	f.StringVar(&req.To, "to", "", "the number whose newest pending verification to check, instead of --id")
	f.StringVar(&req.Region, "region", "", "ISO region for a national --to number (DK)")
	f.StringVar(&req.Code, "code", "", "the code the user typed: 6-10 digits; - reads it from standard input (kept out of shell history)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	conn.Flags(f)
	cmd.MarkFlagsOneRequired("id", "to")
	cmd.MarkFlagsMutuallyExclusive("id", "to")
	cmd.MarkFlagRequired("code")
	return cmd
}

func check(ctx context.Context, cmd *cobra.Command, url string, opts []nats.Option, req otp.CheckRequest) error {
	c, closeConn, err := connect(url, opts)
	if err != nil {
		return err
	}
	defer closeConn()
	answer, err := c.Check(ctx, req)
	if err != nil {
		return callError(url, err)
	}
	json.NewEncoder(cmd.OutOrStdout()).Encode(answer)
	switch answer.Status {
	case otp.CheckApproved:
		return nil
	case otp.CheckDenied:
		return &exitError{exitNotApproved, fmt.Errorf("denied: %d attempts left", answer.AttemptsLeft)}
	case otp.CheckExpired, otp.CheckLocked, otp.CheckNotFound:
		return &exitError{exitNotApproved, errors.New(string(answer.Status))}
	case otp.CheckRejected:
		return &exitError{exitRejected, fmt.Errorf("rejected: %s %s", answer.Reason, answer.Detail)}
	default:
		return fmt.Errorf("simgate could not check the code: %s", answer.Detail)
	}
}
