// Package daemon runs simgate: it turns the configuration into each
// component (wiring.go), starts NATS (embedded or external), the streams,
// the policy and the delivery journal, the gateway with one worker per modem
// (or simulated modems), and the metrics endpoint; it reloads the settings
// that may change live and stops gracefully.
package daemon
