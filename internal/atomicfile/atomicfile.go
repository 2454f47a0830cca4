// Package atomicfile writes a file that appears at its destination whole or
// not at all: the bytes go to a temporary file in the same directory, which
// Commit syncs and renames into place and Abort removes. Every writer of the
// project (encode, the safetensors export, the converters through encode)
// writes through it, so they share one write path: large writes are handed
// to the kernel in segments whose writeback starts at once, so the disk
// works while the writer produces the next bytes instead of all at once in
// the final sync.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// segment is how much Write hands to the kernel before it asks for
// writeback.
const segment = 8 << 20

// File is a file being written. It is not safe for concurrent use.
type File struct {
	f    *os.File
	dst  string
	off  int64 // the write position
	done bool
}

// Create starts a file that Commit will place at dst, with mode 0644.
func Create(dst string) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, err
	}
	// CreateTemp makes the file private; the result is an ordinary file.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, dst: dst}, nil
}

// Write appends p, from p itself: no intermediate copy.
func (w *File) Write(p []byte) (int, error) {
	if w.done {
		return 0, os.ErrClosed
	}
	total := 0
	for len(p) > 0 {
		n := min(len(p), segment)
		m, err := w.f.Write(p[:n])
		w.off += int64(m)
		total += m
		if err != nil {
			return total, err
		}
		startWriteback(w.f, w.off-int64(m), int64(m))
		p = p[n:]
	}
	return total, nil
}

// WriteAt writes p at off, for a header or preamble reserved earlier. It
// does not move the write position.
func (w *File) WriteAt(p []byte, off int64) (int, error) {
	if w.done {
		return 0, os.ErrClosed
	}
	return w.f.WriteAt(p, off)
}

// Offset is the write position: the number of bytes appended so far.
func (w *File) Offset() int64 { return w.off }

// Name is the temporary file's path.
func (w *File) Name() string { return w.f.Name() }

// Commit syncs the file, renames it to its destination and syncs the
// directory. On error the temporary file is removed.
func (w *File) Commit() error {
	if w.done {
		return os.ErrClosed
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.dst)
	}
	w.done = true
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("%s: %w", w.dst, err)
	}
	syncDir(filepath.Dir(w.dst))
	return nil
}

// Abort discards the file. It is safe to call after Commit, where it does
// nothing.
func (w *File) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// syncDir makes a rename durable. Errors are ignored: some filesystems
// cannot sync a directory, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
