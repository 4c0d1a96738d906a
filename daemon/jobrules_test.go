package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/config"
	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/otp"
)

// TestJobRulesOnBothPaths: the code length, plain-text and message size
// rules refuse a job alike on otp.request and on otp.send, with the same
// reason and field, and nothing reaches the modem.
func TestJobRulesOnBothPaths(t *testing.T) {
	long := strings.Repeat("x", 320) // 3 GSM-7 parts with any code
	for _, tc := range []struct {
		name   string
		setup  func(*config.Config)
		job    map[string]any
		reason otp.Reason
		field  string
		detail string
	}{
		{name: "5-digit code under the default minimum",
			job:    map[string]any{"to": "+4526227921", "code": "12345"},
			reason: otp.ReasonInvalidCode, field: "code", detail: "at least 6 digits"},
		{name: "7-digit code under a minimum of 8",
			setup:  func(c *config.Config) { c.OTP.MinCodeDigits = 8 },
			job:    map[string]any{"to": "+4526227921", "code": "1234567"},
			reason: otp.ReasonInvalidCode, field: "code", detail: "at least 8 digits"},
		{name: "text off by default",
			job:    map[string]any{"to": "+4526227921", "text": "hello"},
			reason: otp.ReasonTextDisabled, field: "text"},
		{name: "text over max_parts",
			setup:  func(c *config.Config) { c.OTP.AllowText = true; c.OTP.MaxParts = 2 },
			job:    map[string]any{"to": "+4526227921", "text": long},
			reason: otp.ReasonTooLong, field: "text", detail: "takes 3 SMS, more than the maximum 2"},
		{name: "31 parts are not one",
			// The longest text (1000 characters) outside the BMP: 33 per
			// UCS-2 part, as a surrogate pair is never split.
			setup:  func(c *config.Config) { c.OTP.AllowText = true; c.OTP.MaxParts = 30 },
			job:    map[string]any{"to": "+4526227921", "text": strings.Repeat("😀", otp.MaxTextLen)},
			reason: otp.ReasonTooLong, field: "text", detail: "takes 31 SMS, more than the maximum 30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, "m1", 0)
			cfg := testConfig(t.TempDir(), s)
			if tc.setup != nil {
				tc.setup(&cfg)
			}
			h := start(t, cfg)
			check := func(path, reason otp.Reason, field, detail string) {
				t.Helper()
				if reason != tc.reason || field != tc.field || !strings.Contains(detail, tc.detail) {
					t.Errorf("%s: rejected %s (field %q): %q; want %s (field %q): %q", path, reason, field, detail, tc.reason, tc.field, tc.detail)
				}
				if code, _ := tc.job["code"].(string); code != "" && strings.Contains(detail, code) {
					t.Errorf("%s: detail %q shows the code", path, detail)
				}
			}

			req := job(tc.job, "req")
			r := h.request(req)
			if r.Status != otp.ReplyRejected {
				t.Fatalf("otp.request: %+v, want rejected", r)
			}
			check("otp.request", r.Reason, r.Field, r.Detail)

			h.publish(job(tc.job, "queued"))
			evs := h.waitFinal("queued")
			last := evs[len(evs)-1]
			if len(evs) != 1 || last.Type != otp.StateRejected {
				t.Fatalf("otp.send: events %s, want rejected", types(evs))
			}
			// A refusal of otp.request is its reply alone: nothing stored.
			h.noStoredEvents("req")
			check("otp.send", last.Reason, last.Field, last.Detail)

			// A good job after them is the first SMS the modem sees.
			h.publish(map[string]any{"id": "good", "to": "+4526227921", "code": "86420975"})
			if got := types(h.waitFinal("good")); got != "accepted,sent" {
				t.Fatalf("good job: %s", got)
			}
			if m := waitMessage(t, s); !strings.Contains(m.Text, "86420975") {
				t.Errorf("first SMS is not the good job's")
			}
		})
	}
}

// job returns a copy of j with id.
func job(j map[string]any, id string) map[string]any {
	c := map[string]any{"id": id}
	for k, v := range j {
		c[k] = v
	}
	return c
}

// TestPartsCountInTheLimits: a message of N SMS is N sends in its
// number's window, on both paths.
func TestPartsCountInTheLimits(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.OTP.AllowText = true
	cfg.OTP.MaxParts = 4
	cfg.Policy.Number = []config.Window{{Limit: 5, Period: 10 * time.Minute}}
	h := start(t, cfg)
	text := func(parts int) string { return strings.Repeat("a", parts*153) }

	// 4 parts on otp.send, then 2 on otp.request: one too many.
	h.publish(map[string]any{"id": "four", "to": "+4526227921", "text": text(4)})
	evs := h.waitFinal("four")
	if last := evs[len(evs)-1]; last.Type != otp.StateSent || last.Parts != 4 {
		t.Fatalf("4-part job: %s (%+v)", types(evs), last)
	}
	r := h.request(map[string]any{"id": "two", "to": "+4526227921", "text": text(2)})
	if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonRateLimited || r.Scope != otp.ScopeNumber || r.RetryAfter <= 0 {
		t.Fatalf("2-part job after 4 parts in a window of 5: %+v", r)
	}
	// One part still fits, on either path; then the window is full.
	if r := h.request(map[string]any{"id": "one", "to": "+4526227921", "code": "123456"}); r.Status != otp.ReplyAccepted {
		t.Fatalf("1-part job: %+v", r)
	}
	h.publish(map[string]any{"id": "more", "to": "+4526227921", "code": "654321"})
	evs = h.waitFinal("more")
	if last := evs[len(evs)-1]; last.Type != otp.StateRejected || last.Reason != otp.ReasonRateLimited {
		t.Errorf("a 6th part: %s (%+v)", types(evs), last)
	}
	// Another number has its own window.
	if r := h.request(map[string]any{"id": "other", "to": "+4540404040", "text": text(4)}); r.Status != otp.ReplyAccepted {
		t.Errorf("4 parts to another number: %+v", r)
	}
	h.waitFinal("one")
	h.waitFinal("other")
	for range 3 {
		waitMessage(t, s)
	}
	if got, want := len(s.Submissions()), 4+1+4; got != want {
		t.Errorf("%d PDUs, want %d", got, want)
	}
}

// TestTemplateOverMaxParts: a template that takes more SMS than
// otp.max_parts would have every job with it refused (too_long), so it
// fails the start, before anything is created in NATS.
func TestTemplateOverMaxParts(t *testing.T) {
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	cfg.OTP.MaxParts = 2
	cfg.OTP.Templates = map[string]map[string]string{"long": {"en": strings.Repeat("x", 320) + " {{.Code}}"}}
	d, err := daemon.Start(t.Context(), cfg, nil, "test")
	if err == nil {
		d.Stop(context.Background())
		t.Fatal("started with a template over otp.max_parts")
	}
	if !strings.Contains(err.Error(), `template "long/en" (3 SMS): more than the maximum of 2`) {
		t.Errorf("error %q does not name the template and the limit", err)
	}
}
