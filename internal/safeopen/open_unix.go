//go:build unix

package safeopen

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func openNonblock(path string, flag int) (*os.File, error) {
	return os.OpenFile(path, flag|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
}

func clearNonblock(fh *os.File) error {
	rc, err := fh.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) })
	if err != nil {
		return err
	}
	return serr
}

func isDirErr(err error) bool { return errors.Is(err, syscall.EISDIR) }
