package redact

import (
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"+cmee=1", "+CMEE=1"},
		{" + c m e e = 1 ", "+CMEE=1"},
		{`+cpms="sm", "me"`, `+CPMS="sm","me"`},
		{`+CMGS="+45 26"`, `+CMGS="+45 26"`},
		{`+CSCA="a"b"c d"`, `+CSCA="a"B"c d"`},
		{`+CPIN="12`, `+CPIN="12`}, // unterminated: the rest stays as it is
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCommand(t *testing.T) {
	for in, want := range map[string]string{
		"+CSQ":                          "+CSQ",
		"+CMGS=23":                      "+CMGS=**",
		"+CNMI=2,1,0,1,0":               "+CNMI=2,1,0,1,0",
		`+CMEE=1;+cpin="1234"`:          `+CMEE=*;+CPIN="****"`,
		`+C PIN="1234"`:                 `+CPIN="****"`,
		`+CMGS="+4526227921"`:           `+CMGS="+**********"`,
		`+CMGF=1;+ CMGS="+4526227921"`:  `+CMGF=*;+CMGS="+**********"`,
		`E0;+CSCA="+4500000000",145`:    `E*;+CSCA="+**********",***`,
		"D+4526227921;":                 "D+**********;",
		`+CPBW=1,"26227921",129,"Anne"`: `+CPBW=1,"********",129,"Anne"`,
	} {
		if got := Command(in); got != want {
			t.Errorf("Command(%q) = %q, want %q", in, got, want)
		}
	}
}
