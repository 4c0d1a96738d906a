package otp

import "time"

// SubjectStatus is the subject on which every daemon of a cluster answers
// with its Status (a micro service endpoint without a queue group: one
// request, one answer per daemon).
const SubjectStatus = "simgate.status"

// Status is a daemon's answer on simgate.status: its modems as it sees
// them. It names no number and no code.
type Status struct {
	Node    string    `json:"node"`
	Version string    `json:"version,omitempty"`
	Time    time.Time `json:"time"`
	// QueuePending is the jobs waiting in the shared queue (the same for
	// every daemon of a cluster); -1 when it could not be read.
	QueuePending int64         `json:"queue_pending"`
	Modems       []ModemStatus `json:"modems"`
}

// ModemStatus is one modem in a Status.
type ModemStatus struct {
	Name string `json:"name"`
	// State is ready (taking jobs), busy (sending), capped (at a send
	// cap), not_ready (open, but SIM or network not ready) or down (not
	// open).
	State string `json:"state"`
	// SIM is the SIM's state (+CPIN?: READY, SIM PIN, ...).
	SIM string `json:"sim,omitempty"`
	// Registration is home, roaming, sms_only_home, sms_only_roaming,
	// searching, denied, not_registered or unknown.
	Registration string `json:"registration,omitempty"`
	Operator     string `json:"operator,omitempty"`
	// SignalDBm is the signal strength; absent when unknown.
	SignalDBm *int `json:"signal_dbm,omitempty"`
	// Balance is the SIM's prepaid balance as last asked (modems[].balance).
	Balance *float64 `json:"balance,omitempty"`
	// SentToday counts the messages it sent since midnight (the daemon's
	// time); PerMinute and PerDay are its caps (0: none).
	SentToday int `json:"sent_today"`
	PerMinute int `json:"per_minute,omitempty"`
	PerDay    int `json:"per_day,omitempty"`
	// StorageUsed and StorageSize are how full the SIM's message memory is.
	StorageUsed int `json:"storage_used,omitempty"`
	StorageSize int `json:"storage_size,omitempty"`
	// LastError is the last send failure ("+CMS ERROR: 42"), if any.
	LastError string    `json:"last_error,omitempty"`
	LastAt    time.Time `json:"last_error_at,omitzero"`
}
