// Package otp holds what simgate knows about one-time-passcode jobs: the wire
// contract (subjects and stream names in contract.go; Job, Reply and Event;
// every Reason and Scope; the one vocabulary of job states, State), decoding
// and validation, phone number normalisation and masking, message rendering
// and encodings.
//
// Nothing in this package talks to NATS or to a modem: it is all a client
// needs to speak to simgate.
package otp
