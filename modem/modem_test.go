package modem_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/modem/modemsim"
)

func startSim(t *testing.T, cfg modemsim.Config) *modemsim.Modem {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sim"
	}
	s, err := modemsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func open(t *testing.T, s *modemsim.Modem, tweak func(*modem.Config)) *modem.Modem {
	t.Helper()
	cfg := modem.Config{Name: "m1", Device: s.Path(), CommandTimeout: 2 * time.Second, SendTimeout: 5 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := modem.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestOpenAndSend(t *testing.T) {
	s := startSim(t, modemsim.Config{FirstMR: 254})
	m := open(t, s, nil)
	if inf := m.Info(); inf.Manufacturer != "simgate" || inf.Model != "SIM-1" {
		t.Errorf("info = %+v", inf)
	}
	ctx := context.Background()
	for i, want := range []int{254, 255, 0} { // the reference wraps
		res, err := m.Send(ctx, "+4526227921", "Your code is 034812")
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if len(res.Refs) != 1 || res.Refs[0] != want {
			t.Errorf("send %d: refs %v, want [%d]", i, res.Refs, want)
		}
	}
	subs := s.Submissions()
	if len(subs) != 3 {
		t.Fatalf("%d submissions", len(subs))
	}
	if sub := subs[0]; sub.To != "+4526227921" || sub.Text != "Your code is 034812" || sub.Encoding != "gsm7" || sub.Parts != 1 {
		t.Errorf("submission = %+v", sub)
	}
}

func TestSendEncodings(t *testing.T) {
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	long := strings.Repeat("0123456789", 40) // 400 GSM-7 characters: 3 parts of 153
	for _, tc := range []struct {
		name, text, encoding string
		parts                int
	}{
		{"gsm7", "Din kode er 034812", "gsm7", 1},
		{"gsm7 extension", "Code {034812} €", "gsm7", 1},
		{"ucs2", "Ваш код 034812", "ucs2", 1},
		{"long", long, "gsm7", 3},
		{"long again", long, "gsm7", 3},
		{"long ucs2", strings.Repeat("код ", 30), "ucs2", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Messages())
			res, err := m.Send(context.Background(), "+4526227921", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Refs) != tc.parts {
				t.Errorf("%d refs, want %d", len(res.Refs), tc.parts)
			}
			msgs := s.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("sim completed %d messages, want 1", len(msgs)-before)
			}
			got := msgs[len(msgs)-1]
			if got.Text != tc.text || got.Encoding != tc.encoding || got.Parts != tc.parts {
				t.Errorf("message = %q %s %d parts", got.Text, got.Encoding, got.Parts)
			}
		})
	}
	// Two long messages must carry different concatenation references, or
	// a phone mixes up their parts.
	refs := map[int]bool{}
	for _, sub := range s.Submissions() {
		if sub.Parts > 1 && sub.Part == 1 {
			if refs[sub.ConcatRef] {
				t.Errorf("concatenation reference %d reused", sub.ConcatRef)
			}
			refs[sub.ConcatRef] = true
		}
	}
	if len(refs) != 3 {
		t.Errorf("%d long messages seen, want 3", len(refs))
	}
}

func TestSIMPIN(t *testing.T) {
	for _, tc := range []struct {
		name string
		pin  string
		want error
	}{
		{"right pin", "1234", nil},
		{"no pin configured", "", modem.ErrSIMPINRequired},
		{"wrong pin", "0000", modem.ErrWrongPIN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, modemsim.Config{PIN: "1234"})
			m, err := modem.Open(context.Background(), modem.Config{Name: "m1", Device: s.Path(), PIN: tc.pin, CommandTimeout: 2 * time.Second})
			if !errors.Is(err, tc.want) {
				t.Fatalf("open: %v, want %v", err, tc.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), "0000") {
					t.Errorf("error reveals the PIN: %v", err)
				}
				return
			}
			defer m.Close()
			if _, err := m.Send(context.Background(), "+4526227921", "after pin"); err != nil {
				t.Errorf("send after PIN: %v", err)
			}
		})
	}
}

func TestSIMPUK(t *testing.T) {
	// Opened again and again with a wrong PIN (as a careless client
	// would), the driver spends two tries and refuses the last one.
	s := startSim(t, modemsim.Config{PIN: "1234"})
	var err error
	for range 3 {
		var m *modem.Modem
		if m, err = modem.Open(context.Background(), modem.Config{Device: s.Path(), PIN: "9999", CommandTimeout: 2 * time.Second}); err == nil {
			m.Close()
		}
	}
	if !errors.Is(err, modem.ErrPINLastTry) {
		t.Fatalf("third open: %v, want ErrPINLastTry", err)
	}
	// A SIM locked elsewhere.
	s = startSim(t, modemsim.Config{PIN: "1234", PINTriesUsed: 3})
	_, err = modem.Open(context.Background(), modem.Config{Device: s.Path(), PIN: "1234", CommandTimeout: 2 * time.Second})
	if !errors.Is(err, modem.ErrSIMPUK) {
		t.Fatalf("open: %v, want ErrSIMPUK", err)
	}
}

func TestSendErrors(t *testing.T) {
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	for _, tc := range []struct {
		code  int
		class modem.Class
	}{
		{42, modem.Retryable},
		{1, modem.Permanent},
		{331, modem.Retryable},
		{500, modem.Retryable},
	} {
		s.FailNextSends(tc.code)
		_, err := m.Send(context.Background(), "+4526227921", "x")
		var se *modem.SendError
		if !errors.As(err, &se) || se.Class != tc.class || se.Broken {
			t.Errorf("CMS %d: %v, want %s", tc.code, err, tc.class)
		}
	}
	// The modem still works after errors.
	if _, err := m.Send(context.Background(), "+4526227921", "ok"); err != nil {
		t.Errorf("send after errors: %v", err)
	}
}

// Unsolicited result codes that arrive while AT+CMGS waits for the network
// must not be taken for its answer.
func TestURCDuringSend(t *testing.T) {
	sending := make(chan struct{}, 1)
	s := startSim(t, modemsim.Config{SendDelay: time.Hour, FirstMR: 7, OnSending: func() { sending <- struct{}{} }})
	m := open(t, s, nil)
	type result struct {
		res modem.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := m.Send(context.Background(), "+4526227921", "Your code is 034812")
		done <- result{res, err}
	}()
	<-sending
	s.Inject(`+CMTI: "SM",3`)
	s.Inject("+CDS: 25", "0006D60B911326880736F4111011719551401110117195714000")
	s.Inject("+CREG: 1,\"00C3\",\"0000D9C1\"")
	s.SetSendDelay(0)
	r := <-done
	if r.err != nil {
		t.Fatalf("send: %v", r.err)
	}
	if len(r.res.Refs) != 1 || r.res.Refs[0] != 7 {
		t.Errorf("refs %v, want [7]", r.res.Refs)
	}
}

func TestHungModemTimesOutWithUnknownOutcome(t *testing.T) {
	sending := make(chan struct{}, 1)
	s := startSim(t, modemsim.Config{SendDelay: time.Hour, OnSending: func() { sending <- struct{}{} }})
	m := open(t, s, func(c *modem.Config) { c.SendTimeout = 300 * time.Millisecond })
	done := make(chan error, 1)
	go func() {
		_, err := m.Send(context.Background(), "+4526227921", "x")
		done <- err
	}()
	<-sending
	s.SetHung(true)
	s.SetSendDelay(0) // the SMS goes out, the answer is lost
	err := <-done
	var se *modem.SendError
	if !errors.As(err, &se) || se.Class != modem.Unknown || !se.Broken {
		t.Fatalf("send: %v, want unknown outcome, broken", err)
	}
	if n := len(s.Submissions()); n != 1 {
		t.Errorf("sim took %d SMS; the outcome was unknown to the driver, not to the network", n)
	}
}

// OK without "+CMGS: <mr>": the message went out (the simulator took it),
// so the outcome is unknown, not a plain failure to retry; the modem stays
// usable.
func TestOKWithoutCMGSIsUnknownOutcome(t *testing.T) {
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	s.OmitNextCMGS(1)
	_, err := m.Send(context.Background(), "+4526227921", "x")
	var se *modem.SendError
	if !errors.As(err, &se) || se.Class != modem.Unknown || se.Broken {
		t.Fatalf("send: %v, want unknown outcome, not broken", err)
	}
	if n := len(s.Submissions()); n != 1 {
		t.Errorf("sim took %d SMS, want 1", n)
	}
	if _, err := m.Send(context.Background(), "+4526227921", "ok"); err != nil {
		t.Errorf("send after: %v", err)
	}
}

func TestUnplugClosesTheModem(t *testing.T) {
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	s.Close()
	select {
	case <-m.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("Closed did not fire after the line hung up")
	}
	_, err := m.Send(context.Background(), "+4526227921", "x")
	var se *modem.SendError
	if !errors.As(err, &se) || !se.Broken || se.Class != modem.Retryable {
		t.Errorf("send on an unplugged modem: %v, want retryable (nothing was handed over), broken", err)
	}
}

func TestOpenFails(t *testing.T) {
	_, err := modem.Open(context.Background(), modem.Config{Device: t.TempDir() + "/nope"})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("open missing device: %v", err)
	}
	// A hung modem: Open gives up when ctx ends.
	s := startSim(t, modemsim.Config{})
	s.SetHung(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = modem.Open(ctx, modem.Config{Device: s.Path(), CommandTimeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("open hung modem: %v", err)
	}
}

func TestRandomFailures(t *testing.T) {
	s := startSim(t, modemsim.Config{FailRate: 1, FailCodes: []int{38}})
	m := open(t, s, nil)
	for range 3 {
		_, err := m.Send(context.Background(), "+4526227921", "x")
		var se *modem.SendError
		if !errors.As(err, &se) || se.Code != "38" || se.Class != modem.Retryable {
			t.Fatalf("send: %v, want retryable +CMS ERROR: 38", err)
		}
	}
	// Half the sends fail, the same ones for the same seed.
	outcomes := func() string {
		s := startSim(t, modemsim.Config{FailRate: 0.5, Seed: 7})
		m := open(t, s, nil)
		var b strings.Builder
		for range 20 {
			if _, err := m.Send(context.Background(), "+4526227921", "x"); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b := outcomes(), outcomes()
	if a != b || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("outcomes %s and %s", a, b)
	}
}
