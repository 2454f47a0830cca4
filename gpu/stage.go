package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/safeweights/safeweights/format"
)

// mappedStager registers windows of the read-only file mapping. The driver
// pins the pages (faulting them in from the page cache) and the copy engine
// reads them straight from there: no CPU copy at all.
type mappedStager struct {
	dev     device
	mapping []byte // cap reaches the end of the mapping's last page
	times   *timers
}

func (m *mappedStager) stage(_ context.Context, w *window) ([]byte, func() error, error) {
	// The driver pins whole pages: the last window is registered to the end
	// of the file's last page, which the mapping covers, rather than to the
	// file's last byte.
	end := min(w.end, int64(cap(m.mapping)))
	if w.need > int64(len(m.mapping)) || w.off >= end {
		return nil, nil, fmt.Errorf("gpu: window [%d, %d) past the mapping of %d bytes: %w", w.off, w.need, len(m.mapping), format.ErrTruncated)
	}
	b := m.mapping[w.off:end:end]
	t0 := time.Now()
	err := m.dev.register(b)
	m.times.register.add(t0)
	if err != nil {
		return nil, nil, fmt.Errorf("gpu: registering file bytes [%d, %d): %w", w.off, end, err)
	}
	return b, func() error {
		t0 := time.Now()
		defer m.times.unregister.add(t0)
		return m.dev.unregister(b)
	}, nil
}

// readStager reads windows into a pool of pinned staging buffers. With an
// O_DIRECT file descriptor the reads bypass the page cache: the file's
// alignment puts every window on a page boundary, which O_DIRECT requires.
type readStager struct {
	read  func(b []byte, off int64) (int, error) // pread
	pool  chan []byte
	times *timers
}

func (r *readStager) stage(ctx context.Context, w *window) ([]byte, func() error, error) {
	var buf []byte
	select {
	case buf = <-r.pool:
	case <-ctx.Done():
		return nil, nil, context.Cause(ctx)
	}
	release := func() error { r.pool <- buf; return nil }
	b := buf[:w.len()]
	t0 := time.Now()
	defer r.times.read.add(t0)
	got := 0
	for int64(got) < w.need-w.off {
		n, err := r.read(b[got:], w.off+int64(got))
		got += n
		if err != nil || n == 0 {
			if int64(got) >= w.need-w.off {
				break
			}
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			_ = release()
			return nil, nil, fmt.Errorf("gpu: reading file bytes [%d, %d): %w: %w", w.off, w.need, format.ErrIO, err)
		}
		if ctx.Err() != nil {
			_ = release()
			return nil, nil, context.Cause(ctx)
		}
	}
	return b, release, nil
}
