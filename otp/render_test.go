package otp

import (
	"errors"
	"math"
	"slices"
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

func TestRenderCodeLines(t *testing.T) {
	r, err := NewRenderer("Acme", "en", map[string]map[string]string{
		"login": {"en": "Your {{.Brand}} code is {{.Code}}."},
		// A YAML block scalar ends the text with a newline.
		"block":  {"en": "Your {{.Brand}} code is {{.Code}}.\n"},
		"nocode": {"en": "Your {{.Brand}} code is in the last line. \t\r\n\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const hash = "FA+9qCX9VSu"
	for _, tc := range []struct {
		name, template, origin, appHash string
		want                            string
	}{
		{name: "neither", template: "login", want: "Your Acme code is 034812."},
		{name: "block scalar kept without lines", template: "block", want: "Your Acme code is 034812.\n"},
		{name: "origin", template: "login", origin: "example.com",
			want: "Your Acme code is 034812.\n\n@example.com #034812"},
		{name: "app hash", template: "login", appHash: hash,
			want: "Your Acme code is 034812.\nFA+9qCX9VSu"},
		{name: "both: origin line last", template: "login", origin: "login.example.com", appHash: hash,
			want: "Your Acme code is 034812.\nFA+9qCX9VSu\n\n@login.example.com #034812"},
		{name: "trailing newline dropped", template: "block", origin: "example.com", appHash: hash,
			want: "Your Acme code is 034812.\nFA+9qCX9VSu\n\n@example.com #034812"},
		{name: "trailing white space dropped", template: "nocode", origin: "example.com",
			want: "Your Acme code is in the last line.\n\n@example.com #034812"},
		{name: "default template", origin: "example.com",
			want: "Your Acme verification code is 034812. It expires in 5 min.\n\n@example.com #034812"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := codeJob(testCode, tc.template, "", 5*time.Minute)
			p.Origin, p.AppHash = tc.origin, tc.appHash
			got, err := r.Render(p)
			if err != nil || got != tc.want {
				t.Fatalf("Render = %q, %v; want %q", got, err, tc.want)
			}
			if tc.origin != "" {
				lines := strings.Split(got, "\n")
				if last := lines[len(lines)-1]; last != "@"+tc.origin+" #"+testCode {
					t.Errorf("last line %q", last)
				}
			}
			if enc, parts := Segments(got); enc != EncodingGSM7 || parts != 1 {
				t.Errorf("Segments = %s, %d", enc, parts)
			}
		})
	}
}

// Render refuses what DecodeJob refuses of origin and app_hash, for a
// Prepared that did not come from DecodeJob.
func TestRenderRefusesBadCodeOptions(t *testing.T) {
	r, err := NewRenderer("Acme", "en", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		p      Prepared
		reason Reason
		field  string
	}{
		{name: "origin with newline", p: Prepared{Job: Job{Code: testCode, Origin: "example.com\n@evil.example"}},
			reason: ReasonInvalidOrigin, field: "origin"},
		{name: "origin with scheme", p: Prepared{Job: Job{Code: testCode, Origin: "https://example.com"}},
			reason: ReasonInvalidOrigin, field: "origin"},
		{name: "bad app hash", p: Prepared{Job: Job{Code: testCode, AppHash: "short"}},
			reason: ReasonInvalidAppHash, field: "app_hash"},
		{name: "text with origin", p: Prepared{Job: Job{Text: "hi", Origin: "example.com"}},
			reason: ReasonMalformed, field: "origin"},
		{name: "text with app hash", p: Prepared{Job: Job{Text: "hi", AppHash: "FA+9qCX9VSu"}},
			reason: ReasonMalformed, field: "app_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Render(tc.p)
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
		})
	}
}

func TestRendererCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		brand     string
		templates map[string]map[string]string
		want      []string
	}{
		{name: "built-in default", brand: "Acme"},
		{name: "GSM templates", brand: "Acme", templates: map[string]map[string]string{
			"login":   {"en": "{{.Brand}} login code: {{.Code}}", "da": "{{.Brand}} login-kode: {{.Code}} (gyldig {{.Minutes}} min)"},
			"default": {"de": "Ihr {{.Brand}}-Code lautet {{.Code}}. Er läuft in {{.Minutes}} Min. ab."},
		}},
		{name: "UCS-2", brand: "Acme", templates: map[string]map[string]string{
			"default": {"de": "Ihr {{.Brand}}-Code lautet {{.Code}} – gültig {{.Minutes}} Min."},
			"login":   {"fr": "Votre code {{.Brand}} est {{.Code}}. Reçu ?", "en": "{{.Code}}"},
		}, want: []string{
			`template "default/de" needs UCS-2 (70 characters per SMS)`,
			`template "login/fr" needs UCS-2 (70 characters per SMS)`,
		}},
		// 62 characters, 84 with "\n\n@example.com #000000".
		{name: "brand outside GSM", brand: "Acme™", want: []string{
			`template "default/en" needs UCS-2 (70 characters per SMS) and is sent as 2 SMS with an origin line`,
		}},
		{name: "long", brand: "Acme", templates: map[string]map[string]string{
			// The origin line adds 22 characters: "\n\n@example.com #000000".
			"long":   {"en": strings.Repeat("x", 161) + "{{.Code}}"},
			"edge":   {"en": strings.Repeat("x", 154) + "{{.Code}}"}, // 160 | 182
			"ucs2":   {"en": strings.Repeat("ж", 43) + "{{.Code}}"},  // 49 | 71
			"longer": {"en": strings.Repeat("x", 300) + "{{.Code}}"}, // 306 | 328: 2 | 3 SMS
			"ok":     {"en": strings.Repeat("x", 132) + "{{.Code}}"}, // 138 | 160
			"ucs2ok": {"en": strings.Repeat("ж", 42) + "{{.Code}}"},  // 48 | 70
		}, want: []string{
			`template "edge/en" is sent as 2 SMS with an origin line`,
			`template "long/en" is sent as 2 SMS`,
			`template "longer/en" is sent as 2 SMS (3 with an origin line)`,
			`template "ucs2/en" needs UCS-2 (70 characters per SMS) and is sent as 2 SMS with an origin line`,
			`template "ucs2ok/en" needs UCS-2 (70 characters per SMS)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRenderer(tc.brand, "en", tc.templates)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Check()
			if !slices.Equal(got, tc.want) {
				t.Errorf("Check() = %q\nwant %q", got, tc.want)
			}
			for _, w := range got {
				if strings.Contains(w, sampleCode) {
					t.Errorf("warning %q has a code", w)
				}
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
	f.Add("", "", testCode, int64(90*time.Second), "", "")
	f.Add("login", "DA", "1234", int64(time.Minute), "example.com", "")
	f.Add("login", "en", "1234", int64(time.Minute), "login.example.com", "FA+9qCX9VSu")
	f.Add("minutes", "", "1234", int64(time.Hour), "", "FA+9qCX9VSu")
	f.Add("minutes", "", "1234", int64(math.MaxInt64), "", "")
	f.Add("short", "en", "1234", int64(time.Minute), "", "")
	f.Add("short", "en", "12345678", int64(time.Minute), "example.com", "")
	f.Add("nope", "en", "1234", int64(0), "", "")
	f.Add("default", "xx", "", int64(-1), "", "")
	f.Add("default", "", "", int64(0), "example.com", "")
	f.Add("default", "", "1234", int64(0), "https://example.com", "FA+9qCX9VS")
	f.Add("default", "", "1234", int64(0), "example.com\n@evil.example", "")
	f.Fuzz(func(t *testing.T, name, locale, code string, ttl int64, origin, appHash string) {
		if ttl < 0 {
			ttl = ^ttl // a Prepared TTL is never negative
		}
		p := codeJob(code, name, locale, time.Duration(ttl))
		p.Origin, p.AppHash = origin, appHash
		got, err := r.Render(p)
		options := p.checkCodeOptions()
		if options != nil && err == nil {
			t.Fatalf("rendered %q with %v", got, options)
		}
		if err != nil {
			if re, ok := AsReject(err); ok {
				if options != nil {
					if *re != *options {
						t.Fatalf("rejected with %v, want %v", re, options)
					}
					return
				}
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
		// The app hash, then the origin line, end the message; the
		// template text before them has no trailing white space.
		text := got
		if origin != "" || appHash != "" {
			var tail string
			if appHash != "" {
				tail += "\n" + appHash
			}
			if origin != "" {
				tail += "\n\n@" + origin + " #" + code
			}
			var ok bool
			if text, ok = strings.CutSuffix(got, tail); !ok {
				t.Fatalf("rendered %q does not end with %q", got, tail)
			}
			if strings.TrimRight(text, " \t\r\n") != text {
				t.Fatalf("template text %q ends with white space", text)
			}
		}
		if strings.ToLower(name) == "minutes" {
			d := time.Duration(ttl)
			want := int64(d / time.Minute)
			if d%time.Minute != 0 {
				want++
			}
			if text != strconv.FormatInt(want, 10) {
				t.Fatalf("ttl %s rendered as %s minutes, want %d", d, text, want)
			}
		} else if strings.ToLower(name) != "short" && !strings.Contains(text, code) {
			t.Fatalf("rendered %q does not contain the code %q", text, code)
		}
	})
}

func TestRendererFit(t *testing.T) {
	long := strings.Repeat("x", 200) + " {{.Code}}" // 2 SMS
	r, err := NewRenderer("Acme", "en", map[string]map[string]string{"long": {"en": long, "da": "{{.Code}}"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fit(2); err != nil {
		t.Errorf("2 SMS within 2: %v", err)
	}
	err = r.Fit(1)
	if err == nil || !strings.Contains(err.Error(), `"long/en" (2 SMS)`) || strings.Contains(err.Error(), "long/da") || strings.Contains(err.Error(), sampleCode) {
		t.Errorf("2 SMS past 1: %v", err)
	}
}
