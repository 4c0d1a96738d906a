package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/daemon"
	"github.com/simgate/simgate/natsauth"
	"github.com/simgate/simgate/otp"
)

// TestNoCodeOracle: an attacker with otp.request alone guesses a number's
// live code under fresh ids. The answers must not depend on whether a
// guess is the live code: the same guesses against a number whose code is
// another give the same distribution of answers, and no answer names
// another job or its state.
func TestNoCodeOracle(t *testing.T) {
	const guesses = 10000
	s := startSim(t, "m1", 0)
	cfg := testConfig(t.TempDir(), s)
	// An hour's cooldown keeps every retry_after in one range however long
	// the run takes.
	cfg.Policy.Cooldown = time.Hour
	// No log handler: 20,000 rejections are the point, not their lines.
	d, err := daemon.Start(context.Background(), cfg, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	nc, err := connectAs(cfg, d, natsauth.RolePublisher)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	request := func(job map[string]any) (otp.Reply, error) {
		b, _ := json.Marshal(job)
		msg, err := nc.Request(otp.SubjectRequest, b, 10*time.Second)
		if err != nil {
			return otp.Reply{}, err
		}
		var r otp.Reply
		return r, json.Unmarshal(msg.Data, &r)
	}
	const live = "004242" // number A's code; number B's is 999999
	for num, code := range map[string]string{"+4526227921": live, "+4526227931": "999999"} {
		if r, err := request(map[string]any{"id": "victim" + num[len(num)-2:], "to": num, "code": code}); err != nil || r.Status != otp.ReplyAccepted {
			t.Fatalf("victim job: %+v %v", r, err)
		}
	}
	signature := func(r otp.Reply) string {
		if r.RetryAfter > 0 && (r.RetryAfter < 3000 || r.RetryAfter > 3600) {
			return fmt.Sprintf("retry_after %g", r.RetryAfter)
		}
		return fmt.Sprintf("%s %s %s dup=%v of=%q state=%q resend=%v field=%s detail=%q",
			r.Status, r.Reason, r.Scope, r.Duplicate, r.DuplicateOf, r.State, r.Resend, r.Field, r.Detail)
	}
	var mu sync.Mutex
	dist := map[string]map[string]int{"A": {}, "B": {}}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				code := fmt.Sprintf("%06d", i) // 004242 is among them
				for target, num := range map[string]string{"A": "+4526227921", "B": "+4526227931"} {
					r, err := request(map[string]any{"id": fmt.Sprintf("g%s%d", target, i), "to": num, "code": code})
					sig := signature(r)
					if err != nil {
						sig = "error: " + err.Error()
					}
					mu.Lock()
					dist[target][sig]++
					mu.Unlock()
				}
			}
		})
	}
	for i := range guesses {
		work <- i
	}
	close(work)
	wg.Wait()
	if fmt.Sprint(dist["A"]) != fmt.Sprint(dist["B"]) {
		t.Errorf("answers differ with the live code:\nA %v\nB %v", dist["A"], dist["B"])
	}
	for sig := range dist["A"] {
		t.Logf("%d × %s", dist["A"][sig], sig)
	}
	if n := len(s.Submissions()); n > 2 {
		t.Errorf("%d SMS sent, want the 2 victims' only", n)
	}
}
