// Package otp holds what simgate knows about one-time-passcode jobs: the job
// contract (decoding and validation), phone number normalisation and masking,
// message rendering, typed rejections and the events a job goes through.
//
// Nothing in this package talks to NATS or to a modem.
package otp
