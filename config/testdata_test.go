package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.err from what Load answers")

// cleanEnvironment keeps the caller's SIMGATE_* variables and state
// directories out of a test's configuration.
func cleanEnvironment(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", t.TempDir())
}

// TestValidExamples loads every testdata/valid-*.yml without a problem.
func TestValidExamples(t *testing.T) {
	cleanEnvironment(t)
	files, _ := filepath.Glob("testdata/valid-*.yml")
	if len(files) == 0 {
		t.Fatal("no testdata/valid-*.yml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(flags(t, "--config", f)); err != nil {
				t.Errorf("%s:\n%v", f, err)
			}
		})
	}
}

// TestInvalidExamples loads every testdata/invalid-*.yml and compares the
// error, line for line, with testdata/invalid-*.err. Run with -update to
// rewrite the .err files, then review the diff.
func TestInvalidExamples(t *testing.T) {
	cleanEnvironment(t)
	files, _ := filepath.Glob("testdata/invalid-*.yml")
	if len(files) == 0 {
		t.Fatal("no testdata/invalid-*.yml")
	}
	for _, f := range files {
		golden := strings.TrimSuffix(f, ".yml") + ".err"
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(flags(t, "--config", f))
			if err == nil {
				t.Fatalf("%s loads without error", f)
			}
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInvalidExamples -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot:\n%s\nwant (%s):\n%s", f, got, golden, want)
			}
		})
	}
	// A golden file without its example tests nothing.
	errs, _ := filepath.Glob("testdata/*.err")
	for _, e := range errs {
		if _, err := os.Stat(strings.TrimSuffix(e, ".err") + ".yml"); errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s has no .yml", e)
		}
	}
}
