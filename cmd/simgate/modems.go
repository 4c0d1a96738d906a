package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.bug.st/serial/enumerator"

	"github.com/simgate/simgate/modem"
)

func newModemsCmd() *cobra.Command {
	var (
		probe   bool
		timeout time.Duration
		devices []string
	)
	cmd := &cobra.Command{
		Use:   "modems [--probe] [DEVICE...]",
		Short: "List serial ports with their USB details, and probe them with AT commands",
		Long: `List the serial ports the system has, with USB vendor and product ids,
serial number and stable /dev/serial/by-id names. With --probe, open each
(or only the DEVICEs given) and ask it with AT commands for manufacturer,
model, IMEI, SIM state, registration, operator and signal. A port that is
not a modem (or a modem's non-AT interface) shows as not answering.
Probing a port another program uses (ModemManager, a running simgate)
disturbs it: stop that first.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := enumerator.GetDetailedPortsList()
			if err != nil {
				return fmt.Errorf("list serial ports: %w", err)
			}
			byID := stableNames("/dev/serial/by-id")
			sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEVICE\tUSB\tSERIAL\tBY-ID")
			for _, p := range ports {
				usb := "-"
				if p.IsUSB {
					usb = p.VID + ":" + p.PID
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, usb, dash(p.SerialNumber), dash(byID[p.Name]))
			}
			w.Flush()
			if !probe {
				return nil
			}
			devices = args
			if len(devices) == 0 {
				for _, p := range ports {
					devices = append(devices, p.Name)
				}
			}
			fmt.Fprintln(cmd.OutOrStdout())
			w = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DEVICE\tMODEL\tIMEI\tSIM\tREGISTRATION\tOPERATOR\tSIGNAL")
			for _, dev := range devices {
				fmt.Fprintln(w, probeLine(cmd.Context(), dev, timeout))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&probe, "probe", false, "ask each port with AT commands")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "per-command timeout while probing")
	return cmd
}

// probeLine opens dev as a modem and describes it in one tab-separated
// line. It never enters a SIM PIN.
func probeLine(ctx context.Context, dev string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, 4*timeout+time.Second)
	defer cancel()
	m, err := modem.Open(ctx, modem.Config{Name: filepath.Base(dev), Device: dev, CommandTimeout: timeout})
	if err != nil {
		return fmt.Sprintf("%s\t-\t-\t%s\t-\t-\t-", dev, shortErr(err))
	}
	defer m.Close()
	inf := m.Info()
	h, err := m.Health()
	if err != nil {
		return fmt.Sprintf("%s\t%s %s\t%s\t%s\t-\t-\t-", dev, inf.Manufacturer, inf.Model, dash(inf.IMEI), shortErr(err))
	}
	signal := "unknown"
	if h.SignalKnown {
		signal = fmt.Sprintf("%d dBm", h.SignalDBm)
	}
	return fmt.Sprintf("%s\t%s %s\t%s\t%s\t%s\t%s\t%s", dev, inf.Manufacturer, inf.Model, dash(inf.IMEI), h.SIM, h.Registration, dash(h.Operator), signal)
}

func shortErr(err error) string {
	switch {
	case err == nil:
		return "-"
	case errors.Is(err, modem.ErrSIMPINRequired):
		return "SIM PIN"
	case errors.Is(err, modem.ErrSIMPUK):
		return "SIM PUK"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer"
	}
	return "error: " + err.Error()
}

// stableNames maps device paths to their symlinks in dir.
func stableNames(dir string) map[string]string {
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range entries {
		link := filepath.Join(dir, e.Name())
		if target, err := filepath.EvalSymlinks(link); err == nil {
			out[target] = link
		}
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
