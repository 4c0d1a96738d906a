package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/simgate/simgate/otp"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "simgate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

const minimal = `
modems:
  - name: m1
    device: /dev/ttyUSB2
`

func TestPrecedence(t *testing.T) {
	file := writeFile(t, minimal+`
nats:
  url: nats://file:4222
  listen: 127.0.0.1:5222
metrics:
  listen: 127.0.0.1:9999
otp:
  default_ttl: 5m
`)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		url     string
		listen  string
		metrics string
	}{
		{"file over default", nil, nil, "nats://file:4222", "127.0.0.1:5222", "127.0.0.1:9999"},
		{"env over file", map[string]string{"SIMGATE_NATS_URL": "nats://env:4222", "SIMGATE_METRICS_LISTEN": "127.0.0.1:1"}, nil, "nats://env:4222", "127.0.0.1:5222", "127.0.0.1:1"},
		{"flag over env", map[string]string{"SIMGATE_NATS_URL": "nats://env:4222"}, []string{"--nats-url", "nats://flag:4222"}, "nats://flag:4222", "127.0.0.1:5222", "127.0.0.1:9999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(flags(t, append([]string{"--config", file}, tc.args...)...))
			if err != nil {
				t.Fatal(err)
			}
			if c.NATS.URL != tc.url || c.NATS.Listen != tc.listen || c.Metrics.Listen != tc.metrics {
				t.Errorf("url %q listen %q metrics %q", c.NATS.URL, c.NATS.Listen, c.Metrics.Listen)
			}
			if c.OTP.DefaultTTL != 5*time.Minute || c.OTP.MaxTTL != 10*time.Minute {
				t.Errorf("ttl %s/%s", c.OTP.DefaultTTL, c.OTP.MaxTTL)
			}
		})
	}
}

func TestEnvironmentWithoutFile(t *testing.T) {
	t.Setenv("SIMGATE_SIMULATE", "3")
	t.Setenv("SIMGATE_OTP_MAX_ATTEMPTS", "7")
	c, err := Load(flags(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Simulate != 3 || c.OTP.MaxAttempts != 7 {
		t.Errorf("simulate %d max_attempts %d", c.Simulate, c.OTP.MaxAttempts)
	}
}

func TestUnknownKeyIsNamed(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{minimal + "natz:\n  url: x\n", "natz"},
		{minimal + "nats:\n  ulr: x\n", "nats.ulr"},
		{"modems:\n  - name: m1\n    device: /dev/x\n    bauds: 9600\n", "modems[0].bauds"},
		{minimal + "bogus: 1\n", "bogus"},
	} {
		_, err := Load(flags(t, "--config", writeFile(t, tc.body)))
		if want := tc.key + ": unknown key"; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	// Before, the type error hid the unknown keys, and both hid what
	// Validate finds; a value that does not decode is not reported again
	// as the empty value standing in for it.
	body := `
bogus: 1
log: {level: loud}
nats: {ulr: x, ack_wait: soon}
otp: {max_attempts: five}
modems:
  - {name: m1, device: /dev/a, bauds: 9600, baud: fast}
`
	_, err := Load(flags(t, "--config", writeFile(t, body)))
	want := strings.Join([]string{
		`bogus: unknown key`,
		`log.level "loud": want debug, info, warn or error`,
		`modems[0].baud "fast": want a whole number`,
		`modems[0].bauds: unknown key`,
		`nats.ack_wait "soon": want a duration such as 30s, 10m or 1h30m`,
		`nats.ulr: unknown key`,
		`otp.max_attempts "five": want a whole number`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	body := `
log: {level: loud}
policy: {number: [{limit: 0, period: 1h}], cooldown: 48h}
otp: {default_ttl: 2h, max_ttl: 1h}
modems:
  - {name: m1, device: /dev/a, routes: [DK, "+4530", dk]}
  - {name: m1, device: ""}
`
	_, err := Load(flags(t, "--config", writeFile(t, body)))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"log.level", "otp.default_ttl", `"m1": used twice`, "modems[1]: device or usb", "policy: number window 0/1h0m0s", "policy: cooldown", `modems[0].routes: route "dk"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestNoModems(t *testing.T) {
	if _, err := Load(flags(t)); err == nil || !strings.Contains(err.Error(), "no modems") {
		t.Errorf("error %v", err)
	}
	if _, err := Load(flags(t, "--simulate", "2")); err != nil {
		t.Errorf("simulated: %v", err)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(flags(t, "--config", "../configs/simgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	c.Modems, d.Modems = nil, nil
	c.OTP.Templates, d.OTP.Templates = nil, nil
	c.Node, d.Node = "", ""
	c.StateDir, d.StateDir = "", "" // resolved from the environment when empty
	if !reflect.DeepEqual(c, d) {
		t.Errorf("example config differs from the defaults:\n%+v\n%+v", c, d)
	}
}

func TestPIN(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pin")
	os.WriteFile(p, []byte("1234\n"), 0o600)
	t.Setenv("TEST_PIN", "4321")
	for _, tc := range []struct {
		m    Modem
		want string
		err  bool
	}{
		{Modem{Name: "a"}, "", false},
		{Modem{Name: "a", PINFile: p}, "1234", false},
		{Modem{Name: "a", PINEnv: "TEST_PIN"}, "4321", false},
		{Modem{Name: "a", PINFile: filepath.Join(dir, "none")}, "", true},
		{Modem{Name: "a", PINEnv: "TEST_NO_SUCH_PIN"}, "", true},
	} {
		got, err := tc.m.PIN()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%+v: %q, %v", tc.m, got, err)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("error reveals the PIN: %v", err)
		}
	}
}

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	for _, tc := range []struct{ state, xdg, want string }{
		{"/var/lib/simgate", "/x", "/var/lib/simgate"},
		{"/var/lib/simgate:/var/lib/other", "", "/var/lib/simgate"},
		{"", "/x", "/x/simgate"},
		{"", "", "/home/u/.local/state/simgate"},
	} {
		t.Setenv("STATE_DIRECTORY", tc.state)
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		c, err := Load(flags(t, "--simulate", "1"))
		if err != nil {
			t.Fatal(err)
		}
		if c.StateDir != tc.want {
			t.Errorf("STATE_DIRECTORY=%q XDG_STATE_HOME=%q: state dir %q, want %q", tc.state, tc.xdg, c.StateDir, tc.want)
		}
	}
	c, _ := Load(flags(t, "--simulate", "1", "--state-dir", "/flag"))
	if c.StateDir != "/flag" {
		t.Errorf("flag: %q", c.StateDir)
	}
}

func TestNumbersAndCountries(t *testing.T) {
	body := minimal + `
otp:
  numbers:
    blocked_types: [premium_rate, pagr]
    allowed_regions: [dk, SE]
policy:
  countries: {dk: 50}
`
	_, err := Load(flags(t, "--config", writeFile(t, body)))
	if err == nil || !strings.Contains(err.Error(), "pagr") {
		t.Fatalf("misspelt number type: %v", err)
	}
	c, err := Load(flags(t, "--config", writeFile(t, strings.Replace(body, "pagr", "pager", 1))))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.OTP.Numbers.AllowedRegions, []string{"DK", "SE"}) || c.Policy.Countries["DK"] != 50 {
		t.Errorf("regions not upper-cased: %v %v", c.OTP.Numbers.AllowedRegions, c.Policy.Countries)
	}
}

// TestNATSAuth checks that Load applies the rules of natsauth (tested
// there) to the file and the environment, naming keys, and that secrets
// from the environment are never printed.
func TestNATSAuth(t *testing.T) {
	const pw, tok = "env-pa55word-XYZ", "env-t0ken-XYZ"
	ext := "nats:\n  url: nats://nats.example:4222\n"
	tests := []struct {
		name string
		body string
		env  map[string]string
		want string // empty: valid
	}{
		{"user and password env", ext + "  user: simgate\n", map[string]string{EnvNATSPassword: pw}, ""},
		{"token env", ext, map[string]string{EnvNATSToken: tok}, ""},
		{"password file and env", ext + "  user: u\n  password_file: /run/pw\n", map[string]string{EnvNATSPassword: pw},
			"nats.password_file and SIMGATE_NATS_PASSWORD: set one"},
		{"env secret for embedded", "", map[string]string{EnvNATSToken: tok},
			"SIMGATE_NATS_TOKEN: only for an external server (nats.url); the embedded server takes nats.embedded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(flags(t, "--config", writeFile(t, minimal+tc.body), "--state-dir", t.TempDir()))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
			if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, pw) || strings.Contains(s, tok) {
				t.Errorf("printed config contains a secret: %s", s)
			}
		})
	}
}

func TestNATSSecretsFromEnvironmentOnly(t *testing.T) {
	t.Setenv(EnvNATSPassword, "from-env")
	t.Setenv("SIMGATE_NATS_URL", "nats://n:4222")
	t.Setenv("SIMGATE_NATS_USER", "simgate")
	t.Setenv("SIMGATE_NATS_TLS_CA_FILE", "/etc/simgate/ca.pem")
	c, err := Load(flags(t, "--config", writeFile(t, minimal)))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.Password != "from-env" || c.NATS.User != "simgate" || c.NATS.TLS.CAFile != "/etc/simgate/ca.pem" {
		t.Errorf("nats %+v", c.NATS)
	}
	// A secret in the file is an unknown key, not a setting.
	_, err = Load(flags(t, "--config", writeFile(t, minimal+"nats:\n  password: s3cret-in-file\n")))
	if err == nil || !strings.Contains(err.Error(), "nats.password") || strings.Contains(err.Error(), "s3cret-in-file") {
		t.Errorf("error %v", err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	Flags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if strings.Contains(f.Name, "password") || strings.Contains(f.Name, "token") {
			t.Errorf("flag --%s carries a secret", f.Name)
		}
	})
}

// TestOTPJobRules: codes of 6 digits, no plain text, 3 SMS and a 10-minute
// ttl by default; each can be set from the file or the environment, and
// reaches the job limits.
func TestOTPJobRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		env    map[string]string
		want   otp.Limits
		errors []string
	}{
		{name: "defaults", body: minimal,
			want: otp.Limits{DefaultTTL: 10 * time.Minute, MaxTTL: 10 * time.Minute, MinCodeDigits: 6, MaxParts: 3}},
		{name: "file", body: minimal + "otp: {min_code_digits: 4, allow_text: true, max_parts: 5, max_ttl: 15m}\n",
			want: otp.Limits{DefaultTTL: 10 * time.Minute, MaxTTL: 15 * time.Minute, MinCodeDigits: 4, AllowText: true, MaxParts: 5}},
		{name: "environment", body: minimal,
			env:  map[string]string{"SIMGATE_OTP_MIN_CODE_DIGITS": "8", "SIMGATE_OTP_ALLOW_TEXT": "true", "SIMGATE_OTP_MAX_PARTS": "1"},
			want: otp.Limits{DefaultTTL: 10 * time.Minute, MaxTTL: 10 * time.Minute, MinCodeDigits: 8, AllowText: true, MaxParts: 1}},
		{name: "bounds", body: minimal + "otp: {min_code_digits: 11, max_parts: 256}\n",
			errors: []string{"otp.max_parts 256: want 1 to 255", "otp.min_code_digits 11: want 4 to 10"}},
		{name: "lower bounds", body: minimal + "otp: {min_code_digits: 3, max_parts: 0}\n",
			errors: []string{"otp.max_parts 0: want 1 to 255", "otp.min_code_digits 3: want 4 to 10"}},
		{name: "a default ttl above the new maximum", body: minimal + "otp: {default_ttl: 15m}\n",
			errors: []string{"otp.default_ttl 15m0s and otp.max_ttl 10m0s: want 0 < default_ttl <= max_ttl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(flags(t, "--config", writeFile(t, tc.body)))
			if tc.errors != nil {
				if err == nil || err.Error() != strings.Join(tc.errors, "\n") {
					t.Fatalf("error %v, want %q", err, tc.errors)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.OTP.Limits(otp.NumberPolicy{}); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("limits %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPolicyKeyFile(t *testing.T) {
	for _, tc := range []struct {
		name, url, stateDir, keyFile string
		want, err                    string
	}{
		{name: "embedded: in the state directory", stateDir: "/var/lib/simgate", want: "/var/lib/simgate/policy_hash_key"},
		{name: "external: in the state directory too", url: "nats://nats1:4222", stateDir: "/var/lib/simgate", want: "/var/lib/simgate/policy_hash_key"},
		{name: "configured file", stateDir: "/var/lib/simgate", keyFile: "/etc/simgate/key", want: "/etc/simgate/key"},
		{name: "external, configured file, no state directory", url: "nats://nats1:4222", keyFile: "/etc/simgate/key", want: "/etc/simgate/key"},
		{name: "external, no state directory", url: "nats://nats1:4222", err: "state_dir is required for the policy hash key file (or set policy.hash_key_file)"},
		{name: "embedded, no state directory", err: "state_dir is required for the embedded NATS server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Simulate = 1
			c.NATS.URL, c.StateDir, c.Policy.HashKeyFile = tc.url, tc.stateDir, tc.keyFile
			err := c.Validate()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("Validate: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := c.PolicyKeyFile(); got != tc.want {
				t.Errorf("PolicyKeyFile = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1GiB", 1 << 30, true}, {"256MiB", 256 << 20, true}, {"512KiB", 512 << 10, true},
		{"2GB", 2e9, true}, {"10MB", 1e7, true}, {"5kB", 5000, true}, {"100B", 100, true},
		{"4096", 4096, true}, {" 8 MiB ", 8 << 20, true},
		{"", 0, false}, {"big", 0, false}, {"-1MiB", 0, false}, {"1.5GiB", 0, false}, {"9999999999GiB", 0, false},
	} {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if back, err := parseByteSize(got.String()); err != nil || back != got {
				t.Errorf("%d: String %q reads back as %d (%v)", got, got.String(), back, err)
			}
		}
	}
	_, err := Load(flags(t, "--config", writeFile(t, minimal+"nats: {limits: {jobs_bytes: lots, events_per_job: 2}}\n")))
	for _, want := range []string{`nats.limits.jobs_bytes "lots": want a size such as 512KiB, 256MiB or 1GiB`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	_, err = Load(flags(t, "--config", writeFile(t, minimal+"nats: {limits: {jobs_bytes: 1KiB, events_per_job: 2}}\n")))
	for _, want := range []string{"nats.limits.jobs_bytes 1KiB: want at least 1MiB", "nats.limits.events_per_job 2: want at least 8 (otp.max_attempts + 3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
