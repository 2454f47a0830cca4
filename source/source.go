// Package source is where the bytes of a .swt file come from: a local file,
// any io.ReaderAt, or a remote object read by byte ranges (an HTTP server in
// source/httpsrc, an S3-compatible object store in source/s3src).
//
// A Source is an io.ReaderAt with a size and a name, which is all that
// decode.NewReaderContext needs. decode hashes each buffer in the place the
// bytes landed, so a source need not be trusted, only bounded: a source that
// returns different bytes on a second read is caught by the digests, not
// believed.
//
// This package imports no network client, so a program that reads only local
// files pulls in none.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen"
)

// Source is a random-access byte source of a fixed size.
type Source interface {
	io.ReaderAt
	// ReadAtContext is ReadAt bounded by ctx.
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	// Size is the length of the object in bytes, fixed when it was opened.
	Size() int64
	// Name is the path or URL the source was opened from, for messages.
	Name() string
	Close() error
}

// Backend is a remote object read by byte ranges: what an HTTP server or an
// object store provides. The remote layer built on it (retries, the
// speculative first read, parallel parts, pinning one version of the
// object) is shared by every backend.
type Backend interface {
	// Name is the URL of the object, for messages.
	Name() string
	// ReadRange reads bytes [off, off+len(p)) of the object into p and
	// returns how many it read and what the response said of the object.
	// When version is not empty the bytes must come from that version
	// (If-Match on the ETag) or the call fails with an error wrapping
	// ErrChanged. A range past the end returns the bytes up to the end
	// and io.EOF. An error the caller may retry (a 5xx status, a reset
	// connection, a short body) is wrapped in a *TransientError.
	//
	// NewRemote holds every response to the first: info must be filled
	// whenever err is nil or io.EOF, and a Size or (when both are set)
	// a Version other than the first response's fails the read with
	// ErrChanged. n is never more than len(p). Bytes delivered before an
	// error are kept and the rest asked for again, except on the first
	// read, which has no version to pin them to and starts over.
	ReadRange(ctx context.Context, p []byte, off int64, version string) (n int, info Info, err error)
}

// Info is what a range response says of the whole object.
type Info struct {
	Size    int64  // total length of the object
	Version string // ETag (or version id) that pins this version; may be empty
}

// Error is a failed read of a source: which object, which byte range, and
// why. It wraps format.ErrIO, so errors.Is(err, format.ErrIO) holds, and the
// underlying cause (ErrChanged, a *StatusError, a network error).
type Error struct {
	Name string // path or URL
	Op   string // what was being done: "open", "read"
	Off  int64  // first byte of the range
	Len  int64  // length of the range
	Err  error
}

func (e *Error) Error() string {
	if e.Len <= 0 {
		return fmt.Sprintf("source: %s %s: %v", e.Op, e.Name, e.Err)
	}
	return fmt.Sprintf("source: %s %s bytes %d-%d: %v", e.Op, e.Name, e.Off, e.Off+e.Len-1, e.Err)
}

// Unwrap gives both format.ErrIO and the cause.
func (e *Error) Unwrap() []error { return []error{format.ErrIO, e.Err} }

// ErrChanged is the cause of an Error when the object changed between two
// requests: its ETag differs, or the server refused If-Match.
var ErrChanged = errors.New("object changed while it was read")

// StatusError is an unexpected HTTP status.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d", e.Code) }

// TransientError marks a failure that a retry may cure.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// readerAt adapts an io.ReaderAt of known size.
type readerAt struct {
	r    io.ReaderAt
	size int64
	name string
}

// FromReaderAt is a Source over r, of size bytes, named name. Close does not
// close r.
func FromReaderAt(r io.ReaderAt, size int64, name string) Source {
	return &readerAt{r: r, size: size, name: name}
}

func (s *readerAt) ReadAt(p []byte, off int64) (int, error) {
	return s.ReadAtContext(context.Background(), p, off)
}

func (s *readerAt) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, &Error{Name: s.name, Op: "read", Off: off, Len: int64(len(p)), Err: err}
	}
	if off < 0 || off > s.size {
		return 0, &Error{Name: s.name, Op: "read", Off: off, Len: int64(len(p)), Err: errors.New("offset out of range")}
	}
	if rem := s.size - off; int64(len(p)) > rem {
		n, err := s.r.ReadAt(p[:rem], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return s.r.ReadAt(p, off)
}

func (s *readerAt) Size() int64  { return s.size }
func (s *readerAt) Name() string { return s.name }
func (s *readerAt) Close() error { return nil }

// file is a Source over a local file it owns.
type file struct {
	readerAt
	f *os.File
}

// OpenFile opens the local file at path as a Source. Like decode.Open, it
// refuses a FIFO, a device or a directory (format.ErrNotRegular) before
// anything reads it; Close closes the file.
func OpenFile(path string) (Source, error) {
	fh, st, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &file{readerAt: readerAt{r: fh, size: st.Size(), name: path}, f: fh}, nil
}

func (s *file) Close() error { return s.f.Close() }
