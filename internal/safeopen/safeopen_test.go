//go:build unix

package safeopen_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen"
	"github.com/safeweights/safeweights/internal/safeopen/safeopentest"
)

func TestRefused(t *testing.T) {
	for name, c := range safeopentest.Hostile(t) {
		for _, flag := range []int{os.O_RDONLY, os.O_RDWR} {
			err := safeopentest.Promptly(t, func() error {
				fh, _, err := safeopen.OpenFile(c.Path, flag)
				if err == nil {
					fh.Close()
				}
				return err
			})
			if !errors.Is(err, c.Kind) {
				if flag == os.O_RDWR && name == "dev-zero" && errors.Is(err, format.ErrIO) {
					continue // no write permission on /dev/zero for some users
				}
				t.Errorf("%s (flag %#x): got %v, want kind %s", name, flag, err, c.Kind.Name())
			}
			if format.KindOf(err) == nil {
				t.Errorf("%s: no kind in %v", name, err)
			}
		}
	}
}

func TestMissingIsNotExist(t *testing.T) {
	_, _, err := safeopen.Open(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v", err)
	}
}

func TestRegular(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	fh, st, err := safeopen.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if st.Size() != 3 {
		t.Fatalf("size %d", st.Size())
	}
	var flags int
	rc, _ := fh.SyscallConn()
	rc.Control(func(fd uintptr) { flags, err = fcntlFlags(fd) })
	if err != nil {
		t.Fatal(err)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Fatal("O_NONBLOCK left set")
	}
	b := make([]byte, 3)
	if _, err := fh.ReadAt(b, 0); err != nil || string(b) != "abc" {
		t.Fatalf("read %q, %v", b, err)
	}
	// A symlink to a regular file is followed.
	l := p + ".link"
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	fh2, _, err := safeopen.Open(l)
	if err != nil {
		t.Fatal(err)
	}
	fh2.Close()
}
