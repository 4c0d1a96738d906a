package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

func newCheckConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check-config",
		Short: "Validate the configuration and print what simgate would run with",
		Long: `Read the configuration exactly as serve does (file, SIMGATE_* environment,
flags), list every problem, and print the effective settings as YAML. Secrets
never appear: the configuration names the files they are read from. Exit
status 1 when the configuration is invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				var problems []string
				for _, line := range strings.Split(err.Error(), "\n") {
					problems = append(problems, "  - "+line)
				}
				return errors.New("invalid configuration:\n" + strings.Join(problems, "\n"))
			}
			out := cmd.OutOrStdout()
			r, err := otp.NewRenderer(cfg.OTP.Brand, cfg.OTP.Locale, cfg.OTP.Templates)
			if err != nil {
				return fmt.Errorf("invalid configuration:\n  - %w", err)
			}
			if err := r.Fit(cfg.OTP.MaxParts); err != nil {
				return fmt.Errorf("invalid configuration:\n  - otp.templates: %w", err)
			}
			for _, w := range r.Check() {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: template:", w)
			}
			if hosts := natsauth.ClearTextHosts(cfg.NATS.URL, cfg.NATS.Auth().Client); len(hosts) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: nats credentials go in clear over plain nats:// to", strings.Join(hosts, ", ")+": use tls:// or nats.tls")
			}
			// A URL may hold a password (nats://user:pw@host).
			cfg.NATS.URL = natsauth.RedactURL(cfg.NATS.URL)
			// The file the key is read from, named (never read out).
			cfg.Policy.HashKeyFile = cfg.PolicyKeyFile()
			b, err := yaml.Marshal(settings(reflect.ValueOf(cfg)))
			if err != nil {
				return err
			}
			out.Write(b)
			return nil
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}

// settings turns a configuration value into plain YAML data keyed by the
// configuration's own key names, with durations written as "10m0s".
func settings(v reflect.Value) any {
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).String()
	}
	if v.Type() == reflect.TypeFor[config.ByteSize]() {
		return config.ByteSize(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if f.Type == reflect.TypeFor[config.Secret]() {
				// From the environment, never shown.
				if !v.Field(i).IsZero() {
					m[strings.ToLower(f.Name)] = "[redacted]"
				}
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			m[name] = settings(v.Field(i))
		}
		return m
	case reflect.Slice:
		s := make([]any, v.Len())
		for i := range v.Len() {
			s[i] = settings(v.Index(i))
		}
		return s
	case reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			m[fmt.Sprint(k.Interface())] = settings(v.MapIndex(k))
		}
		return m
	}
	return v.Interface()
}
