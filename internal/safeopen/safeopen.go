// Package safeopen opens files that come from strangers without blocking on
// them: a FIFO, a device, a directory or a symlink loop is refused with a
// failure kind (format.ErrNotRegular, format.ErrIO) before any read.
//
// On unix the file is opened with O_NONBLOCK, so opening a FIFO with no
// writer returns at once; it is then checked with fstat on the descriptor
// (not the path, which may be replaced meanwhile) and O_NONBLOCK is cleared
// before the file is handed out. See spec/SPEC.md section 7.
package safeopen

import (
	"errors"
	"io/fs"
	"os"

	"github.com/safeweights/safeweights/format"
)

// Open opens path read-only and returns the file and its fstat information.
// Anything but a regular file is refused with format.ErrNotRegular; a path
// that cannot be opened (missing, a symlink loop, no permission) gives
// format.ErrIO naming the path and the operation and wrapping the system's
// error, so errors.Is(err, fs.ErrNotExist) still holds.
func Open(path string) (*os.File, os.FileInfo, error) {
	return OpenFile(path, os.O_RDONLY)
}

// OpenFile is Open with flag (os.O_RDONLY or os.O_RDWR; O_CREATE is not
// meant for it).
func OpenFile(path string, flag int) (*os.File, os.FileInfo, error) {
	fh, err := openNonblock(path, flag)
	if err != nil {
		return nil, nil, openError(path, err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, ioError(path, err)
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, nil, NotRegular(path, st.Mode())
	}
	if err := clearNonblock(fh); err != nil {
		fh.Close()
		return nil, nil, ioError(path, err)
	}
	return fh, st, nil
}

// NotRegular is the error for a path that is not a regular file of mode m.
func NotRegular(path string, m fs.FileMode) error {
	return &format.FormatError{Kind: format.ErrNotRegular, Offset: -1, Field: path,
		Reason: "is a " + describe(m) + ", not a regular file"}
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

func openError(path string, err error) error {
	// A directory opened for writing fails with EISDIR before fstat.
	var pe *fs.PathError
	if errors.As(err, &pe) && isDirErr(pe.Err) {
		return NotRegular(path, fs.ModeDir)
	}
	return ioError(path, err)
}

func ioError(path string, err error) error {
	// The path is the field already: a *fs.PathError of the same path
	// would print it twice.
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return &format.FormatError{Kind: format.ErrIO, Offset: -1, Field: path, Reason: pe.Op, Err: pe.Err}
	}
	return &format.FormatError{Kind: format.ErrIO, Offset: -1, Field: path, Err: err}
}
