package main

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/safeweights/safeweights/internal/safeopen/safeopentest"
)

// Every command refuses a FIFO, /dev/zero, a directory and a symlink loop
// at once with exit code 3, and a FIFO named FILE.swt.sig does not hang
// verify --trusted. Each call runs under a 10 s failsafe.
func TestNonRegularInputs(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.key")
	good := filepath.Join(dir, "good.swt")
	quiet := func(args ...string) int {
		var out, errb bytes.Buffer
		return run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, args)
	}
	if c := quiet("keygen", "-o", key); c != 0 {
		t.Fatalf("keygen: exit %d", c)
	}
	writeSmall(t, good)
	t.Setenv("SAFEWEIGHTS_TRUSTED", key+".pub")
	for name, c := range safeopentest.Hostile(t) {
		p := c.Path
		for _, args := range [][]string{
			{"inspect", p}, {"inspect", "--json", p}, {"verify", p}, {"verify", "--trusted", key + ".pub", p},
			{"verify", "--integrity-only", p},
			{"diff", p, good}, {"diff", good, p}, {"extract", p, "--all", filepath.Join(dir, "x")},
			{"extract", p, "w", "-o", filepath.Join(dir, "w.npy")},
			{"convert", p, filepath.Join(dir, "out.swt")}, {"sign", p, "--key", key},
			{"sign", good, "--key", p}, {"verify", "--trusted", p, good},
			{"load", p}, {"load", "--dry-run", p},
		} {
			var out, errb bytes.Buffer
			code := 0
			safeopentest.Promptly(t, func() error {
				code = run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, args)
				return nil
			})
			if name == "dir" && args[1] == "--trusted" && args[2] == p {
				continue // a directory is a trust store; this one is empty
			}
			if code != exitError {
				t.Errorf("%s: %v: exit %d, want %d; stderr %s", name, args, code, exitError, errb.String())
			}
		}
	}
	// A FIFO where the detached signature would be.
	if err := syscall.Mkfifo(good+".sig", 0o600); err != nil {
		t.Skip(err)
	}
	var out, errb bytes.Buffer
	code := 0
	safeopentest.Promptly(t, func() error {
		code = run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, []string{"verify", "--trusted", key + ".pub", good})
		return nil
	})
	if code != exitError {
		t.Errorf("verify with a FIFO .sig: exit %d; stderr %s", code, errb.String())
	}
}
