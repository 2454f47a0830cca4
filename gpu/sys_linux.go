package gpu

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mincore reports in vec, one byte per page, which pages of b are resident.
// x/sys/unix has no wrapper for it on linux.
func mincore(b, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return e
	}
	return nil
}

// residency returns the fraction of the pages of the windows' ranges of the
// mapping that are in the page cache.
func residency(mapping []byte, p *plan) (float64, error) {
	var vec []byte
	var in, total int64
	for i := range p.windows {
		w := &p.windows[i]
		end := min(w.end, int64(len(mapping)))
		if w.off >= end {
			continue
		}
		pages := (end - w.off + int64(os.Getpagesize()) - 1) / int64(os.Getpagesize())
		if int64(cap(vec)) < pages {
			vec = make([]byte, pages)
		}
		v := vec[:pages]
		if err := mincore(mapping[w.off:end], v); err != nil {
			return 0, err
		}
		for _, b := range v {
			in += int64(b & 1)
		}
		total += pages
	}
	if total == 0 {
		return 1, nil
	}
	return float64(in) / float64(total), nil
}

// openDirect opens path for reads that bypass the page cache and checks
// with one aligned read that the file system accepts them.
func openDirect(path string, probe []byte) (fd int, err error) {
	fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if _, err := unix.Pread(fd, probe, 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func pread(fd int) func(b []byte, off int64) (int, error) {
	return func(b []byte, off int64) (int, error) {
		for {
			n, err := unix.Pread(fd, b, off)
			if err == unix.EINTR {
				continue
			}
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

func closeFD(fd int) error { return unix.Close(fd) }
