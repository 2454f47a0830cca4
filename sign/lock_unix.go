//go:build unix

package sign

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive advisory lock (flock) on f, waiting for it
// until ctx is done. Signers of one file take it before they read the
// signature block they rewrite, so that none loses another's signature.
// The lock goes with the descriptor: closing f releases it.
func lockFile(ctx context.Context, f *os.File) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			if errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP) {
				return nil // a file system without locks: sign unlocked, as before
			}
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}
