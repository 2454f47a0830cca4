package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// A file truncated after extract has read a tensor must not crash the
// process with SIGBUS: extract writes from its own copy of the verified
// bytes, never from a view of the mapping outside decode's fault guard.
func TestExtractTruncatedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.swt")
	w, err := encode.Create(path, encode.WithAlignment(4096))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if err := w.Add(n, format.F32, []int64{64 << 10}, bytes.Repeat([]byte{7}, 256<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	testHookRead = func() {
		if err := os.Truncate(path, 8192); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookRead = nil }()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"extract", path, "b", "-o", filepath.Join(dir, "b.npy")},
		{"extract", path, "--all", filepath.Join(dir, "all")},
	} {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, args)
		// The bytes read before the truncation are the command's own and
		// are written as verified; a later read of --all fails with the io
		// kind (exit 3).
		if code != exitOK && code != exitError {
			t.Errorf("%v: exit %d; stderr %s", args, code, errb.String())
		}
	}
}
