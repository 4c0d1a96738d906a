package modemsim

import "github.com/warthog618/sms/encoding/gsm7/charset"

// warthog618/sms v0.3.0 builds its GSM 7-bit tables lazily on first use,
// without synchronisation: two simulated modems decoding their first SMS at once race
// (found by the chaos test under -race). Building them here, before any
// goroutine can use them, makes later use read-only.
func init() {
	charset.DefaultEncoder()
	charset.DefaultExtEncoder()
	charset.DefaultDecoder()
	charset.DefaultExtDecoder()
}
