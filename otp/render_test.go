package otp

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

func codeJob(code, tmpl, locale string, ttl time.Duration) Prepared {
	return Prepared{Job: Job{ID: "a", To: "+4526227921", Code: code, Template: tmpl, Locale: locale}, TTL: ttl}
}

func TestRenderDefault(t *testing.T) {
	r, err := NewRenderer("Acme", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ttl     time.Duration
		minutes int
	}{
		{90 * time.Second, 2},
		{10 * time.Minute, 10},
		{time.Nanosecond, 1},
		{time.Minute, 1},
		{time.Minute + time.Nanosecond, 2},
		{59 * time.Minute, 59},
		{time.Hour, 60},
		{math.MaxInt64, 153722868}, // 2562047h47m16.854775807s: no overflow
	} {
		for _, p := range []Prepared{codeJob(testCode, "", "", tc.ttl), codeJob(testCode, "DEFAULT", "fr", tc.ttl)} {
			got, err := r.Render(p)
			want := "Your Acme verification code is 034812. It expires in " + strconv.Itoa(tc.minutes) + " min."
			if err != nil || got != want {
				t.Errorf("ttl %s template %q: %q, %v; want %q", tc.ttl, p.Template, got, err, want)
			}
		}
	}
}

func TestRender(t *testing.T) {
	r, err := NewRenderer("Acme", "EN", map[string]map[string]string{
		"Login": {
			"en": "{{.Brand}} login code: {{.Code}}",
			"DA": "{{.Brand}} login-kode: {{.Code}} (gyldig {{.Minutes}} min)",
		},
		"reset": {"da": "Nulstil: {{.Code}}"}, // no "en"
		"default": {
			"de": "Ihr {{.Brand}} Code ist {{.Code}}",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		template, locale string
		want             string
		reason           Reason
		field            string
	}{
		{name: "named, default locale", template: "login", want: "Acme login code: 034812"},
		{name: "named, locale", template: "login", locale: "da", want: "Acme login-kode: 034812 (gyldig 5 min)"},
		{name: "case-insensitive", template: "LOGIN", locale: "Da", want: "Acme login-kode: 034812 (gyldig 5 min)"},
		{name: "locale falls back to default locale", template: "login", locale: "sv", want: "Acme login code: 034812"},
		{name: "named, only its locale", template: "reset", locale: "da", want: "Nulstil: 034812"},
		{name: "configured default locale of default", locale: "de", want: "Ihr Acme Code ist 034812"},
		{name: "built-in default kept beside configured locales", locale: "sv",
			want: "Your Acme verification code is 034812. It expires in 5 min."},
		{name: "unknown template", template: "signup", reason: ReasonUnknownTemplate, field: "template"},
		{name: "no locale and no default locale", template: "reset", locale: "sv", reason: ReasonUnknownTemplate, field: "locale"},
		{name: "no locale given, no default locale", template: "reset", reason: ReasonUnknownTemplate, field: "locale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Render(codeJob(testCode, tc.template, tc.locale, 5*time.Minute))
			if tc.reason != "" {
				re, ok := AsReject(err)
				if !ok {
					t.Fatalf("Render = %q, %v; want %s", got, err, tc.reason)
				}
				if re.Reason != tc.reason || re.Field != tc.field {
					t.Errorf("rejected %s (field %q), want %s (field %q)", re.Reason, re.Field, tc.reason, tc.field)
				}
				if strings.Contains(re.Detail, testCode) {
					t.Errorf("Detail %q reveals the code", re.Detail)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRenderText(t *testing.T) {
	r, err := NewRenderer("Acme", "en", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"Your parcel is ready", "{{.Code}} is not a template here", "Æ ø å ✓ 😀"} {
		// The template and locale of a text job do not matter.
		p := Prepared{Job: Job{ID: "a", To: "+4526227921", Text: text, Template: "nope", Locale: "xx"}, TTL: time.Minute}
		if got, err := r.Render(p); err != nil || got != text {
			t.Errorf("Render(%q) = %q, %v", text, got, err)
		}
	}
}

func TestNewRendererRefusesBadTemplates(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"parse error", "code {{.Code"},
		{"unknown function", "{{nope .Code}}"},
		{"unknown field", "code {{.Nope}}"},
		{"execution error", "{{index .Code 10}}"},
		{"method on int", "{{.Minutes.Foo}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRenderer("Acme", "en", map[string]map[string]string{"login": {"en": "ok {{.Code}}", "da": tc.text}})
			if err == nil || r != nil {
				t.Fatalf("NewRenderer accepted %q", tc.text)
			}
			if !strings.Contains(err.Error(), "login/da") {
				t.Errorf("error %q does not name the template", err)
			}
		})
	}
}

func TestRenderConcurrent(t *testing.T) {
	r, err := NewRenderer("Acme", "en", map[string]map[string]string{"login": {"da": "{{.Code}}/{{.Minutes}}"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				code := strconv.Itoa(1000 + i*100 + j)
				got, err := r.Render(codeJob(code, "login", "da", time.Minute))
				if err != nil || got != code+"/1" {
					t.Errorf("Render = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzRender(f *testing.F) {
	r, err := NewRenderer("Acme", "en", map[string]map[string]string{
		"login":   {"en": "{{.Brand}}: {{.Code}}", "da": "{{.Brand}}-kode: {{.Code}}"},
		"minutes": {"en": "{{.Minutes}}"},
		// Passes the start-up check with the sample code "000000" but fails
		// on execution with a shorter code.
		"short": {"en": "{{slice .Code 0 6}}"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", "", testCode, int64(90*time.Second))
	f.Add("login", "DA", "1234", int64(time.Minute))
	f.Add("minutes", "", "1234", int64(time.Hour))
	f.Add("minutes", "", "1234", int64(math.MaxInt64))
	f.Add("short", "en", "1234", int64(time.Minute))
	f.Add("short", "en", "12345678", int64(time.Minute))
	f.Add("nope", "en", "1234", int64(0))
	f.Add("default", "xx", "", int64(-1))
	f.Fuzz(func(t *testing.T, name, locale, code string, ttl int64) {
		if ttl < 0 {
			ttl = ^ttl // a Prepared TTL is never negative
		}
		p := codeJob(code, name, locale, time.Duration(ttl))
		got, err := r.Render(p)
		if err != nil {
			if re, ok := AsReject(err); ok {
				if re.Reason != ReasonUnknownTemplate {
					t.Fatalf("rejected with %s", re.Reason)
				}
				return
			}
			var execErr template.ExecError
			if !strings.HasPrefix(err.Error(), "render template ") || !errors.As(err, &execErr) {
				t.Fatalf("unexpected error %v (%T)", err, err)
			}
			if strings.ToLower(name) != "short" {
				t.Fatalf("template %q failed: %v", name, err)
			}
			return
		}
		if code == "" {
			if got != "" {
				t.Fatalf("empty job rendered as %q", got)
			}
			return
		}
		if strings.ToLower(name) == "minutes" {
			d := time.Duration(ttl)
			want := int64(d / time.Minute)
			if d%time.Minute != 0 {
				want++
			}
			if got != strconv.FormatInt(want, 10) {
				t.Fatalf("ttl %s rendered as %s minutes, want %d", d, got, want)
			}
		} else if strings.ToLower(name) != "short" && !strings.Contains(got, code) {
			t.Fatalf("rendered %q does not contain the code %q", got, code)
		}
	})
}
