package atomicfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) to disk now,
// without waiting, so that the disk works while the writer hashes the next
// tensor instead of all at once in the final fsync. Errors are ignored: it
// is only a hint, and Close's fsync reports any real failure.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
