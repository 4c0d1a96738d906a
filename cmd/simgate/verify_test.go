package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem/modemsim"
	"github.com/simgate/simgate/otp"
)

// runOut runs simgate with args and returns what it printed on stdout and
// on stderr (where an error is printed too).
func runOut(args ...string) (stdout, stderr string, err error) {
	return runIn("", args...)
}

// runIn is runOut with stdin as the command's standard input.
func runIn(stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// codeIn is the code of a text rendered from the default template.
var codeIn = regexp.MustCompile(`code is (\d{6,10})\.`)

// serveSim runs "simgate serve" on a simulated modem of the test's own,
// whose SMS it can read, without a cooldown (a resend comes at once).
func serveSim(t *testing.T) (natsURL string, sim *modemsim.Modem) {
	t.Helper()
	sim, err := modemsim.Start(modemsim.Config{Name: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	file := filepath.Join(t.TempDir(), "simgate.yaml")
	body := "modems: [{name: m1, device: " + sim.Path() + "}]\npolicy: {cooldown: 0s}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return serveWith(t, "--config", file), sim
}

// smsCode waits until sim has taken n SMS and returns the code in the
// n-th.
func smsCode(t *testing.T, sim *modemsim.Modem, n int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if msgs := sim.Messages(); len(msgs) >= n {
			m := codeIn.FindStringSubmatch(msgs[n-1].Text)
			if m == nil {
				t.Fatalf("no code in SMS %d (%d characters)", n, len(msgs[n-1].Text))
			}
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SMS %d", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otherCode returns a code of code's length that is not code.
func otherCode(code string) string {
	w := strings.Repeat("0", len(code))
	if w == code {
		w = strings.Repeat("1", len(code))
	}
	return w
}

func TestVerifyAndCheck(t *testing.T) {
	url, sim := serveSim(t)
	var codes []string
	// noCode fails the test if a code sent or tried so far shows in what a
	// command printed.
	noCode := func(what, out, errOut string) {
		t.Helper()
		for _, c := range codes {
			if strings.Contains(out+errOut, c) {
				t.Errorf("%s printed a code:\n%s%s", what, out, errOut)
			}
		}
	}
	verify := func(args ...string) (otp.Reply, error) {
		t.Helper()
		out, errOut, err := runOut(append([]string{"verify", "--nats-url", url}, args...)...)
		var r otp.Reply
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &r) != nil {
			t.Fatalf("verify %s: %v, output:\n%s", args, err, out)
		}
		noCode("verify", out, errOut)
		return r, err
	}
	checkIn := func(stdin string, args ...string) (otp.CheckReply, error) {
		t.Helper()
		out, errOut, err := runIn(stdin, append([]string{"check", "--nats-url", url}, args...)...)
		var a otp.CheckReply
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &a) != nil {
			t.Fatalf("check: %v, output:\n%s", err, out)
		}
		noCode("check", out, errOut)
		return a, err
	}
	check := func(args ...string) (otp.CheckReply, error) {
		t.Helper()
		return checkIn("", args...)
	}

	r, err := verify("--to", "+45 26 22 79 21", "--id", "cli-v1")
	if err != nil || r.Status != otp.ReplyAccepted || r.ID != "cli-v1" || r.Verification != "cli-v1" || r.To != "+45******21" {
		t.Fatalf("verify: %+v %v", r, err)
	}
	code := smsCode(t, sim, 1)
	wrong := otherCode(code)
	codes = append(codes, code, wrong)
	if len(code) != 6 {
		t.Fatalf("a %d-digit code, want 6", len(code))
	}
	a, err := check("--id", "cli-v1", "--code", wrong)
	if exitCode(err) != exitNotApproved || a.Status != otp.CheckDenied || a.AttemptsLeft != 4 {
		t.Errorf("a wrong code: %+v, exit %d (%v)", a, exitCode(err), err)
	}
	// --code - takes the code from standard input, out of the shell's
	// history.
	a, err = checkIn(wrong+"\n", "--id", "cli-v1", "--code", "-")
	if exitCode(err) != exitNotApproved || a.Status != otp.CheckDenied || a.AttemptsLeft != 3 {
		t.Errorf("a wrong code on stdin: %+v, exit %d (%v)", a, exitCode(err), err)
	}
	a, err = checkIn(" "+code+"\r\nmore\n", "--to", "26227921", "--region", "DK", "--code", "-")
	if err != nil || a.Status != otp.CheckApproved || a.ID != "cli-v1" {
		t.Errorf("the right code by number, on stdin: %+v %v", a, err)
	}
	a, err = check("--id", "cli-v1", "--code", code)
	if exitCode(err) != exitNotApproved || a.Status != otp.CheckNotFound {
		t.Errorf("the right code again: %+v, exit %d (%v)", a, exitCode(err), err)
	}
	a, err = check("--id", "cli-v1", "--code", "12ab56")
	if exitCode(err) != exitRejected || a.Status != otp.CheckRejected || a.Reason != otp.ReasonInvalidCode {
		t.Errorf("a malformed code: %+v, exit %d (%v)", a, exitCode(err), err)
	}
	a, err = check("--id", "cli-v1", "--region", "DK", "--code", code)
	if exitCode(err) != exitRejected || a.Status != otp.CheckRejected || a.Field != "region" {
		t.Errorf("--region with --id: %+v, exit %d (%v)", a, exitCode(err), err)
	}

	// A random id, a longer code; a second start sends it again, --new
	// makes a new one.
	r, err = verify("--to", "+4526227922", "--digits", "8", "--ttl", "5m")
	if err != nil || r.Status != otp.ReplyAccepted || !otp.ValidID(r.ID) || r.Verification != r.ID {
		t.Fatalf("verify with a random id: %+v %v", r, err)
	}
	first := r.ID
	code = smsCode(t, sim, 2)
	codes = append(codes, code)
	if len(code) != 8 {
		t.Fatalf("a %d-digit code, want 8", len(code))
	}
	// (A resend asks for as long a ttl: a code with less than half of it
	// left is not sent again.)
	r, err = verify("--to", "+4526227922", "--digits", "8", "--ttl", "5m", "--id", "cli-v3")
	if err != nil || r.Status != otp.ReplyAccepted || !r.Resend || r.ID != "cli-v3" || r.Verification != first {
		t.Fatalf("a resend: %+v %v", r, err)
	}
	if again := smsCode(t, sim, 3); again != code {
		t.Error("the resend carried another code")
	}
	r, err = verify("--to", "+4526227922", "--digits", "8", "--id", "cli-v4", "--new")
	if err != nil || r.Status != otp.ReplyAccepted || r.Verification != "cli-v4" {
		t.Fatalf("--new: %+v %v", r, err)
	}
	newCode := smsCode(t, sim, 4)
	codes = append(codes, newCode)
	// The new code ended the old one.
	if a, err := check("--id", first, "--code", code); exitCode(err) != exitNotApproved || a.Status != otp.CheckNotFound {
		t.Errorf("the old code: %+v, exit %d (%v)", a, exitCode(err), err)
	}
	if a, err := check("--id", "cli-v4", "--code", newCode); err != nil || a.Status != otp.CheckApproved {
		t.Errorf("the new code: %+v %v", a, err)
	}

	r, err = verify("--to", "1-800-FLOWERS")
	if exitCode(err) != exitRejected || r.Status != otp.ReplyRejected || r.Reason != otp.ReasonInvalidNumber {
		t.Errorf("a bad number: %+v, exit %d (%v)", r, exitCode(err), err)
	}
	r, err = verify("--to", "+4526227923", "--digits", "5")
	if exitCode(err) != exitRejected || r.Reason != otp.ReasonInvalidCode || r.Field != "digits" {
		t.Errorf("--digits 5: %+v, exit %d (%v)", r, exitCode(err), err)
	}
}

// TestCheckFlags: id or number, not both, and a code; nothing is sent
// without them, and a code given as an argument is not echoed.
func TestCheckFlags(t *testing.T) {
	// No server listens there: a connection attempt would fail otherwise.
	url := "nats://" + freeAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--code", "918273"}, "[id to]"},
		{[]string{"--id", "v1", "--to", "+4526227921", "--code", "918273"}, "[id to]"},
		{[]string{"--id", "v1"}, `"code"`},
		{[]string{"--id", "v1", "918273"}, "give the code with --code"},
		{[]string{"--id", "v1", "--code", "-"}, "read the code from standard input: nothing there"},
	} {
		out, errOut, err := runOut(append([]string{"check", "--nats-url", url}, tc.args...)...)
		if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check %s: %v, want an error with %s", tc.args, err, tc.want)
		}
		if strings.Contains(out+errOut, "918273") {
			t.Errorf("check %s printed the code:\n%s%s", tc.args, out, errOut)
		}
	}
	if _, err := run("verify", "--nats-url", url, "--id", "v1"); err == nil || !strings.Contains(err.Error(), `"to"`) {
		t.Errorf("verify without --to: %v", err)
	}
}

func TestVerifyAndCheckWithoutDaemon(t *testing.T) {
	url := "nats://" + freeAddr(t)
	for _, args := range [][]string{
		{"verify", "--nats-url", url, "--to", "+4526227921", "--timeout", "5s"},
		{"check", "--nats-url", url, "--id", "v1", "--code", "918273", "--timeout", "5s"},
	} {
		out, errOut, err := runOut(args...)
		if err == nil || exitCode(err) != 1 || out != "" {
			t.Errorf("%s without a server: %v, output %q", args[0], err, out)
		}
		if strings.Contains(errOut, "918273") {
			t.Errorf("%s printed the code: %s", args[0], errOut)
		}
	}
}
