package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/otp"
)

// TestOneIdentityPerJob replays the attacks on job ids of issue #10 through
// both subjects: an id is one job with one body, a job that was never
// admitted leaves nothing behind, and the stream's own deduplication never
// answers for the policy.
func TestOneIdentityPerJob(t *testing.T) {
	s := startSim(t, "m1", 0)
	h := start(t, testConfig(t.TempDir(), s))
	// publishAs queues a raw job on otp.send with a message id the
	// publisher chose.
	publishAs := func(msgID, body string) {
		t.Helper()
		msg := nats.NewMsg(otp.SubjectSend)
		msg.Data = []byte(body)
		msg.Header.Set(nats.MsgIdHdr, msgID)
		if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// handled waits until every job queued before it was handled: the one
	// modem takes jobs in order.
	sentinels := 0
	handled := func() {
		t.Helper()
		sentinels++
		id := fmt.Sprint("sentinel-", sentinels)
		h.publish(map[string]any{"id": id, "to": fmt.Sprintf("+45404040%02d", sentinels), "code": "778899"})
		if got := types(h.waitFinal(id)); got != "accepted,sent" {
			t.Fatalf("%s: %s", id, got)
		}
	}
	sentTo := func(number string) int {
		n := 0
		for _, m := range s.Submissions() {
			if m.To == number {
				n++
			}
		}
		return n
	}

	t.Run("a job with a 1ns ttl does not poison its id", func(t *testing.T) {
		publishAs("x1", `{"id":"x1","to":"+4526227901","code":"111111","ttl":"1ns"}`)
		if ev := h.waitEvent("x1"); ev.Type != otp.StateExpired {
			t.Fatalf("the 1ns job: %+v, want expired", ev)
		}
		r := h.request(map[string]any{"id": "x1", "to": "+4526227901", "code": "222222"})
		if r.Status != otp.ReplyAccepted || r.Duplicate {
			t.Fatalf("the real job: %+v, want accepted, not a duplicate", r)
		}
		if got := types(h.waitFinal("x1")); got != "accepted,sent" {
			t.Fatalf("the real job: %s", got)
		}
	})

	t.Run("an id refused on otp.send is usable on otp.request", func(t *testing.T) {
		publishAs("rj1", `{"id":"rj1","to":"+4526227902","code":"333333","template":"nope"}`)
		if ev := h.waitEvent("rj1"); ev.Type != otp.StateRejected || ev.Reason != otp.ReasonUnknownTemplate {
			t.Fatalf("the refused job: %+v", ev)
		}
		r := h.request(map[string]any{"id": "rj1", "to": "+4526227902", "code": "333333"})
		if r.Status != otp.ReplyAccepted || r.Duplicate {
			t.Fatalf("otp.request: %+v, want accepted, not a duplicate", r)
		}
		if got := types(h.waitFinal("rj1")); got != "accepted,sent" {
			t.Fatalf("it must be queued and sent: %s", got)
		}
	})

	t.Run("another body under an accepted id is not sent", func(t *testing.T) {
		const victim = "+4526227903"
		r := h.request(map[string]any{"id": "v1", "to": victim, "code": "444444"})
		if r.Status != otp.ReplyAccepted || r.Duplicate {
			t.Fatalf("the job: %+v", r)
		}
		if got := types(h.waitFinal("v1")); got != "accepted,sent" {
			t.Fatalf("the job: %s", got)
		}
		// Re-published with other codes (and the job's own body last),
		// each under a fresh message id: nothing passes the limits
		// unchecked, nothing is sent.
		for i, code := range []string{"555555", "666666", "777777", "888888", "444444"} {
			publishAs(fmt.Sprint("v1-again-", i), fmt.Sprintf(`{"id":"v1","to":%q,"code":%q}`, victim, code))
		}
		r = h.request(map[string]any{"id": "v1", "to": victim, "code": "999999"})
		if r.Status != otp.ReplyRejected || r.Reason != otp.ReasonIDConflict {
			t.Errorf("otp.request with another body: %+v, want id_conflict", r)
		}
		handled()
		if n := sentTo(victim); n != 1 {
			t.Errorf("%d SMS to the number, want 1", n)
		}
		// The conflicting copies wrote nothing into the job's events.
		deadline := time.After(200 * time.Millisecond)
		for {
			select {
			case ev := <-h.eventsOf("v1"):
				if ev.Type != otp.StateDelivered {
					t.Errorf("event of a conflicting copy on the job's subject: %+v", ev)
				}
				continue
			case <-deadline:
			}
			break
		}
		if body := scrape(t, h.d.MetricsAddr()); !strings.Contains(body, `simgate_jobs_rejected_total{reason="id_conflict"`) {
			t.Error("id conflicts not counted")
		}
	})

	t.Run("message ids claimed in advance do not swallow a request", func(t *testing.T) {
		// The stream drops a message whose Nats-Msg-Id it has seen in its
		// duplicate window. A publisher who could predict the id the
		// daemon queues an otp.request under would claim it first: the
		// request would answer accepted while nothing was queued. Claim
		// the id under every millisecond of the next seconds. On a slow
		// machine (the claims acknowledged only after the span they
		// cover), again over a longer span, with a fresh id.
		var r otp.Reply
		var id string
		for span := int64(1500); ; span *= 3 {
			if span > 15000 {
				t.Fatal("claims never acknowledged within the span they cover")
			}
			id = fmt.Sprint("px", span)
			from := time.Now().UnixMilli()
			for ms := from; ms < from+span; ms++ {
				msg := nats.NewMsg(otp.SubjectSend)
				msg.Data = fmt.Appendf(nil, `{"id":"claim-%d","to":"not a number"}`, ms)
				msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s.%d", id, ms))
				if _, err := h.js.PublishMsgAsync(msg); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-h.js.PublishAsyncComplete():
			case <-time.After(time.Duration(span) * time.Millisecond):
				continue
			}
			if time.Now().UnixMilli() >= from+span {
				continue
			}
			r = h.request(map[string]any{"id": id, "to": "+4526227904", "code": "121212"})
			if time.Now().UnixMilli() < from+span {
				break
			}
		}
		if r.Status != otp.ReplyAccepted || r.Duplicate {
			t.Fatalf("otp.request: %+v, want accepted", r)
		}
		if got := types(h.waitFinal(id)); got != "accepted,sent" {
			t.Fatalf("the request must be queued and sent: %s", got)
		}
	})
}
