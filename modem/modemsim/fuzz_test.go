package modemsim

import (
	"testing"
)

// FuzzInput feeds arbitrary bytes to the command interpreter. It must never
// panic, and its output must not depend on how the input is fragmented.
func FuzzInput(f *testing.F) {
	for _, tc := range transcripts(f) {
		var in string
		for _, s := range tc.steps {
			in += s.in
		}
		f.Add([]byte(in))
	}
	f.Add([]byte("AT+CMGS=1\r00\x1a"))
	f.Add([]byte("AT+CMGF=1;+CSCS=\"UCS2\";+CMGS=\"002B0034\"\r0041\x1a"))
	f.Add([]byte("ATS3=65AATS5=8AAT\b\bA"))
	f.Add([]byte("A/A/AT+CPIN=\"1\",\"2\"\rAT+COPS=1,2,\"00101\"\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := newLocal(t, Config{PIN: "1234", PUK: "1"})
		whole.ip.feed(data)
		bytewise := newLocal(t, Config{PIN: "1234", PUK: "1"})
		for i := range data {
			bytewise.ip.feed(data[i : i+1])
		}
		if a, b := whole.out.take(), bytewise.out.take(); a != b {
			t.Fatalf("fragmentation changes the output:\n whole %q\nbytes %q", a, b)
		}
	})
}
