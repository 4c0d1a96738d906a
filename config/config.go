// Package config loads simgate's configuration from a YAML file, SIMGATE_*
// environment variables and command-line flags, in that order of increasing
// precedence, over built-in defaults.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/simgate/simgate/hashkey"
	"github.com/simgate/simgate/otp"
	"github.com/simgate/simgate/policy"
	"github.com/simgate/simgate/verify"
)

// Limits returns the policy's limits with the hash key key.
func (p Policy) Limits(key []byte) policy.Config {
	windows := make([]policy.Window, len(p.Number))
	for i, w := range p.Number {
		windows[i] = policy.Window{Limit: w.Limit, Period: w.Period}
	}
	return policy.Config{
		Key:             key,
		Cooldown:        p.Cooldown,
		Number:          windows,
		DuplicateWindow: p.DuplicateWindow,
		PrefixDigits:    p.Prefix.Digits,
		PrefixDistinct:  p.Prefix.Distinct,
		PrefixWindow:    p.Prefix.Window,
		PrefixBlock:     p.Prefix.Block,
		CountryPerHour:  p.CountryPerHour,
		Countries:       p.Countries,
		GlobalPerMinute: p.GlobalPerMinute,
	}
}

// EnvPrefix prefixes the environment variables: nats.url is SIMGATE_NATS_URL.
const EnvPrefix = "SIMGATE"

// Config is the whole configuration of a daemon.
type Config struct {
	// Node names this daemon in events and logs; the host name when empty.
	Node string `mapstructure:"node"`
	// StateDir keeps the embedded server's JetStream files and, unless
	// Policy.HashKeyFile names another file, the policy hash key (see
	// PolicyKeyFile), with an external server too. Empty means
	// $STATE_DIRECTORY (set by systemd's StateDirectory=), else
	// $XDG_STATE_HOME/simgate, else ~/.local/state/simgate.
	StateDir string `mapstructure:"state_dir"`
	// Simulate, when above zero, replaces the modems with that many
	// simulated modems on pseudo-terminals: no real SMS is sent.
	Simulate int     `mapstructure:"simulate"`
	Log      Log     `mapstructure:"log"`
	NATS     NATS    `mapstructure:"nats"`
	Metrics  Metrics `mapstructure:"metrics"`
	OTP      OTP     `mapstructure:"otp"`
	Policy   Policy  `mapstructure:"policy"`
	Inbound  Inbound `mapstructure:"inbound"`
	Modems   []Modem `mapstructure:"modems"`
}

// Inbound configures what becomes of the messages the modems receive.
type Inbound struct {
	// Sender is how a received message's sender is published: "masked"
	// (+45******21) or "full".
	Sender string `mapstructure:"sender"`
	// ReassemblyTimeout is how long the parts of a concatenated message
	// are waited for; those that came are then published as they are.
	ReassemblyTimeout time.Duration `mapstructure:"reassembly_timeout"`
	// MaxAge is how long SMS_IN keeps received messages.
	MaxAge time.Duration `mapstructure:"max_age"`
	// OptOut puts a number that replies one of StopWords on the opt-out
	// list (jobs to it are refused, opted_out) and takes it off when it
	// replies one of StartWords. Off where the law or the operator says
	// codes must still go.
	OptOut     bool     `mapstructure:"opt_out"`
	StopWords  []string `mapstructure:"stop_words"`
	StartWords []string `mapstructure:"start_words"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// NATSLimits bound the streams and buckets simgate keeps in JetStream.
type NATSLimits struct {
	// JobsBytes bounds the job queue (OTP_JOBS); a full queue refuses
	// new jobs (the publisher's PubAck is an error; otp.request answers
	// error).
	JobsBytes ByteSize `mapstructure:"jobs_bytes"`
	// EventsBytes bounds the events stream (OTP_EVENTS); the oldest
	// events go first.
	EventsBytes ByteSize `mapstructure:"events_bytes"`
	// EventsPerJob bounds the events kept per job id; the oldest go
	// first.
	EventsPerJob int64 `mapstructure:"events_per_job"`
	// PolicyBytes bounds the policy bucket (simgate_policy).
	PolicyBytes ByteSize `mapstructure:"policy_bytes"`
	// JournalBytes bounds the delivery journal (simgate_delivery).
	JournalBytes ByteSize `mapstructure:"journal_bytes"`
	// InboundBytes bounds the received messages (SMS_IN); the oldest go
	// first.
	InboundBytes ByteSize `mapstructure:"inbound_bytes"`
}

// ByteSize is a size in bytes, written as a number of bytes or with a unit:
// 512KiB, 256MiB, 1GiB (or kB, MB, GB for powers of ten).
type ByteSize int64

// String writes b in the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if b != 0 && b%ByteSize(u.n) == 0 {
			return fmt.Sprintf("%d%s", b/ByteSize(u.n), u.name)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

var byteUnits = []struct {
	name string
	n    int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1}}

// errByteSize is a string that is not a size.
var errByteSize = errors.New("want a size such as 512KiB, 256MiB or 1GiB")

// parseByteSize parses a size written as ByteSize documents.
func parseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.name); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 || n > math.MaxInt64/u.n {
				return 0, errByteSize
			}
			return ByteSize(n * u.n), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errByteSize
	}
	return ByteSize(n), nil
}

// stringToByteSize parses a string for a ByteSize.
func stringToByteSize(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[ByteSize]() {
		return data, nil
	}
	return parseByteSize(data.(string))
}

// NATS configures the connection to NATS.
type NATS struct {
	// URL of an external server or cluster; empty starts an embedded server.
	URL string `mapstructure:"url"`
	// Listen is the embedded server's client address.
	Listen string `mapstructure:"listen"`
	// Replicas of the streams in a JetStream cluster.
	Replicas int `mapstructure:"replicas"`
	// AckWait is how long a job may be held without a sign of progress
	// before another worker gets it.
	AckWait time.Duration `mapstructure:"ack_wait"`
	// EventsMaxAge is how long events are kept in the events stream.
	EventsMaxAge time.Duration `mapstructure:"events_max_age"`
	// Limits bound what simgate keeps in JetStream.
	Limits NATSLimits `mapstructure:"limits"`

	// Authentication to the external server (nats.url): at most one of a
	// password (with User), a token, an nkey seed and a creds file.
	// Secrets are read from files, or Password and Token from the
	// environment variables SIMGATE_NATS_PASSWORD and SIMGATE_NATS_TOKEN
	// (never from flags or the configuration file).
	User         string `mapstructure:"user"`
	PasswordFile string `mapstructure:"password_file"`
	TokenFile    string `mapstructure:"token_file"`
	NkeySeedFile string `mapstructure:"nkey_seed_file"`
	CredsFile    string `mapstructure:"creds_file"`
	// Password and Token hold SIMGATE_NATS_PASSWORD and SIMGATE_NATS_TOKEN
	// (set by Load). They print as [redacted].
	Password Secret `mapstructure:"-"`
	Token    Secret `mapstructure:"-"`
	// TLS to the external server.
	TLS NATSTLS `mapstructure:"tls"`
	// Embedded secures the embedded server beyond the role credentials it
	// generates in the state directory.
	Embedded NATSEmbedded `mapstructure:"embedded"`
}

// NATSTLS secures the connection to an external NATS server.
type NATSTLS struct {
	// CAFile verifies the server; CertFile and KeyFile are a client
	// certificate (both or neither).
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `mapstructure:"server_name"`
}

// NATSEmbedded secures the embedded server. Its clients always
// authenticate: the daemon and publishers with the nkey seeds generated
// in <state_dir>/nats/ (daemon.nk, publisher.nk).
type NATSEmbedded struct {
	// User with PasswordFile is an extra publisher login by password.
	User         string `mapstructure:"user"`
	PasswordFile string `mapstructure:"password_file"`
	// TokenFile is no longer supported (validation says so).
	TokenFile string `mapstructure:"token_file"`
	// TLS on the listener; required on a non-loopback address.
	TLS NATSEmbeddedTLS `mapstructure:"tls"`
	// Sync is when JetStream writes reach the disk: "always" (every
	// write is fsynced before it is acknowledged) or an interval such as
	// "2m" (nats-server's default: an acknowledged write can be lost to a
	// power cut within it).
	Sync string `mapstructure:"sync"`
	// EncryptionKeyFile, when set, names a file (mode 0600) whose content
	// encrypts the JetStream store at rest.
	EncryptionKeyFile string `mapstructure:"encryption_key_file"`
}

// SyncInterval returns Sync as an interval: 0 for "always".
func (e NATSEmbedded) SyncInterval() (time.Duration, error) {
	if e.Sync == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(e.Sync)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("nats.embedded.sync %q: want always or an interval of at least 1s, such as 2m", e.Sync)
	}
	return d, nil
}

// NATSEmbeddedTLS is the embedded server's TLS certificate and key.
type NATSEmbeddedTLS struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// Secret is a value that must not be printed.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return s.String() }

// Environment variables holding NATS secrets, read directly by Load and
// by Client.
const (
	EnvNATSPassword = EnvPrefix + "_NATS_PASSWORD"
	EnvNATSToken    = EnvPrefix + "_NATS_TOKEN"
)

// EnvNATSURL is the variable that sets nats.url (EnvPrefix, then the key
// with _ for .); Client reads it too.
const EnvNATSURL = EnvPrefix + "_NATS_URL"

// Metrics configures the HTTP endpoint for /metrics, /healthz and /readyz.
type Metrics struct {
	Listen string `mapstructure:"listen"`
}

// OTP configures job handling.
type OTP struct {
	DefaultTTL time.Duration `mapstructure:"default_ttl"`
	MaxTTL     time.Duration `mapstructure:"max_ttl"`
	// Region is the ISO region used for numbers without a country code.
	Region string `mapstructure:"region"`
	// Brand is {{.Brand}} in templates.
	Brand string `mapstructure:"brand"`
	// Locale is the default locale of templates.
	Locale string `mapstructure:"locale"`
	// Templates maps a template name to a map from locale to text.
	Templates map[string]map[string]string `mapstructure:"templates"`
	// MaxAttempts bounds how often a job is handed to a modem.
	MaxAttempts int `mapstructure:"max_attempts"`
	// RetryDelay is the first delay before a failed job is tried again.
	RetryDelay time.Duration `mapstructure:"retry_delay"`
	// DeliveryTimeout is how long a sent message waits for its final
	// status report before it is delivery_unknown.
	DeliveryTimeout time.Duration `mapstructure:"delivery_timeout"`
	// Numbers restricts which numbers may receive OTPs.
	Numbers Numbers `mapstructure:"numbers"`
	// MinCodeDigits is the least number of digits of a code (4 to 10;
	// NIST SP 800-63B asks for 6).
	MinCodeDigits int `mapstructure:"min_code_digits"`
	// AllowText accepts jobs with a plain text instead of a code.
	AllowText bool `mapstructure:"allow_text"`
	// MaxParts is the most SMS one message may take; each counts as a
	// send in the rate limits.
	MaxParts int `mapstructure:"max_parts"`
	// Verify configures managed codes (otp.verify, otp.check).
	Verify Verify `mapstructure:"verify"`
}

// Verify configures managed codes: verifications whose code simgate
// makes and checks.
type Verify struct {
	// MaxChecks is how many wrong codes lock a verification.
	MaxChecks int `mapstructure:"max_checks"`
	// ChecksPerMinute bounds the checks of one number's verifications.
	ChecksPerMinute int `mapstructure:"checks_per_minute"`
}

// Limits returns the bounds a job is checked against, with the number
// policy n (see Numbers.Policy).
func (o OTP) Limits(n otp.NumberPolicy) otp.Limits {
	return otp.Limits{DefaultTTL: o.DefaultTTL, MaxTTL: o.MaxTTL, Region: o.Region, Numbers: n,
		MinCodeDigits: o.MinCodeDigits, AllowText: o.AllowText, MaxParts: o.MaxParts}
}

// Numbers restricts which valid numbers may receive OTPs.
type Numbers struct {
	// BlockedTypes are libphonenumber number types refused, in snake case
	// (premium_rate, shared_cost, toll_free, uan, pager, voicemail, voip,
	// personal_number, fixed_line, mobile, fixed_line_or_mobile, unknown).
	BlockedTypes []string `mapstructure:"blocked_types"`
	// AllowedRegions, when not empty, are the only ISO regions served;
	// BlockedRegions are refused.
	AllowedRegions []string `mapstructure:"allowed_regions"`
	BlockedRegions []string `mapstructure:"blocked_regions"`
}

// Policy returns the number policy these settings describe.
func (n Numbers) Policy() otp.NumberPolicy {
	return otp.NumberPolicy{BlockedTypes: n.BlockedTypes, AllowedRegions: n.AllowedRegions, BlockedRegions: n.BlockedRegions}
}

// Policy holds the duplicate and rate limits. They hold across every daemon
// sharing a NATS JetStream domain.
type Policy struct {
	// HashKeyFile holds the key for hashing numbers in the shared store
	// (its text, trimmed, at least 16 bytes; mode 0600). Empty: the file
	// policy_hash_key in StateDir, created with a random key when missing.
	// Every daemon of a cluster needs the same key.
	HashKeyFile string `mapstructure:"hash_key_file"`
	// Cooldown is the least time between two sends to one number.
	Cooldown time.Duration `mapstructure:"cooldown"`
	// Number are sliding windows per number.
	Number []Window `mapstructure:"number"`
	// DuplicateWindow: the same code to the same number within it is sent
	// once.
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
	Prefix          Prefix        `mapstructure:"prefix"`
	// CountryPerHour caps sends per region and hour (0: no cap);
	// Countries overrides it per ISO region.
	CountryPerHour int            `mapstructure:"country_per_hour"`
	Countries      map[string]int `mapstructure:"countries"`
	// GlobalPerMinute caps all sends per minute (0: no cap).
	GlobalPerMinute int `mapstructure:"global_per_minute"`
}

// PolicyKeyFile returns the file holding the policy hash key:
// policy.hash_key_file, else policy_hash_key in the state directory.
func (c Config) PolicyKeyFile() string {
	if c.Policy.HashKeyFile != "" {
		return c.Policy.HashKeyFile
	}
	if c.StateDir == "" {
		return ""
	}
	return filepath.Join(c.StateDir, hashkey.FileName)
}

// Window is a sliding-window limit.
type Window struct {
	Limit  int           `mapstructure:"limit"`
	Period time.Duration `mapstructure:"period"`
}

// Prefix limits distinct numbers per number block against SMS pumping.
type Prefix struct {
	// Digits dropped from the end of an E.164 number to form its block.
	Digits int `mapstructure:"digits"`
	// Distinct numbers of one block allowed per Window (0: no limit);
	// one more blocks the block for Block.
	Distinct int           `mapstructure:"distinct"`
	Window   time.Duration `mapstructure:"window"`
	Block    time.Duration `mapstructure:"block"`
}

// Modem configures one modem.
type Modem struct {
	Name   string `mapstructure:"name"`
	Device string `mapstructure:"device"`
	Baud   int    `mapstructure:"baud"`
	// PINFile and PINEnv name where the SIM PIN is read from (a file, or an
	// environment variable); the PIN itself never appears in the file.
	PINFile        string        `mapstructure:"pin_file"`
	PINEnv         string        `mapstructure:"pin_env"`
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	SendTimeout    time.Duration `mapstructure:"send_timeout"`
	// HealthInterval is how often SIM, registration and signal are checked.
	HealthInterval time.Duration `mapstructure:"health_interval"`
	// Trace logs the AT conversation with the modem at debug level,
	// redacted: PINs and numbers masked, PDUs and texts withheld.
	Trace bool `mapstructure:"trace"`
	// USB finds the modem by USB identity when device is empty.
	USB USB `mapstructure:"usb"`
	// PerMinute and PerDay cap this modem's sends (SIM plans cap them);
	// 0 is no cap.
	PerMinute int `mapstructure:"per_minute"`
	PerDay    int `mapstructure:"per_day"`
	// Routes are the destinations this modem is preferred for: ISO regions
	// ("DK") and E.164 prefixes ("+4530"). A job for one of them taken by
	// another modem of the daemon is handed to this one when it is ready;
	// otherwise any modem sends it.
	Routes []string `mapstructure:"routes"`
	// Balance, when its USSD code is set, asks the network for the SIM's
	// prepaid balance on an interval.
	Balance Balance `mapstructure:"balance"`
}

// Balance configures a SIM's balance query.
type Balance struct {
	// USSD is the code that asks for the balance ("*100#").
	USSD string `mapstructure:"ussd"`
	// Interval is how often; 6 h when zero.
	Interval time.Duration `mapstructure:"interval"`
	// Pattern finds the balance in the answer: its first group, or the
	// whole match; a comma is a decimal point. Default: the first number.
	Pattern string `mapstructure:"pattern"`
}

// DefaultBalancePattern finds the first number of a balance answer.
const DefaultBalancePattern = `(-?[0-9]+(?:[.,][0-9]+)?)`

// Regexp compiles the balance pattern (DefaultBalancePattern when empty).
func (b Balance) Regexp() (*regexp.Regexp, error) {
	return regexp.Compile(cmp.Or(b.Pattern, DefaultBalancePattern))
}

// USB matches a modem's serial port by USB identity (see modem.USBMatch).
type USB struct {
	VID    string `mapstructure:"vid"`
	PID    string `mapstructure:"pid"`
	Serial string `mapstructure:"serial"`
	Port   int    `mapstructure:"port"`
}

// PIN returns the modem's SIM PIN from its file or environment variable, or
// "" when none is configured.
func (m Modem) PIN() (string, error) {
	switch {
	case m.PINFile != "":
		b, err := os.ReadFile(m.PINFile)
		if err != nil {
			return "", fmt.Errorf("modem %s: read PIN: %w", m.Name, err)
		}
		return strings.TrimSpace(string(b)), nil
	case m.PINEnv != "":
		pin, ok := os.LookupEnv(m.PINEnv)
		if !ok {
			return "", fmt.Errorf("modem %s: PIN variable %s is not set", m.Name, m.PINEnv)
		}
		return strings.TrimSpace(pin), nil
	}
	return "", nil
}

// defaults holds every scalar key with its default: viper reads environment
// variables only for keys it knows.
var defaults = map[string]any{
	"node":                         "",
	"state_dir":                    "",
	"simulate":                     0,
	"log.level":                    "info",
	"log.format":                   "text",
	"nats.url":                     "",
	"nats.listen":                  "127.0.0.1:4222",
	"nats.replicas":                1,
	"nats.ack_wait":                "6s",
	"nats.events_max_age":          "24h",
	"nats.limits.jobs_bytes":       "256MiB",
	"nats.limits.events_bytes":     "1GiB",
	"nats.limits.events_per_job":   32,
	"nats.limits.policy_bytes":     "1GiB",
	"nats.limits.journal_bytes":    "256MiB",
	"nats.limits.inbound_bytes":    "256MiB",
	"inbound.sender":               "masked",
	"inbound.reassembly_timeout":   "10m",
	"inbound.max_age":              "168h",
	"inbound.opt_out":              true,
	"inbound.stop_words":           []string{"STOP", "STOPP", "UNSUBSCRIBE"},
	"inbound.start_words":          []string{"START"},
	"metrics.listen":               "127.0.0.1:9464",
	"otp.default_ttl":              "10m",
	"otp.max_ttl":                  "10m",
	"otp.region":                   "",
	"otp.brand":                    "simgate",
	"otp.locale":                   "en",
	"otp.max_attempts":             5,
	"otp.retry_delay":              "2s",
	"otp.delivery_timeout":         "90m",
	"otp.min_code_digits":          otp.DefaultMinCodeDigits,
	"otp.allow_text":               false,
	"otp.max_parts":                otp.DefaultMaxParts,
	"otp.verify.max_checks":        verify.DefaultMaxChecks,
	"otp.verify.checks_per_minute": verify.DefaultChecksPerMinute,

	"otp.numbers.blocked_types":   otp.DefaultBlockedTypes(),
	"otp.numbers.allowed_regions": []string{},
	"otp.numbers.blocked_regions": []string{},

	"policy.hash_key_file": "",
	"policy.cooldown":      "60s",
	"policy.number": []map[string]any{
		{"limit": 5, "period": "10m"},
		{"limit": 10, "period": "1h"},
		{"limit": 20, "period": "24h"},
	},
	"policy.duplicate_window":  "10m",
	"policy.prefix.digits":     3,
	"policy.prefix.distinct":   15,
	"policy.prefix.window":     "5m",
	"policy.prefix.block":      "1h",
	"policy.country_per_hour":  1000,
	"policy.countries":         map[string]any{},
	"policy.global_per_minute": 600,

	"nats.user":                         "",
	"nats.password_file":                "",
	"nats.token_file":                   "",
	"nats.nkey_seed_file":               "",
	"nats.creds_file":                   "",
	"nats.tls.ca_file":                  "",
	"nats.tls.cert_file":                "",
	"nats.tls.key_file":                 "",
	"nats.tls.server_name":              "",
	"nats.embedded.user":                "",
	"nats.embedded.password_file":       "",
	"nats.embedded.token_file":          "",
	"nats.embedded.tls.cert_file":       "",
	"nats.embedded.tls.key_file":        "",
	"nats.embedded.sync":                "always",
	"nats.embedded.encryption_key_file": "",
}

// Flags defines the command-line flags that override configuration keys.
// Bind them with Load.
func Flags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (YAML)")
	fs.String("nats-url", "", "external NATS server URL (nats.url); empty starts an embedded server")
	fs.String("nats-listen", "", "embedded NATS server client address (nats.listen)")
	fs.String("state-dir", "", "state directory (state_dir)")
	fs.String("metrics-listen", "", "metrics, /healthz and /readyz address (metrics.listen)")
	fs.String("log-level", "", "log level: debug, info, warn, error (log.level)")
	fs.String("log-format", "", "log format: text or json (log.format)")
	fs.Int("simulate", 0, "use N simulated modems instead of the configured ones: no real SMS is sent")
}

var flagKeys = map[string]string{
	"nats-url":       "nats.url",
	"nats-listen":    "nats.listen",
	"state-dir":      "state_dir",
	"metrics-listen": "metrics.listen",
	"log-level":      "log.level",
	"log-format":     "log.format",
	"simulate":       "simulate",
}

// Default returns the built-in defaults, without reading a file, the
// environment or flags, and without validation (it configures no modem).
func Default() Config {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	var c Config
	if err := decodeInto(&c, v.AllSettings(), decodeHooks, nil); err != nil {
		panic("config defaults: " + err.Error())
	}
	return c
}

// Load reads the configuration: defaults, then the file named by the
// --config flag (if any), then SIMGATE_* variables, then flags that were
// set. fs may be nil.
//
// Every problem is reported at once, one per line, sorted: unknown keys
// ("nats.ulr: unknown key"), values that do not decode, and what Validate
// finds in the rest. A value that does not decode is judged as its default
// by Validate, so it is reported once. Only an unreadable file stops
// Load early. On error the Config must not be used.
func Load(fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
			v.SetConfigFile(f.Value.String())
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				return Config{}, fmt.Errorf("read %s: %w", f.Value.String(), err)
			}
		}
		for name, key := range flagKeys {
			if f := fs.Lookup(name); f != nil && f.Changed {
				v.Set(key, f.Value.String())
			}
		}
	}
	c, problems, failed, err := decode(v)
	if err != nil {
		return Config{}, err
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.StateDir == "" {
		c.StateDir = defaultStateDir()
	}
	c.NATS.Password = Secret(os.Getenv(EnvNATSPassword))
	c.NATS.Token = Secret(os.Getenv(EnvNATSToken))
	c.normalise()
	for _, p := range lines(c.Validate()) {
		// A value that did not decode is reported as such, not again as
		// the empty value that stands in for it.
		if !slices.ContainsFunc(failed, func(key string) bool { return about(p, key) }) {
			problems = append(problems, p)
		}
	}
	if len(problems) == 0 {
		return c, nil
	}
	slices.Sort(problems)
	problems = slices.Compact(problems)
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = errors.New(p)
	}
	return Config{}, errors.Join(errs...)
}

// decode turns v's settings into a Config and lists the keys it does not
// know and the values that do not decode, and returns the keys of the
// latter as failed. Such a value is replaced by its default (or left empty
// when it has none) in the returned Config. The error is for a failure of
// the decoder itself, not of the settings.
func decode(v *viper.Viper) (c Config, problems, failed []string, err error) {
	settings := v.AllSettings()

	// Unknown keys: decode with every leaf value zeroed, so that no type
	// error hides them (mapstructure records unused keys only on success).
	var md mapstructure.Metadata
	if err := decodeInto(&Config{}, settings, zeroLeaves, &md); err != nil {
		return Config{}, nil, nil, fmt.Errorf("configuration: %w", err)
	}
	for _, k := range md.Unused {
		problems = append(problems, k+": unknown key")
	}

	err = decodeInto(&c, settings, decodeHooks, nil)
	if err == nil {
		return c, problems, nil, nil
	}
	dv := viper.New()
	for k, d := range defaults {
		dv.SetDefault(k, d)
	}
	var fixed any = settings
	for _, e := range leaves(err) {
		de, ok := e.(*mapstructure.DecodeError)
		if !ok {
			problems = append(problems, e.Error())
			continue
		}
		problems = append(problems, decodeProblem(de, lookup(settings, strings.Split(de.Name(), "."))))
		failed = append(failed, de.Name())
		var d any
		if !strings.ContainsAny(de.Name(), "[]") {
			d = dv.Get(de.Name())
		}
		fixed = replace(fixed, strings.Split(de.Name(), "."), d)
	}
	// What still fails to decode is reported above; the rest is kept.
	c = Config{}
	if m, ok := fixed.(map[string]any); ok {
		_ = decodeInto(&c, m, decodeHooks, nil)
	}
	return c, problems, failed, nil
}

// about reports whether the problem p is about key: whether it starts
// with key followed by a space, a colon, a dot or a bracket.
func about(p, key string) bool {
	rest, ok := strings.CutPrefix(p, key)
	return ok && rest != "" && strings.ContainsRune(" :.[", rune(rest[0]))
}

// decodeInto decodes settings into out the way viper's Unmarshal does.
func decodeInto(out *Config, settings map[string]any, hook mapstructure.DecodeHookFunc, md *mapstructure.Metadata) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       hook,
		WeaklyTypedInput: true,
		Metadata:         md,
		Result:           out,
	})
	if err != nil {
		return err
	}
	return d.Decode(settings)
}

// decodeHooks turn strings into durations and comma-separated lists.
var decodeHooks = mapstructure.ComposeDecodeHookFunc(
	stringToDuration,
	stringToByteSize,
	mapstructure.StringToSliceHookFunc(","),
)

// errDuration is a string that is not a duration.
var errDuration = errors.New("want a duration such as 30s, 10m or 1h30m")

// stringToDuration parses a string for a time.Duration.
func stringToDuration(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	d, err := time.ParseDuration(data.(string))
	if err != nil {
		return nil, errDuration
	}
	return d, nil
}

// decodeProblem describes a value v that did not decode, naming its key;
// v is shown when it is a single value.
func decodeProblem(de *mapstructure.DecodeError, v any) string {
	want := de.Unwrap().Error()
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.Is(de, errDuration):
		want = errDuration.Error()
	case errors.As(de, &pe):
		want = "want " + describeType(pe.Expected.Type())
	case errors.As(de, &ue):
		want = "want " + describeType(ue.Expected.Type())
	case strings.HasPrefix(want, "expected a map"):
		want = "want a mapping (key: value)"
	}
	switch v.(type) {
	case map[string]any:
		return fmt.Sprintf("%s: %s, got a mapping", de.Name(), want)
	case []any, []map[string]any:
		return fmt.Sprintf("%s: %s, got a list", de.Name(), want)
	case string:
		return fmt.Sprintf("%s %q: %s", de.Name(), v, want)
	case nil:
		return fmt.Sprintf("%s: %s", de.Name(), want)
	}
	return fmt.Sprintf("%s %v: %s", de.Name(), v, want)
}

// describeType names a destination type for a message.
func describeType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 30s, 10m or 1h30m"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
		return "a mapping (key: value)"
	}
	return t.String()
}

// zeroLeaves replaces every value that is not a structure, map or list by
// the zero value of its destination, so that decoding only follows keys.
func zeroLeaves(from, to reflect.Value) (any, error) {
	switch to.Kind() {
	case reflect.Struct, reflect.Map:
		if from.Kind() == reflect.Map {
			return from.Interface(), nil
		}
	case reflect.Slice, reflect.Array:
		if k := from.Kind(); k == reflect.Slice || k == reflect.Array || k == reflect.Map {
			return from.Interface(), nil
		}
	}
	return reflect.Zero(to.Type()).Interface(), nil
}

// replace returns settings with the value at path (keys, where a key may
// end in [i] or [k] for a list element or a map entry) set to v. Maps and
// lists on the way are copied, settings itself is not changed.
func replace(settings any, path []string, v any) any {
	if len(path) == 0 {
		if f, ok := v.(replacer); ok {
			f(settings)
			return settings
		}
		return v
	}
	key, rest := path[0], path[1:]
	var subs []string // [i] and [k] suffixes of key
	if i := strings.IndexByte(key, '['); i >= 0 {
		subs = strings.Split(strings.TrimSuffix(key[i+1:], "]"), "][")
		key = key[:i]
	}
	return replaceIn(settings, key, subs, rest, v)
}

// lookup returns the value at path in settings (see replace), or nil.
func lookup(settings any, path []string) any {
	var found any
	replace(settings, path, replacer(func(v any) { found = v }))
	return found
}

// replacer is a value for replace that is not stored: replace calls it
// with the value it replaces.
type replacer func(old any)

func replaceIn(node any, key string, subs, rest []string, v any) any {
	inner := func(child any) any {
		if len(subs) > 0 {
			return replaceIn(child, subs[0], subs[1:], rest, v)
		}
		return replace(child, rest, v)
	}
	switch n := node.(type) {
	case map[string]any:
		m := maps.Clone(n)
		m[key] = inner(n[key])
		return m
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(n) {
			return node
		}
		s := slices.Clone(n)
		s[i] = inner(n[i])
		return s
	case []map[string]any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(n) {
			return node
		}
		s := make([]any, len(n))
		for j := range n {
			s[j] = n[j]
		}
		s[i] = inner(n[i])
		return s
	}
	return node
}

// leaves returns the errors joined or wrapped in err, down to those that
// name a key.
func leaves(err error) []error {
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		return []error{e}
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range e.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		return leaves(e.Unwrap())
	}
	return []error{err}
}

// lines returns the lines of err's message; none for nil.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// normalise upper-cases region codes (viper lower-cases map keys).
func (c *Config) normalise() {
	up := func(s []string) []string {
		for i := range s {
			s[i] = strings.ToUpper(s[i])
		}
		return s
	}
	up(c.OTP.Numbers.AllowedRegions)
	up(c.OTP.Numbers.BlockedRegions)
	if len(c.Policy.Countries) > 0 {
		m := make(map[string]int, len(c.Policy.Countries))
		for k, v := range c.Policy.Countries {
			m[strings.ToUpper(k)] = v
		}
		c.Policy.Countries = m
	}
}

// defaultStateDir follows systemd's StateDirectory= and the XDG base
// directory specification.
func defaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		d, _, _ = strings.Cut(d, ":") // several directories are colon-separated
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "simgate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "simgate")
	}
	return ""
}

// Validate lists every problem of c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format %q: want text or json", c.Log.Format)
	}
	if c.NATS.URL == "" {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil && c.NATS.Listen != "-" {
			bad("nats.listen %q: %v", c.NATS.Listen, err)
		}
		if c.StateDir == "" {
			bad("state_dir is required for the embedded NATS server")
		}
	} else if c.StateDir == "" && c.Policy.HashKeyFile == "" {
		bad("state_dir is required for the policy hash key file (or set policy.hash_key_file)")
	}
	errs = append(errs, c.NATS.Auth().Validate(KeyNames()))
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas %d: want 1 to 5", c.NATS.Replicas)
	}
	if _, err := c.NATS.Embedded.SyncInterval(); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.AckWait < time.Second {
		bad("nats.ack_wait %s: want at least 1s", c.NATS.AckWait)
	}
	for _, l := range []struct {
		key string
		v   ByteSize
	}{{"jobs_bytes", c.NATS.Limits.JobsBytes}, {"events_bytes", c.NATS.Limits.EventsBytes},
		{"policy_bytes", c.NATS.Limits.PolicyBytes}, {"journal_bytes", c.NATS.Limits.JournalBytes},
		{"inbound_bytes", c.NATS.Limits.InboundBytes}} {
		if l.v < 1<<20 {
			bad("nats.limits.%s %s: want at least 1MiB", l.key, l.v)
		}
	}
	// A job has accepted, a retrying per failed attempt, its end and up
	// to two delivery events.
	if least := int64(max(c.OTP.MaxAttempts, 5)) + 3; c.NATS.Limits.EventsPerJob < least {
		bad("nats.limits.events_per_job %d: want at least %d (otp.max_attempts + 3: the events of one job)", c.NATS.Limits.EventsPerJob, least)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen %q: %v", c.Metrics.Listen, err)
		}
	}
	if c.OTP.DefaultTTL <= 0 || c.OTP.MaxTTL <= 0 || c.OTP.DefaultTTL > c.OTP.MaxTTL {
		bad("otp.default_ttl %s and otp.max_ttl %s: want 0 < default_ttl <= max_ttl", c.OTP.DefaultTTL, c.OTP.MaxTTL)
	}
	if c.OTP.MinCodeDigits < otp.MinCodeDigits || c.OTP.MinCodeDigits > otp.MaxCodeDigits {
		bad("otp.min_code_digits %d: want %d to %d", c.OTP.MinCodeDigits, otp.MinCodeDigits, otp.MaxCodeDigits)
	}
	if c.OTP.MaxParts < 1 || c.OTP.MaxParts > otp.MaxSMSParts {
		bad("otp.max_parts %d: want 1 to %d", c.OTP.MaxParts, otp.MaxSMSParts)
	}
	if c.Inbound.Sender != "masked" && c.Inbound.Sender != "full" {
		bad("inbound.sender %q: want masked or full", c.Inbound.Sender)
	}
	if c.Inbound.ReassemblyTimeout < time.Second || c.Inbound.ReassemblyTimeout > 24*time.Hour {
		bad("inbound.reassembly_timeout %s: want 1s to 24h", c.Inbound.ReassemblyTimeout)
	}
	if c.Inbound.MaxAge < time.Hour {
		bad("inbound.max_age %s: want at least 1h", c.Inbound.MaxAge)
	}
	if c.OTP.Verify.MaxChecks < 1 || c.OTP.Verify.MaxChecks > 20 {
		bad("otp.verify.max_checks %d: want 1 to 20", c.OTP.Verify.MaxChecks)
	}
	if c.OTP.Verify.ChecksPerMinute < 1 {
		bad("otp.verify.checks_per_minute %d: want at least 1", c.OTP.Verify.ChecksPerMinute)
	}
	if c.OTP.MaxAttempts < 1 {
		bad("otp.max_attempts %d: want at least 1", c.OTP.MaxAttempts)
	}
	if c.OTP.RetryDelay <= 0 {
		bad("otp.retry_delay %s: want a positive duration", c.OTP.RetryDelay)
	}
	if c.OTP.DeliveryTimeout <= 0 {
		bad("otp.delivery_timeout %s: want a positive duration", c.OTP.DeliveryTimeout)
	}
	// The policy's own rules, so that what passes here starts.
	if err := c.Policy.Limits(make([]byte, 16)).Validate(); err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			bad("policy: %s", e)
		}
	}
	if err := c.OTP.Numbers.Policy().Validate(); err != nil {
		bad("otp.numbers: %v", err)
	}
	if c.Simulate < 0 || c.Simulate > 64 {
		bad("simulate %d: want 0 to 64", c.Simulate)
	}
	if c.Simulate == 0 && len(c.Modems) == 0 {
		bad("no modems configured (modems) and none simulated (--simulate N)")
	}
	names := map[string]bool{}
	for i, m := range c.Modems {
		where := fmt.Sprintf("modems[%d]", i)
		if m.Name == "" {
			bad("%s.name is required", where)
		} else if !modemName(m.Name) {
			bad("%s.name %q: want 1-32 characters of a-z A-Z 0-9 _ -", where, m.Name)
		} else if names[m.Name] {
			bad("%s.name %q: used twice", where, m.Name)
		}
		names[m.Name] = true
		usb := m.USB.VID != "" || m.USB.PID != "" || m.USB.Serial != ""
		if m.Device == "" && !usb {
			bad("%s: device or usb (vid, pid, serial) is required", where)
		}
		if m.Device != "" && usb {
			bad("%s: device and usb are mutually exclusive", where)
		}
		if m.USB.Port < 0 || m.PerMinute < 0 || m.PerDay < 0 {
			bad("%s: usb.port, per_minute and per_day must not be negative", where)
		}
		for _, r := range m.Routes {
			if err := otp.Route(r).Validate(); err != nil {
				bad("%s.routes: %v", where, err)
			}
		}
		if m.Baud < 0 {
			bad("%s.baud %d: want a positive speed", where, m.Baud)
		}
		if m.PINFile != "" && m.PINEnv != "" {
			bad("%s: pin_file and pin_env are mutually exclusive", where)
		}
		if m.CommandTimeout < 0 || m.SendTimeout < 0 || m.HealthInterval < 0 {
			bad("%s: timeouts must not be negative", where)
		}
		if _, err := m.Balance.Regexp(); err != nil {
			bad("%s.balance.pattern: %v", where, err)
		}
		if m.Balance.Interval < 0 || m.Balance.Interval > 0 && m.Balance.Interval < time.Minute {
			bad("%s.balance.interval %s: want at least 1m", where, m.Balance.Interval)
		}
	}
	return errors.Join(errs...)
}

func modemName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
