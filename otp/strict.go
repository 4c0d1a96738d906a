package otp

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"
)

// decodeObject reads data, at most limit bytes of one JSON object, into v
// (a pointer to a struct whose JSON fields are fields, see fieldsOf)
// strictly: valid UTF-8, no unknown field, nothing after it. what names
// the object in rejections.
//
// It answers as a json.Decoder with DisallowUnknownFields would, at about
// two thirds of its time and a third of its memory: json.Unmarshal
// decodes, and unknownField finds the first field v does not have
// (FuzzDecodeObject holds the two to the same answers). It relies on
// encoding/json's v1 errors: the offsets of syntax and type errors, and
// "after top-level value" for trailing data.
func decodeObject(data []byte, limit int, what string, v any, fields []string) error {
	if err := checkObject(data, limit, what); err != nil {
		return err
	}
	err := json.Unmarshal(data, v)
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) && strings.HasSuffix(syntaxErr.Error(), "after top-level value") {
		// The object itself is answered first, as the decoder reads it
		// before what follows.
		if err := decodeObject(data[:syntaxErr.Offset-1], limit, what, v, fields); err != nil {
			return err
		}
		return reject(ReasonMalformed, "", "trailing data after the %s object", what)
	}
	// Past a syntax error or a field's own (a ttl's), as the decoder
	// stops there; otherwise the data is valid JSON, and the first in the
	// object of an unknown field and a wrongly typed one is the answer.
	var typeErr *json.UnmarshalTypeError
	if err == nil || errors.As(err, &typeErr) {
		if key, at, ok := unknownField(data, fields); ok && (err == nil || at < typeErr.Offset) {
			return reject(ReasonUnknownField, key, "unknown field %q", key)
		}
	}
	if err != nil {
		return decodeError(what, err)
	}
	return nil
}

// checkObject refuses what is not to be decoded at all: data of more than
// limit bytes, not valid UTF-8 (which encoding/json silently turns into
// U+FFFD) or not an object (encoding/json decodes a top-level null into
// the zero value).
func checkObject(data []byte, limit int, what string) error {
	if len(data) > limit {
		return reject(ReasonMalformed, "", "%s is larger than %d bytes", what, limit)
	}
	if !utf8.Valid(data) {
		return reject(ReasonMalformed, "", "%s is not valid UTF-8", what)
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return reject(ReasonMalformed, "", "%s is not a JSON object", what)
	}
	return nil
}

// The JSON fields of the objects decodeObject reads.
var (
	jobFields    = fieldsOf(reflect.TypeFor[Job]())
	verifyFields = fieldsOf(reflect.TypeFor[VerifyRequest]())
	checkFields  = fieldsOf(reflect.TypeFor[CheckRequest]())
)

// fieldsOf returns the JSON names of the fields of struct type t.
func fieldsOf(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// unknownField returns the first key of JSON object data that names none
// of fields (as encoding/json matches them: exactly, or with case
// folded), unquoted, and its offset in data. data must be valid JSON.
func unknownField(data []byte, fields []string) (key string, at int64, ok bool) {
	i := skipSpace(data, bytes.IndexByte(data, '{')+1)
	for i < len(data) && data[i] == '"' {
		start := i
		i = skipString(data, i)
		if name, ok := knownKey(data[start:i], fields); !ok {
			return name, int64(start), true
		}
		i = skipSpace(data, i)
		i = skipSpace(data, i+1) // the colon
		i = skipSpace(data, skipValue(data, i))
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return "", 0, false
}

// knownKey reports whether JSON string key names one of fields, and
// returns it unquoted when it does not.
func knownKey(key []byte, fields []string) (string, bool) {
	raw := key[1 : len(key)-1]
	for _, f := range fields {
		if string(raw) == f {
			return "", true // the common case: no allocation
		}
	}
	name := string(raw)
	if bytes.IndexByte(raw, '\\') >= 0 {
		if err := json.Unmarshal(key, &name); err != nil {
			return "", true // not valid JSON after all: not ours to say
		}
	}
	for _, f := range fields {
		if strings.EqualFold(name, f) {
			return "", true
		}
	}
	return name, false
}

// skipSpace returns the offset of the first byte at or after i in data
// that is not JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the offset just after the JSON string that starts at
// data[i] (its opening quote).
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++ // the escaped byte (the rest of \uXXXX is plain)
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the offset just after the JSON value that starts at
// data[i].
func skipValue(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			i = skipString(data, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
