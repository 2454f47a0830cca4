//go:build !unix

package safeopen

import (
	"os"
)

// Without O_NONBLOCK the open itself may block on special files on such
// systems; Windows has no FIFOs in the file system namespace, and the fstat
// check still refuses devices and directories.
func openNonblock(path string, flag int) (*os.File, error) { return os.OpenFile(path, flag, 0) }

func clearNonblock(*os.File) error { return nil }

func isDirErr(error) bool { return false }
