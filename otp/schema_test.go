package otp

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSchemasMatchTypes keeps the published JSON Schemas in step with the Go
// types: every JSON field of the type is a property of its schema and the
// other way round.
func TestSchemasMatchTypes(t *testing.T) {
	for _, tc := range []struct {
		file string
		typ  any
	}{
		{"schema/job.schema.json", Job{}},
		{"schema/event.schema.json", Event{}},
		{"schema/reply.schema.json", Reply{}},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		var inSchema, inType []string
		for k := range schema.Properties {
			inSchema = append(inSchema, k)
		}
		rt := reflect.TypeOf(tc.typ)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				inType = append(inType, name)
			}
		}
		slices.Sort(inSchema)
		slices.Sort(inType)
		if !slices.Equal(inSchema, inType) {
			t.Errorf("%s properties %v, %T fields %v", tc.file, inSchema, tc.typ, inType)
		}
	}
}
