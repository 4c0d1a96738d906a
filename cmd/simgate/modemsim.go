package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/modem/modemsim"
)

func newModemsimCmd() *cobra.Command {
	var (
		cfg  modemsim.Config
		out  string
		ussd []string
	)
	cmd := &cobra.Command{
		Use:   "modemsim",
		Short: "Run a simulated GSM modem on a pseudo-terminal",
		Long: `Run a simulated GSM modem (3GPP TS 27.007/27.005, PDU mode) on a
pseudo-terminal and print its device path. Point simgate, or any AT client, at
that path. Every SMS it takes is decoded and written as a JSON line to --out
(standard output by default). It runs until interrupted.

An SMS that requests a status report gets one after --report-delay, routed as
AT+CNMI <ds> says: +CDS (acknowledged with AT+CNMA after AT+CSMS=1), or stored
in "SR" with +CDSI (the only way with --store-reports). The --*-rate flags
inject faults at random; --seed repeats them. --ussd answers USSD codes
(AT+CUSD), as a network's balance query: --ussd '*100#=Your balance is
12.34 EUR'; with --ussd-packed, as a Huawei modem does (the code and the
answer as GSM 7-bit septets packed in octets, in hexadecimal).

Incoming SMS: each line on standard input "<sender> <text>" (a number or
an operator's name, then the text) is delivered to the modem as the
network would ("+4526227921 STOP"); "ucs2 <sender> <text>" forces UCS-2.
Long texts come in concatenated parts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			enc := json.NewEncoder(w)
			cfg.USSD = map[string]string{}
			for _, u := range ussd {
				code, answer, ok := strings.Cut(u, "=")
				if !ok || code == "" {
					return fmt.Errorf("--ussd %q: want <code>=<answer>", u)
				}
				cfg.USSD[code] = answer
			}
			msgs := make(chan modemsim.Message, 64)
			cfg.OnMessage = func(m modemsim.Message) { msgs <- m }
			cfg.Logger = newLogger(cmd.ErrOrStderr(), "info", "text")
			sim, err := modemsim.Start(cfg)
			if err != nil {
				return err
			}
			defer sim.Close()
			go receiveLines(cmd.InOrStdin(), sim, cmd.ErrOrStderr())
			fmt.Fprintln(cmd.ErrOrStderr(), "simulated modem on", sim.Path())
			if cfg.Link != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "linked at", cfg.Link)
			}
			for {
				select {
				case <-cmd.Context().Done():
					closeAndDrain(sim, msgs, enc)
					return nil
				case m := <-msgs:
					enc.Encode(m)
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&ussd, "ussd", nil, "a USSD code and its answer, <code>=<answer> (repeatable)")
	f.BoolVar(&cfg.USSDPacked, "ussd-packed", false, "take USSD requests and give answers only packed in hexadecimal, as Huawei modems do")
	f.BoolVar(&cfg.FullStorageRefuses, "full-storage-refuses", false, "answer AT+CMGS with +CMS ERROR: 322 while the SIM's 30 message slots are full, as some modems do")
	f.StringVar(&cfg.Name, "name", "sim1", "modem name")
	f.StringVar(&cfg.Link, "link", "", "also make this symlink to the device")
	f.DurationVar(&cfg.SendDelay, "send-delay", 500*time.Millisecond, "network delay of AT+CMGS")
	f.StringVar(&cfg.PIN, "pin", "", "SIM PIN the simulated SIM asks for (none when empty)")
	f.IntVar(&cfg.Signal, "signal", 20, "signal quality reported by AT+CSQ (0-31, 99 unknown)")
	f.IntVar(&cfg.Registration, "registration", 1, "network registration state for AT+CREG (1 home, 5 roaming, 0/2/3 not registered)")
	f.StringVar(&out, "out", "-", "where to write received messages as JSON lines")
	f.Float64Var(&cfg.FailRate, "fail-rate", 0, "probability (0-1) that a send fails with a +CMS ERROR from --fail-codes")
	f.IntSliceVar(&cfg.FailCodes, "fail-codes", nil, "+CMS ERROR codes for --fail-rate (default 42, congestion)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random faults (all the --*-rate flags)")
	f.DurationVar(&cfg.ReportDelay, "report-delay", time.Second, "delay of a status report after +CMGS")
	f.Uint8Var(&cfg.ReportStatus, "report-status", 0, "TP-Status of the status reports (0 delivered, 0x20-0x3F temporary, 0x40-0x7F permanent error)")
	f.Float64Var(&cfg.ReportFailRate, "report-fail-rate", 0, "probability (0-1) that a status report says 0x41 (permanent error) instead")
	f.Float64Var(&cfg.ReportDropRate, "report-drop-rate", 0, "probability (0-1) that the network never sends a status report")
	f.BoolVar(&cfg.StoreReports, "store-reports", false, "only store status reports: refuse AT+CNMI <ds>=1")
	f.Float64Var(&cfg.HangRate, "hang-rate", 0, "probability (0-1) that a send hangs the modem for --hang-for (the SMS goes out, the answer is lost)")
	f.DurationVar(&cfg.HangFor, "hang-for", 30*time.Second, "how long a modem hung by --hang-rate stays silent")
	f.Float64Var(&cfg.URCRate, "urc-rate", 0, `probability (0-1) per command of a stray +CMTI: "SM",<n> before its final result code`)
	return cmd
}

// closeAndDrain closes the simulator and writes the messages of the
// callbacks Close runs: once Close returns, no callback sends any more.
func closeAndDrain(sim *modemsim.Modem, msgs chan modemsim.Message, enc *json.Encoder) {
	go func() {
		sim.Close()
		close(msgs)
	}()
	for m := range msgs {
		enc.Encode(m)
	}
}

// receiveLines delivers each line of r, "[ucs2] <sender> <text>", to sim
// as an incoming SMS, until r ends.
func receiveLines(r io.Reader, sim *modemsim.Modem, errs io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		in, ok := parseIncoming(sc.Text())
		if !ok {
			fmt.Fprintln(errs, `want "[ucs2] <sender> <text>"`)
			continue
		}
		ds, err := sim.Receive(in)
		if err != nil {
			fmt.Fprintln(errs, err)
			continue
		}
		for _, d := range ds {
			fmt.Fprintf(errs, "incoming part: %s %d\n", d.Route, d.Index)
		}
	}
}

// parseIncoming reads "[ucs2] <sender> <text>".
func parseIncoming(line string) (modemsim.Incoming, bool) {
	var in modemsim.Incoming
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ucs2 "); ok {
		in.UCS2, line = true, strings.TrimSpace(rest)
	}
	from, text, ok := strings.Cut(line, " ")
	if !ok || from == "" || text == "" {
		return in, false
	}
	in.From, in.Text = from, text
	return in, true
}
