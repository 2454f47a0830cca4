//go:build unix

package safeopen_test

import "golang.org/x/sys/unix"

func fcntlFlags(fd uintptr) (int, error) { return unix.FcntlInt(fd, unix.F_GETFL, 0) }
