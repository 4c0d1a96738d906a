package otp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// decodeWithDecoder is decodeObject as a json.Decoder with
// DisallowUnknownFields does it: what decodeObject must answer alike.
func decodeWithDecoder(data []byte, limit int, what string, v any, _ []string) error {
	if err := checkObject(data, limit, what); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field, _ := strconv.Unquote(q)
			return reject(ReasonUnknownField, field, "unknown field %q", field)
		}
		return decodeError(what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return reject(ReasonMalformed, "", "trailing data after the %s object", what)
	}
	return nil
}

// FuzzDecodeObject holds decodeObject to a json.Decoder's answers, for
// the three objects of the contract: the same values decoded (but for a
// malformed object), and the same rejection (reason and field; an unknown
// field is named unquoted, where the decoder's error quotes it).
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","to":"+4526227921","code":"034812"}`,
		`{"id":"a","to":"+4526227921","code":"034812","priority":1}`,
		`{"priority":1,"id":5}`, `{"id":5,"priority":1}`, `{"id":{"x":[1,"]"]},"zz":null}`,
		`{"ID":"a","To":"+4526227921","CODE":"034812","ſealed":"x","Kode":"1"}`,
		`{"\u0069d":"a","t\u006f":"b","\u0063odx":1}`,
		`{"id":"a"} {}`, `{"id":"a"} x`, `{"id":"a"}   `, `{"id":"a",}`,
		`{"ttl":{},"x":1}`, `{"x":1,"ttl":"5q"}`, `{"ttl":300,"new":"yes","digits":1.5}`,
		`{ "id" : "a" , "x" : [ ] }`, `{"a\"b":1}`, `{"":1}`, `{}`, `{"id":"a","id":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []struct {
			new    func() any
			fields []string
		}{
			{func() any { return new(Job) }, jobFields},
			{func() any { return new(VerifyRequest) }, verifyFields},
			{func() any { return new(CheckRequest) }, checkFields},
		} {
			got, want := o.new(), o.new()
			gotErr := decodeObject(data, MaxJobSize, "job", got, o.fields)
			wantErr := decodeWithDecoder(data, MaxJobSize, "job", want, nil)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T from %q: %v, want %v", got, data, gotErr, wantErr)
			}
			if gotErr != nil {
				g, _ := AsReject(gotErr)
				w, _ := AsReject(wantErr)
				if g == nil || g.Reason != w.Reason || g.Field != w.Field {
					t.Fatalf("%T from %q: %v, want %v", got, data, gotErr, wantErr)
				}
			}
			// A malformed object's fields are not used: the decoder
			// may have decoded some before the error.
			if re, _ := AsReject(wantErr); (re == nil || re.Reason != ReasonMalformed) && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T from %q: %+v, want %+v", got, data, got, want)
			}
		}
	})
}

// BenchmarkDecodeJob decodes a flood's job: decodeObject against a
// json.Decoder doing the same.
func BenchmarkDecodeJob(b *testing.B) {
	data := []byte(`{"id":"f12-3456","to":"+447400123456","code":"123456"}`)
	for _, bc := range []struct {
		name   string
		decode func([]byte, int, string, any, []string) error
	}{{"decodeObject", decodeObject}, {"json.Decoder", decodeWithDecoder}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var j Job
				if err := bc.decode(data, MaxJobSize, "job", &j, jobFields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
