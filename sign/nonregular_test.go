package sign_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen/safeopentest"
	"github.com/safeweights/safeweights/sign"
)

// Signing a FIFO, a device, a directory or a symlink loop fails at once with
// a kind; so does a detached signature that is not a regular file.
func TestNonRegular(t *testing.T) {
	for name, c := range safeopentest.Hostile(t) {
		for _, detached := range []bool{false, true} {
			err := safeopentest.Promptly(t, func() error {
				opts := []sign.SignOption{sign.WithTimestamp(ts0)}
				if detached {
					opts = append(opts, sign.WithDetached())
				}
				return sign.Sign(context.Background(), c.Path, key(1), opts...)
			})
			if !errors.Is(err, c.Kind) && !(name == "dev-zero" && !detached && errors.Is(err, format.ErrIO)) {
				t.Errorf("Sign %s (detached %v): %v, want kind %s", name, detached, err, c.Kind.Name())
			}
		}
		err := safeopentest.Promptly(t, func() error { return sign.RemoveSignatures(c.Path) })
		if format.KindOf(err) == nil {
			t.Errorf("RemoveSignatures %s: %v, want a kind", name, err)
		}
	}
}

func TestDetachedFIFO(t *testing.T) {
	dir := t.TempDir()
	path := smallFile(t, dir, format.BLAKE3)
	if err := syscall.Mkfifo(sign.DetachedPath(path), 0o600); err != nil {
		t.Skip(err)
	}
	err := safeopentest.Promptly(t, func() error { _, err := sign.ReadDetached(path); return err })
	if !errors.Is(err, format.ErrNotRegular) {
		t.Fatalf("ReadDetached of a FIFO: %v", err)
	}
	os.Remove(sign.DetachedPath(path))
}
