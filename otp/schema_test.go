package otp

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
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
		{"schema/check.schema.json", CheckRequest{}},
		{"schema/check-reply.schema.json", CheckReply{}},
		{"schema/verify.schema.json", VerifyRequest{}},
		{"schema/received.schema.json", Received{}},
		{"schema/status.schema.json", Status{}},
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

// schemaPattern compiles the pattern of a property of a JSON Schema, so that
// tests can hold the Go checks to what the schema publishes.
func schemaPattern(t testing.TB, file, property string) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	p := schema.Properties[property].Pattern
	if p == "" {
		t.Fatalf("%s: property %q has no pattern", file, property)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		t.Fatalf("%s: property %q: %v", file, property, err)
	}
	return re
}

// The patterns of the job schema are those the decoder uses.
func TestJobSchemaPatterns(t *testing.T) {
	for _, tc := range []struct {
		property string
		re       *regexp.Regexp
	}{
		{"id", idPattern},
		{"code", codePattern},
		{"template", namePattern},
		{"locale", namePattern},
		{"region", regionPattern},
		{"app_hash", appHashPattern},
	} {
		if got := schemaPattern(t, "schema/job.schema.json", tc.property).String(); got != tc.re.String() {
			t.Errorf("schema pattern of %s is %s, the decoder's %s", tc.property, got, tc.re)
		}
	}
}

// TestStateEnum keeps the schema's list of states equal to
// States.
func TestStateEnum(t *testing.T) {
	b, err := os.ReadFile("schema/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, et := range States {
		want = append(want, string(et))
	}
	if !slices.Equal(schema.Properties.Type.Enum, want) {
		t.Errorf("schema enum %v, States %v", schema.Properties.Type.Enum, want)
	}
}

// TestReasonsDocumented keeps the documented reasons in step with the
// Reason constants of reject.go: each is named in the event schema's
// description of reason and in the README's contract.
func TestReasonsDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reject.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			for _, val := range v.Values {
				if lit, ok := val.(*ast.BasicLit); ok {
					reasons = append(reasons, strings.Trim(lit.Value, `"`))
				}
			}
		}
	}
	if len(reasons) < 20 {
		t.Fatalf("found only %d reasons in reject.go: %v", len(reasons), reasons)
	}
	b, err := os.ReadFile("schema/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Reason struct {
				Description string `json:"description"`
			} `json:"reason"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	words := regexp.MustCompile(`[a-z_]+`).FindAllString(schema.Properties.Reason.Description, -1)
	for _, r := range reasons {
		if !slices.Contains(words, r) {
			t.Errorf("reason %s is not in the event schema's description of reason", r)
		}
		if !strings.Contains(string(readme), "`"+r+"`") {
			t.Errorf("reason %s is not in README.md", r)
		}
	}
}
