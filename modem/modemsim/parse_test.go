package modemsim

import (
	"errors"
	"reflect"
	"testing"
)

// parseLine splits a normalised command line into commands the way run
// does, without running them.
func parseLine(body string) ([]command, error) {
	var cs []command
	for {
		for len(body) > 0 && body[0] == ';' {
			body = body[1:]
		}
		if body == "" {
			return cs, nil
		}
		c, rest, err := nextCommand(body)
		if err != nil {
			return cs, err
		}
		cs = append(cs, c)
		body = rest
	}
}

func TestNextCommand(t *testing.T) {
	type cmd = command
	for _, tc := range []struct {
		line string // normalised, without "AT"
		want []command
		err  bool // a syntax error after the commands in want
	}{
		{line: "", want: nil},
		{line: ";;", want: nil},

		// Basic commands.
		{line: "E", want: []cmd{{name: "E"}}},
		{line: "E0", want: []cmd{{name: "E", hasNum: true}}},
		{line: "E1V0Q1", want: []cmd{{name: "E", num: 1, hasNum: true}, {name: "V", hasNum: true}, {name: "Q", num: 1, hasNum: true}}},
		{line: "E0;V1", want: []cmd{{name: "E", hasNum: true}, {name: "V", num: 1, hasNum: true}}},
		{line: "&F", want: []cmd{{name: "&F"}}},
		{line: "&D2&C1", want: []cmd{{name: "&D", num: 2, hasNum: true}, {name: "&C", num: 1, hasNum: true}}},
		{line: "X007", want: []cmd{{name: "X", num: 7, hasNum: true}}},
		{line: "X0004", err: true}, // more than three digits
		{line: "&", err: true},
		{line: "&1", err: true},
		{line: "Z;+CSQ", want: []cmd{{name: "Z"}, {name: "+CSQ"}}},

		// S registers.
		{line: "S3=13", want: []cmd{{name: "S", num: 3, hasNum: true, op: opSet, args: "13"}}},
		{line: "S3=", want: []cmd{{name: "S", num: 3, hasNum: true, op: opSet}}},
		{line: "S0?", want: []cmd{{name: "S", hasNum: true, op: opRead}}},
		{line: "S7=?", want: []cmd{{name: "S", num: 7, hasNum: true, op: opTest}}},
		{line: "S3=13S4=10", want: []cmd{{name: "S", num: 3, hasNum: true, op: opSet, args: "13"}, {name: "S", num: 4, hasNum: true, op: opSet, args: "10"}}},
		{line: "S3", err: true},
		{line: "S", err: true},
		{line: "S1000?", err: true},

		// Dial: the rest of the line is the dial string.
		{line: "D+4526227921;", want: []cmd{{name: "D", args: "+4526227921;"}}},
		{line: "E0D123;+CSQ", want: []cmd{{name: "E", hasNum: true}, {name: "D", args: "123;+CSQ"}}},

		// Extended commands in their four forms.
		{line: "+CSQ", want: []cmd{{name: "+CSQ"}}},
		{line: "+CMEE=1", want: []cmd{{name: "+CMEE", op: opSet, args: "1"}}},
		{line: "+CMEE=", want: []cmd{{name: "+CMEE", op: opSet}}},
		{line: "+CMEE?", want: []cmd{{name: "+CMEE", op: opRead}}},
		{line: "+CMEE=?", want: []cmd{{name: "+CMEE", op: opTest}}},
		{line: "+CMEE=1;+CREG=2", want: []cmd{{name: "+CMEE", op: opSet, args: "1"}, {name: "+CREG", op: opSet, args: "2"}}},
		{line: "+CMEE?;+CREG=?", want: []cmd{{name: "+CMEE", op: opRead}, {name: "+CREG", op: opTest}}},
		{line: `+CPMS="SR","SM";+CMGR=1`, want: []cmd{{name: "+CPMS", op: opSet, args: `"SR","SM"`}, {name: "+CMGR", op: opSet, args: "1"}}},
		{line: `+CSCA="+45;00",145`, want: []cmd{{name: "+CSCA", op: opSet, args: `"+45;00",145`}}}, // ';' quoted
		{line: `+CSCA="+45`, err: true},                                                             // unterminated string
		{line: "^SYSINFO", want: []cmd{{name: "^SYSINFO"}}},
		{line: "$QCSIMSTAT?", want: []cmd{{name: "$QCSIMSTAT", op: opRead}}},
		{line: "+", err: true},
		{line: "+CSQE0", want: []cmd{{name: "+CSQE0"}}}, // names may hold digits
		{line: "+CSQ?E0", err: true},                    // ';' must end an extended command
		{line: "E0+CSQ?", want: []cmd{{name: "E", hasNum: true}, {name: "+CSQ", op: opRead}}},
		{line: "+CMEE=1E0", want: []cmd{{name: "+CMEE", op: opSet, args: "1E0"}}},

		// Not a command.
		{line: "=1", err: true},
		{line: "?", err: true},
		{line: "1", err: true},
	} {
		got, err := parseLine(tc.line)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: commands %+v, want %+v", tc.line, got, tc.want)
		}
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v, want error %v", tc.line, err, tc.err)
		} else if err != nil && !errors.Is(err, errSyntax) {
			t.Errorf("%q: error %v, want errSyntax", tc.line, err)
		}
	}
}

func TestParseParams(t *testing.T) {
	type p = param
	for _, tc := range []struct {
		args string
		max  int
		want []param
		err  bool
	}{
		{args: "", max: 1, want: []p{{}}},
		{args: "1", max: 1, want: []p{{v: "1"}}},
		{args: "2,1,0,1,0", max: 5, want: []p{{v: "2"}, {v: "1"}, {v: "0"}, {v: "1"}, {v: "0"}}},
		{args: ",,1", max: 3, want: []p{{}, {}, {v: "1"}}},
		{args: `"SM","ME"`, max: 3, want: []p{{v: "SM", quoted: true}, {v: "ME", quoted: true}}},
		{args: `""`, max: 1, want: []p{{quoted: true}}},
		{args: `"a,b",1`, max: 2, want: []p{{v: "a,b", quoted: true}, {v: "1"}}},
		{args: "1,2", max: 1, err: true},    // too many
		{args: `"ab`, max: 1, err: true},    // unterminated
		{args: `a"b"`, max: 1, err: true},   // text before a string
		{args: `"a"b`, max: 1, err: true},   // text after a string
		{args: `"a""b"`, max: 1, err: true}, // two strings
	} {
		got, err := parseParams(tc.args, tc.max)
		if tc.err {
			if !errors.Is(err, errSyntax) {
				t.Errorf("parseParams(%q, %d) = %+v, %v; want errSyntax", tc.args, tc.max, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseParams(%q, %d) = %+v, %v; want %+v", tc.args, tc.max, got, err, tc.want)
		}
	}
}

func TestIntParam(t *testing.T) {
	ps := []param{{v: "7"}, {}, {v: "300"}, {v: "1", quoted: true}, {v: "x"}, {v: "1234567"}}
	for _, tc := range []struct {
		i, def, lo, hi int
		want           int
		err            bool
	}{
		{i: 0, lo: 0, hi: 9, want: 7},
		{i: 0, lo: 8, hi: 9, err: true},       // out of range
		{i: 1, def: 5, lo: 0, hi: 9, want: 5}, // empty: default
		{i: 9, def: 6, lo: 0, hi: 9, want: 6}, // absent: default
		{i: 2, lo: 0, hi: 255, err: true},
		{i: 3, lo: 0, hi: 9, err: true}, // quoted
		{i: 4, lo: 0, hi: 9, err: true}, // not a number
		{i: 5, lo: 0, hi: 1 << 30, err: true},
	} {
		got, err := intParam(ps, tc.i, tc.def, tc.lo, tc.hi)
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("intParam(%d, %d, %d..%d) = %d, %v; want %d (error %v)", tc.i, tc.def, tc.lo, tc.hi, got, err, tc.want, tc.err)
		}
	}
}
