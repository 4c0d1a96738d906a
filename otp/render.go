package otp

import (
	"fmt"
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
			if err := t.Execute(&strings.Builder{}, TemplateData{Brand: brand, Code: "000000", Minutes: 10}); err != nil {
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
func (r *Renderer) Render(p Prepared) (string, error) {
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
	return b.String(), nil
}
