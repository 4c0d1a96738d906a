package otp

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"
)

// DefaultTemplate is the message used when no template is configured.
const DefaultTemplate = "Your {{.Brand}} verification code is {{.Code}}. It expires in {{.Minutes}} min."

// TemplateData is what a message template can use.
type TemplateData struct {
	Brand   string
	Code    string
	Minutes int // the code's validity, rounded up to whole minutes
}

// Renderer turns a prepared job into the SMS text. Templates are looked up by
// name and locale, ignoring case, falling back to the default locale. A
// Renderer is safe for concurrent use.
type Renderer struct {
	brand         string
	defaultLocale string
	// templates[name][locale]
	templates map[string]map[string]*template.Template
}

// NewRenderer parses the configured templates: a map from template name to a
// map from locale to template text. A "default" template in defaultLocale is
// added when absent.
func NewRenderer(brand, defaultLocale string, texts map[string]map[string]string) (*Renderer, error) {
	if defaultLocale == "" {
		defaultLocale = "en"
	}
	defaultLocale = strings.ToLower(defaultLocale)
	r := &Renderer{brand: brand, defaultLocale: defaultLocale, templates: map[string]map[string]*template.Template{}}
	for name, locales := range texts {
		name = strings.ToLower(name)
		for locale, text := range locales {
			locale = strings.ToLower(locale)
			t, err := template.New(name + "/" + locale).Option("missingkey=error").Parse(text)
			if err != nil {
				return nil, fmt.Errorf("template %s/%s: %w", name, locale, err)
			}
			// Render once with sample data so a template that fails on
			// execution is refused at start-up, not on a job.
			if err := t.Execute(&strings.Builder{}, sampleData(brand)); err != nil {
				return nil, fmt.Errorf("template %s/%s: %w", name, locale, err)
			}
			if r.templates[name] == nil {
				r.templates[name] = map[string]*template.Template{}
			}
			r.templates[name][locale] = t
		}
	}
	if r.templates["default"][defaultLocale] == nil {
		if r.templates["default"] == nil {
			r.templates["default"] = map[string]*template.Template{}
		}
		r.templates["default"][defaultLocale] = template.Must(template.New("default").Parse(DefaultTemplate))
	}
	return r, nil
}

// Render returns the SMS text for p: its Text as is, or its code rendered
// through the template the job names. The result must never be logged.
//
// A code job with an AppHash or an Origin gets lines after the template text
// (whose trailing white space is then dropped):
//
//	Your Acme code is 123456.
//	FA+9qCX9VSu
//
//	@example.com #123456
//
// The origin line is always the last line, as origin-bound one-time codes
// (WebOTP, iOS/macOS AutoFill) require, after an empty line; the app hash
// therefore comes first, on the line right after the text. Android's SMS
// Retriever finds the hash anywhere in the message (its first versions
// wanted it at the end: with an origin line it no longer is).
func (r *Renderer) Render(p Prepared) (string, error) {
	if re := p.checkCodeOptions(); re != nil {
		return "", re
	}
	if p.Code == "" {
		return p.Text, nil
	}
	name := p.Template
	if name == "" {
		name = "default"
	}
	locales, ok := r.templates[strings.ToLower(name)]
	if !ok {
		return "", reject(ReasonUnknownTemplate, "template", "no template named %q", name)
	}
	t := locales[strings.ToLower(p.Locale)]
	if t == nil {
		t = locales[r.defaultLocale]
	}
	if t == nil {
		return "", reject(ReasonUnknownTemplate, "locale", "template %q has no locale %q nor %q", name, p.Locale, r.defaultLocale)
	}
	var b strings.Builder
	// Round up without overflowing: p.TTL + time.Minute - 1 wraps for a TTL
	// near the largest time.Duration (possible when Limits.MaxTTL is 0).
	minutes := p.TTL / time.Minute
	if p.TTL%time.Minute > 0 {
		minutes++
	}
	data := TemplateData{Brand: r.brand, Code: p.Code, Minutes: int(minutes)}
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render template %s: %w", t.Name(), err)
	}
	return withCodeLines(b.String(), p.Code, p.Origin, p.AppHash), nil
}

// withCodeLines appends the app hash line and the origin line to a rendered
// template text; see Render.
func withCodeLines(text, code, origin, appHash string) string {
	if origin == "" && appHash == "" {
		return text
	}
	text = strings.TrimRight(text, " \t\r\n")
	if appHash != "" {
		text += "\n" + appHash
	}
	if origin != "" {
		text += "\n\n@" + origin + " #" + code
	}
	return text
}

// Samples a template is rendered with at start-up: never a real code.
const (
	sampleCode    = "000000"
	sampleMinutes = 10
	sampleOrigin  = "example.com"
)

// sampleData is the data a template is tried with.
func sampleData(brand string) TemplateData {
	return TemplateData{Brand: brand, Code: sampleCode, Minutes: sampleMinutes}
}

// Fit returns an error naming every configured template and locale that,
// rendered with a sample 6-digit code, takes more than maxParts SMS: every
// code job with it would be refused (too_long).
func (r *Renderer) Fit(maxParts int) error {
	var long []string
	for _, name := range slices.Sorted(maps.Keys(r.templates)) {
		for _, locale := range slices.Sorted(maps.Keys(r.templates[name])) {
			var b strings.Builder
			if r.templates[name][locale].Execute(&b, sampleData(r.brand)) != nil {
				continue // NewRenderer refused templates that fail with the sample
			}
			if _, parts := Segments(b.String()); parts > maxParts {
				long = append(long, fmt.Sprintf("%q (%d SMS)", name+"/"+locale, parts))
			}
		}
	}
	if len(long) > 0 {
		return fmt.Errorf("template %s: more than the maximum of %d SMS a message may take, so every job with it would be refused (too_long)",
			strings.Join(long, ", "), maxParts)
	}
	return nil
}

// Check returns a warning for every configured template and locale (and the
// built-in default) that, rendered with a sample 6-digit code, needs UCS-2
// (70 characters per SMS instead of 160) or more than one SMS, alone or
// followed by an origin line ("@example.com #000000"; an app hash line adds
// 12 more characters). They are meant to be printed at start: a template
// that does not fit one SMS costs more, may arrive in pieces and, with an
// app hash, is not read by Android's SMS Retriever (140 bytes at most). The
// warnings are sorted and name the template, never a code.
func (r *Renderer) Check() []string {
	var warnings []string
	for _, name := range slices.Sorted(maps.Keys(r.templates)) {
		for _, locale := range slices.Sorted(maps.Keys(r.templates[name])) {
			id := name + "/" + locale
			var b strings.Builder
			if err := r.templates[name][locale].Execute(&b, sampleData(r.brand)); err != nil {
				// NewRenderer refused templates that fail with the sample.
				warnings = append(warnings, fmt.Sprintf("template %q cannot be rendered with a sample code", id))
				continue
			}
			enc, parts := Segments(b.String())
			_, withOrigin := Segments(withCodeLines(b.String(), sampleCode, sampleOrigin, ""))
			var problems []string
			if enc == EncodingUCS2 {
				problems = append(problems, fmt.Sprintf("needs UCS-2 (%d characters per SMS)", ucs2Single))
			}
			switch {
			case parts > 1 && withOrigin > parts:
				problems = append(problems, fmt.Sprintf("is sent as %d SMS (%d with an origin line)", parts, withOrigin))
			case parts > 1:
				problems = append(problems, fmt.Sprintf("is sent as %d SMS", parts))
			case withOrigin > 1:
				problems = append(problems, fmt.Sprintf("is sent as %d SMS with an origin line", withOrigin))
			}
			if len(problems) > 0 {
				warnings = append(warnings, fmt.Sprintf("template %q %s", id, strings.Join(problems, " and ")))
			}
		}
	}
	return warnings
}
