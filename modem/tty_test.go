package modem_test

import (
	"context"
	"os"
	"testing"

	"github.com/simgate/simgate/modem/modemsim"
)

// TestOpenAboveDescriptor1023: a port whose file descriptor is above 1023
// (a daemon with a SIM bank and an embedded store has that many files
// open) works. go.bug.st/serial's port waited with select(2) and panicked
// on it (index out of range [16] with length 16).
func TestOpenAboveDescriptor1023(t *testing.T) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatalf("open file %d: %v (this test needs 1,100 open files)", len(files), err)
		}
		files = append(files, f)
		if f.Fd() > 1100 {
			break
		}
	}
	s := startSim(t, modemsim.Config{})
	m := open(t, s, nil)
	if _, err := m.Health(); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Send(context.Background(), "+4526227921", "Your code is 034812"); err != nil || len(res.Refs) != 1 {
		t.Fatalf("send: %v %v", res, err)
	}
}
