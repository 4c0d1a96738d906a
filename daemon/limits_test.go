package daemon_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/otp"
)

// TestLimitsHoldAcrossDaemons: 64 callers at once, through two daemons
// sharing one NATS, ask for codes to 300 distinct British numbers under a
// country limit of 100 an hour: no more than 100 are accepted, and the
// limit is reached (nothing else refused them).
func TestLimitsHoldAcrossDaemons(t *testing.T) {
	url := natsServer(t)
	m1, m2 := startSim(t, "m1", 0), startSim(t, "m2", 0)
	cfgA := testConfig(t.TempDir(), m1)
	cfgA.Node, cfgA.NATS.URL, cfgA.Metrics.Listen = "a", url, ""
	cfgA.Policy.Countries = map[string]int{"GB": 100}
	cfgA.Policy.GlobalPerMinute = 0
	a := start(t, cfgA)
	cfgB := testConfig(t.TempDir(), m2)
	cfgB.Node, cfgB.NATS.URL, cfgB.Metrics.Listen = "b", url, ""
	cfgB.Policy = cfgA.Policy
	cfgB.Policy.HashKeyFile = cfgA.PolicyKeyFile()
	b := start(t, cfgB)

	const requests = 300
	var accepted, refused, other atomic.Int32
	work := make(chan int)
	var wg sync.WaitGroup
	for c := range 64 {
		h := a
		if c%2 == 1 {
			h = b
		}
		wg.Go(func() {
			for i := range work {
				body, _ := json.Marshal(otp.Job{ID: fmt.Sprint("gb-", i), To: fmt.Sprintf("+4474001%05d", i), Code: "123456"})
				msg, err := h.nc.Request(otp.SubjectRequest, body, 20*time.Second)
				var r otp.Reply
				switch {
				case err != nil || json.Unmarshal(msg.Data, &r) != nil:
					other.Add(1)
				case r.Status == otp.ReplyAccepted:
					accepted.Add(1)
				case r.Status == otp.ReplyRejected && r.Reason == otp.ReasonRateLimited && r.Scope == otp.ScopeCountry:
					refused.Add(1)
				default:
					other.Add(1)
					t.Logf("reply %s", msg.Data)
				}
			}
		})
	}
	for i := range requests {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d accepted, %d refused by the country limit, %d other", accepted.Load(), refused.Load(), other.Load())
	if accepted.Load() != 100 || other.Load() != 0 {
		t.Errorf("%d accepted (%d other answers), want exactly the limit of 100", accepted.Load(), other.Load())
	}
}
