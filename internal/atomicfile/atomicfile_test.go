package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCommitPlacesWholeFile(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.bin")
	w, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	// Larger than one segment, and not a multiple of it.
	want := bytes.Repeat([]byte("0123456789abcdef"), (3*segment+5)/16)
	if n, err := w.Write(want); err != nil || n != len(want) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if _, err := w.WriteAt([]byte("HEAD"), 0); err != nil {
		t.Fatal(err)
	}
	copy(want, "HEAD")
	if w.Offset() != int64(len(want)) {
		t.Fatalf("offset %d, want %d", w.Offset(), len(want))
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("destination exists before Commit: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("content differs (%d bytes, %v)", len(got), err)
	}
	st, _ := os.Stat(dst)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := os.Stat(dst); err != nil {
		t.Errorf("Abort after Commit removed the file: %v", err)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new bytes"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("destination %q after Abort, want the old file", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCommitFailureRemovesTemporary(t *testing.T) {
	dir := t.TempDir()
	// The destination is a non-empty directory: the rename fails.
	dst := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(dst, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Commit(); err == nil {
		t.Fatal("Commit over a non-empty directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
