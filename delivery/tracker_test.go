package delivery

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/otp"
)

// recorder collects a tracker's outcomes and report fates.
type recorder struct {
	mu        sync.Mutex
	outcomes  []Outcome
	matched   int
	unmatched []modem.Report
	ch        chan Outcome
}

func newRecorder() *recorder { return &recorder{ch: make(chan Outcome, 10000)} }

func (r *recorder) config() Config {
	return Config{
		Notify: func(o Outcome) {
			r.mu.Lock()
			r.outcomes = append(r.outcomes, o)
			r.mu.Unlock()
			r.ch <- o
		},
		Reported: func(_ string, rep modem.Report, matched bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if matched {
				r.matched++
			} else {
				r.unmatched = append(r.unmatched, rep)
			}
		},
	}
}

func (r *recorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, o := range r.outcomes {
		out = append(out, o.Message.ID+":"+string(o.State))
	}
	return out
}

func TestTracker(t *testing.T) {
	sent := time.Now().Truncate(time.Second)
	msg := func(id string, refs ...int) Message {
		return Message{ID: id, Modem: "gsm0", To: "+4526227921", Refs: refs, Accepted: sent.Add(-time.Second), Sent: sent}
	}
	rep := func(mr int, st byte) modem.Report {
		return modem.Report{MR: mr, Recipient: "+4526227921", TPStatus: st, SCTS: sent, Discharge: sent.Add(3 * time.Second)}
	}
	type step struct {
		track  *Message
		modem  string // "" = gsm0
		report modem.Report
	}
	tests := []struct {
		name      string
		steps     []step
		want      []string
		matched   int
		unmatched int
		pending   int
	}{
		{
			name:    "single part delivered",
			steps:   []step{{track: ptr(msg("a", 5))}, {report: rep(5, 0x00)}},
			want:    []string{"a:delivered"},
			matched: 1,
		},
		{
			name:    "long message needs every part",
			steps:   []step{{track: ptr(msg("a", 5, 6, 7))}, {report: rep(6, 0)}, {report: rep(5, 0)}, {report: rep(7, 0)}},
			want:    []string{"a:delivered"},
			matched: 3,
		},
		{
			name:    "one part of three missing",
			steps:   []step{{track: ptr(msg("a", 5, 6, 7))}, {report: rep(6, 0)}, {report: rep(5, 0)}},
			want:    nil,
			matched: 2,
			pending: 1,
		},
		{
			name:    "pending once, then delivered",
			steps:   []step{{track: ptr(msg("a", 9))}, {report: rep(9, 0x21)}, {report: rep(9, 0x22)}, {report: rep(9, 0x00)}},
			want:    []string{"a:delivery_pending", "a:delivered"},
			matched: 3,
		},
		{
			name:      "permanent failure ends it; a later part's report matches nothing",
			steps:     []step{{track: ptr(msg("a", 1, 2))}, {report: rep(1, 0x41)}, {report: rep(2, 0x00)}},
			want:      []string{"a:delivery_failed"},
			matched:   1,
			unmatched: 1,
		},
		{
			name:    "validity expired",
			steps:   []step{{track: ptr(msg("a", 1))}, {report: rep(1, 0x46)}},
			want:    []string{"a:delivery_expired"},
			matched: 1,
		},
		{
			name:      "other recipient, same reference",
			steps:     []step{{track: ptr(msg("a", 1))}, {report: modem.Report{MR: 1, Recipient: "+4526227922"}}},
			unmatched: 1,
			pending:   1,
		},
		{
			name:      "other modem, same reference",
			steps:     []step{{track: ptr(msg("a", 1))}, {modem: "gsm1", report: rep(1, 0)}},
			unmatched: 1,
			pending:   1,
		},
		{
			name:    "report before Track is held and applied",
			steps:   []step{{report: rep(3, 0)}, {track: ptr(msg("a", 3))}},
			want:    []string{"a:delivered"},
			matched: 1,
		},
		{
			name:      "duplicate report after the end",
			steps:     []step{{track: ptr(msg("a", 3))}, {report: rep(3, 0)}, {report: rep(3, 0)}},
			want:      []string{"a:delivered"},
			matched:   1,
			unmatched: 1,
		},
		{
			name: "national recipient format",
			steps: []step{{track: ptr(msg("a", 4))},
				{report: modem.Report{MR: 4, Recipient: "26227921", TPStatus: 0}}},
			want:    []string{"a:delivered"},
			matched: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			tr := New(rec.config())
			defer tr.Close()
			for _, s := range tc.steps {
				if s.track != nil {
					tr.Track(*s.track)
					continue
				}
				name := s.modem
				if name == "" {
					name = "gsm0"
				}
				tr.Report(name, s.report)
			}
			tr.Flush()
			if got := rec.statuses(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("outcomes %v, want %v", got, tc.want)
			}
			if rec.matched != tc.matched || len(rec.unmatched) != tc.unmatched {
				t.Errorf("matched %d unmatched %d, want %d %d", rec.matched, len(rec.unmatched), tc.matched, tc.unmatched)
			}
			if tr.Pending() != tc.pending {
				t.Errorf("pending %d, want %d", tr.Pending(), tc.pending)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTrackerOutcomeFields(t *testing.T) {
	rec := newRecorder()
	now := time.Date(2026, 11, 23, 10, 0, 9, 0, time.UTC)
	cfg := rec.config()
	cfg.Now = func() time.Time { return now }
	tr := New(cfg)
	defer tr.Close()
	m := Message{ID: "a", Modem: "gsm0", To: "+4526227921", Refs: []int{1}, Accepted: now.Add(-9 * time.Second), Sent: now.Add(-5 * time.Second)}
	tr.Track(m)
	dt := now.Add(-time.Second)
	tr.Report("gsm0", modem.Report{MR: 1, Recipient: "+4526227921", TPStatus: 0x41, Discharge: dt})
	o := <-rec.ch
	if o.State != otp.StateDeliveryFailed || o.TPStatus != 0x41 || !o.Discharge.Equal(dt) || !o.At.Equal(now) || o.Message.ID != "a" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestTrackerTimeout(t *testing.T) {
	rec := newRecorder()
	cfg := rec.config()
	cfg.Timeout = 50 * time.Millisecond
	tr := New(cfg)
	defer tr.Close()
	tr.Track(Message{ID: "a", Modem: "gsm0", To: "+4526227921", Refs: []int{1, 2}})
	tr.Report("gsm0", modem.Report{MR: 1, Recipient: "+4526227921", TPStatus: 0})
	o := <-rec.ch
	if o.State != otp.StateDeliveryUnknown || o.TPStatus != -1 || o.Message.ID != "a" {
		t.Fatalf("outcome %+v", o)
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending %d", tr.Pending())
	}
	// The missing part's report, too late, matches nothing.
	tr.Report("gsm0", modem.Report{MR: 2, Recipient: "+4526227921", TPStatus: 0})
	tr.Flush()
	if len(rec.unmatched) != 1 || len(rec.statuses()) != 1 {
		t.Fatalf("unmatched %d outcomes %v", len(rec.unmatched), rec.statuses())
	}
}

func TestTrackerEarlyReportGivenUp(t *testing.T) {
	rec := newRecorder()
	cfg := rec.config()
	cfg.Early = 20 * time.Millisecond
	done := make(chan struct{})
	reported := cfg.Reported
	cfg.Reported = func(name string, r modem.Report, matched bool) {
		reported(name, r, matched)
		close(done)
	}
	tr := New(cfg)
	defer tr.Close()
	tr.Report("gsm0", modem.Report{MR: 1, Recipient: "+4526227921"})
	<-done // by the sweep timer, nothing else happening
	if len(rec.unmatched) != 1 {
		t.Fatalf("unmatched %d", len(rec.unmatched))
	}
	// Tracked later: the report is gone.
	tr.Track(Message{ID: "a", Modem: "gsm0", To: "+4526227921", Refs: []int{1}})
	if tr.Pending() != 1 {
		t.Fatalf("pending %d", tr.Pending())
	}
}

// TestTrackerWrap sends 700 messages through one modem, so that every
// reference is reused two or three times, with reports arriving in random
// order: each must reach its own message.
func TestTrackerWrap(t *testing.T) {
	rec := newRecorder()
	tr := New(rec.config())
	defer tr.Close()
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	const n = 700
	type sentPart struct {
		id  string
		rep modem.Report
	}
	var reports []sentPart
	mr := 250
	for i := range n {
		to := fmt.Sprintf("+45%08d", 20000000+i%40) // 40 recipients: each sees a reference again
		parts := 1 + i%3
		var refs []int
		sentAt := start.Add(time.Duration(i) * 5 * time.Second)
		for range parts {
			refs = append(refs, mr)
			reports = append(reports, sentPart{fmt.Sprint("job", i), modem.Report{MR: mr, Recipient: to, TPStatus: 0, SCTS: sentAt.Add(2 * time.Second)}})
			mr = (mr + 1) % 256
		}
		tr.Track(Message{ID: fmt.Sprint("job", i), Modem: "gsm0", To: to, Refs: refs, Sent: sentAt})
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(reports), func(i, j int) { reports[i], reports[j] = reports[j], reports[i] })
	for _, r := range reports {
		tr.Report("gsm0", r.rep)
	}
	tr.Flush()
	if len(rec.unmatched) != 0 || rec.matched != len(reports) {
		t.Fatalf("matched %d of %d, unmatched %d", rec.matched, len(reports), len(rec.unmatched))
	}
	got := map[string]int{}
	for _, o := range rec.outcomes {
		if o.State != otp.StateDelivered {
			t.Fatalf("outcome %+v", o)
		}
		got[o.Message.ID]++
	}
	if len(got) != n {
		t.Fatalf("%d messages delivered, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Fatalf("%s: %d outcomes", id, c)
		}
	}
	if tr.Pending() != 0 {
		t.Fatalf("pending %d", tr.Pending())
	}
}

// TestTrackerWrapSameRecipient: two waiting messages to one number share a
// reference; the service centre's timestamp tells them apart.
func TestTrackerWrapSameRecipient(t *testing.T) {
	rec := newRecorder()
	tr := New(rec.config())
	defer tr.Close()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	tr.Track(Message{ID: "old", Modem: "gsm0", To: "+4526227921", Refs: []int{7}, Sent: t0})
	tr.Track(Message{ID: "new", Modem: "gsm0", To: "+4526227921", Refs: []int{7}, Sent: t0.Add(20 * time.Minute)})
	tr.Report("gsm0", modem.Report{MR: 7, Recipient: "+4526227921", SCTS: t0.Add(20*time.Minute + 3*time.Second)})
	if got := rec.statuses(); fmt.Sprint(got) != "[new:delivered]" {
		t.Fatalf("got %v", got)
	}
	tr.Report("gsm0", modem.Report{MR: 7, Recipient: "+4526227921", SCTS: t0.Add(2 * time.Second), TPStatus: 0x41})
	if got := rec.statuses(); fmt.Sprint(got) != "[new:delivered old:delivery_failed]" {
		t.Fatalf("got %v", got)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	rec := newRecorder()
	tr := New(rec.config())
	defer tr.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			name := fmt.Sprint("gsm", w)
			for i := range 300 {
				to := fmt.Sprintf("+45%08d", 20000000+i)
				tr.Track(Message{ID: fmt.Sprint(name, "-", i), Modem: name, To: to, Refs: []int{i % 256}})
				tr.Report(name, modem.Report{MR: i % 256, Recipient: to})
			}
		})
	}
	wg.Wait()
	tr.Flush()
	if len(rec.outcomes) != 1200 || rec.matched != 1200 || tr.Pending() != 0 {
		t.Fatalf("outcomes %d matched %d pending %d", len(rec.outcomes), rec.matched, tr.Pending())
	}
}

func TestSameNumber(t *testing.T) {
	tests := []struct {
		e164, ra string
		want     bool
	}{
		{"+4526227921", "+4526227921", true},
		{"+4526227921", "4526227921", true},
		{"+4526227921", "26227921", true},
		{"+4526227921", "026227921", true},
		{"+4526227921", "+4526227922", false},
		{"+4526227921", "+26227921", false},
		{"+4526227921", "7921", false},
		{"+4526227921", "", false},
		{"+4526227921", "14526227921", false},
	}
	for _, tc := range tests {
		if got := SameNumber(tc.e164, tc.ra); got != tc.want {
			t.Errorf("SameNumber(%q, %q) = %v, want %v", tc.e164, tc.ra, got, tc.want)
		}
	}
}

// BenchmarkTrackReport measures following one message from Track to its
// delivered report, with 10,000 others waiting.
func BenchmarkTrackReport(b *testing.B) {
	tr := New(Config{})
	defer tr.Close()
	for i := range 10000 {
		tr.Track(Message{ID: fmt.Sprint(i), Modem: fmt.Sprint("gsm", i%16), To: fmt.Sprintf("+45%08d", 30000000+i), Refs: []int{i % 256}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		to := fmt.Sprintf("+45%08d", 20000000+i%1000000)
		tr.Track(Message{ID: "x", Modem: "gsm0", To: to, Refs: []int{i % 256}})
		tr.Report("gsm0", modem.Report{MR: i % 256, Recipient: to})
		i++
	}
}

// A report that matches nothing while no send is settling is given up at
// once; while one is, it is held.
func TestTrackerSettling(t *testing.T) {
	rec := newRecorder()
	cfg := rec.config()
	var settling bool
	cfg.Settling = func(name string) bool { return name == "gsm0" && settling }
	tr := New(cfg)
	defer tr.Close()
	tr.Report("gsm0", modem.Report{MR: 1, Recipient: "+4526227921"})
	if len(rec.unmatched) != 1 {
		t.Fatalf("unmatched %d, want 1 at once", len(rec.unmatched))
	}
	settling = true
	tr.Report("gsm0", modem.Report{MR: 2, Recipient: "+4526227921"})
	tr.Track(Message{ID: "a", Modem: "gsm0", To: "+4526227921", Refs: []int{2}})
	if got := rec.statuses(); fmt.Sprint(got) != "[a:delivered]" || len(rec.unmatched) != 1 || rec.matched != 1 {
		t.Fatalf("outcomes %v matched %d unmatched %d", got, rec.matched, len(rec.unmatched))
	}
	// Held while settling, given up when the send is settled.
	tr.Report("gsm0", modem.Report{MR: 3, Recipient: "+4526227921"})
	tr.Report("gsm1", modem.Report{MR: 3, Recipient: "+4526227921"})
	if len(rec.unmatched) != 2 {
		t.Fatalf("unmatched %d, want 2 (gsm1's at once)", len(rec.unmatched))
	}
	settling = false
	tr.Settled("gsm0")
	if len(rec.unmatched) != 3 {
		t.Fatalf("unmatched %d after Settled, want 3", len(rec.unmatched))
	}
}

// A message tracked again after a restart keeps the time it has left.
func TestTrackerTimeoutCountsFromSend(t *testing.T) {
	rec := newRecorder()
	cfg := rec.config()
	cfg.Timeout = time.Hour
	tr := New(cfg)
	defer tr.Close()
	tr.Track(Message{ID: "late", Modem: "gsm0", To: "+4526227921", Refs: []int{1}, Sent: time.Now().Add(-2 * time.Hour)})
	tr.Track(Message{ID: "fresh", Modem: "gsm0", To: "+4526227922", Refs: []int{1}, Sent: time.Now().Add(-time.Minute)})
	if o := <-rec.ch; o.Message.ID != "late" || o.State != otp.StateDeliveryUnknown {
		t.Fatalf("outcome %+v", o)
	}
	if tr.Pending() != 1 {
		t.Fatalf("pending %d, want 1 (fresh)", tr.Pending())
	}
}
