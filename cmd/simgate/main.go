// Command simgate is an SMS gateway and OTP delivery daemon for GSM modems.
//
//	simgate serve --simulate 2     # embedded NATS, two simulated modems
//	simgate send --to +4526227921 --code 034812 --wait
//	simgate verify --to +4526227921 --id login-77   # simgate makes the code
//	simgate check --id login-77 --code 123456       # exit status 0 only when approved
//	simgate modemsim               # a simulated modem on a pseudo-terminal
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "simgate",
		Short:         "SMS gateway and OTP delivery daemon for GSM modems",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), newSendCmd(), newVerifyCmd(), newCheckCmd(), newStatusCmd(), newModemsimCmd(), newCheckConfigCmd(), newModemsCmd(), newNkeyCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "simgate", buildVersion())
		},
	})
	return root
}

// newLogger builds the process logger.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	return newLevelLogger(w, parseLevel(level), format)
}

// newLevelLogger builds the process logger; level may be a *slog.LevelVar,
// to change it while running.
func newLevelLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// parseLevel returns the slog level of a log.level value; info when unknown
// (config.Validate rejects those).
func parseLevel(level string) slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}
