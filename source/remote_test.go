package source_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source"
)

// fake is a Backend over a byte slice that a test can change or break.
type fake struct {
	mu      sync.Mutex
	data    []byte
	version string
	calls   int
	// hook, if set, may replace a call's result.
	hook func(call int, p []byte, off int64) (int, source.Info, error, bool)
}

func (f *fake) Name() string { return "fake://object" }

func (f *fake) ReadRange(ctx context.Context, p []byte, off int64, version string) (int, source.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.hook != nil {
		if n, info, err, ok := f.hook(f.calls, p, off); ok {
			return n, info, err
		}
	}
	if version != "" && version != f.version {
		return 0, source.Info{Size: -1}, source.ErrChanged
	}
	info := source.Info{Size: int64(len(f.data)), Version: f.version}
	if off >= int64(len(f.data)) {
		return 0, info, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, info, io.EOF
	}
	return n, info, nil
}

var quick = source.WithBackoff(time.Millisecond, time.Millisecond)

func TestRemoteOptionsValidated(t *testing.T) {
	for _, o := range []source.RemoteOption{source.WithPartSize(0), source.WithConcurrency(0), source.WithAttempts(0),
		source.WithBackoff(time.Second, time.Millisecond), source.WithAttemptTimeout(-1), source.WithPrefetchLimit(-1)} {
		if _, err := source.NewRemote(context.Background(), &fake{data: []byte("x")}, o); err == nil {
			t.Error("invalid option accepted")
		}
	}
}

// TestRemoteSizeChanged: a response naming another size is a changed
// object, even from a backend that sends no version.
func TestRemoteSizeChanged(t *testing.T) {
	b := &fake{data: make([]byte, 10000)}
	r, err := source.NewRemote(context.Background(), b, quick)
	if err != nil {
		t.Fatal(err)
	}
	b.data = make([]byte, 20000)
	_, err = r.ReadAt(make([]byte, 100), 5000)
	if !errors.Is(err, source.ErrChanged) || !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
}

// TestRemoteBadBackend: a backend that claims more bytes than asked is an
// error, not a slice out of range.
func TestRemoteBadBackend(t *testing.T) {
	b := &fake{data: make([]byte, 10000)}
	r, err := source.NewRemote(context.Background(), b, quick)
	if err != nil {
		t.Fatal(err)
	}
	b.hook = func(call int, p []byte, off int64) (int, source.Info, error, bool) {
		return len(p) + 1, source.Info{Size: 10000}, nil, true
	}
	if _, err := r.ReadAt(make([]byte, 100), 5000); !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v, want ErrIO", err)
	}
}

// TestRemoteFirstReadRestarts: bytes of a failed first attempt are not
// kept: the retry, which may see another version, reads them again.
func TestRemoteFirstReadRestarts(t *testing.T) {
	b := &fake{data: bytes.Repeat([]byte{2}, 10000), version: "v2"}
	b.hook = func(call int, p []byte, off int64) (int, source.Info, error, bool) {
		if call == 1 {
			for i := range 100 {
				p[i] = 1
			}
			return 100, source.Info{Size: 10000, Version: "v1"}, &source.TransientError{Err: io.ErrUnexpectedEOF}, true
		}
		return 0, source.Info{}, nil, false
	}
	r, err := source.NewRemote(context.Background(), b, quick)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 200)
	if _, err := r.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, bytes.Repeat([]byte{2}, 200)) {
		t.Fatal("bytes of the failed attempt were kept")
	}
}

// TestRemoteEOF: reads past the end return the bytes to the end and io.EOF,
// as io.ReaderAt requires.
func TestRemoteEOF(t *testing.T) {
	b := &fake{data: bytes.Repeat([]byte{3}, 10000)}
	r, err := source.NewRemote(context.Background(), b, quick)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.ReadAt(make([]byte, 100), 9950)
	if n != 50 || err != io.EOF {
		t.Fatalf("got %d, %v; want 50, io.EOF", n, err)
	}
	if _, err := r.ReadAt(make([]byte, 1), 10001); !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v past the end, want ErrIO", err)
	}
}

// preamble returns 4 KiB that start with a preamble naming the given data
// region, the rest of a file of size bytes.
func preamble(size int, dataOff, dataLen uint64) []byte {
	b := make([]byte, size)
	copy(b, format.Magic[:])
	binary.LittleEndian.PutUint64(b[24:], dataOff)
	binary.LittleEndian.PutUint64(b[32:], dataLen)
	return b
}

// TestRemotePlanHostile: the preamble is untrusted: a data region that
// overflows, passes the end of the object or leaves a tail over the
// prefetch limit plans no second request, and nothing is allocated for it.
func TestRemotePlanHostile(t *testing.T) {
	const size = 1 << 20
	cases := []struct {
		name             string
		dataOff, dataLen uint64
		limit            int64
		want             []int // lengths of the requests made by the open
	}{
		{"good", 4096, size/2 - 4096, source.DefaultPrefetchLimit, []int{4096, size / 2}},
		{"overflow", 4096, 1<<64 - 100, source.DefaultPrefetchLimit, []int{4096}},
		{"past the end", 4096, size, source.DefaultPrefetchLimit, []int{4096}},
		{"data offset past the end", size + 1, 0, source.DefaultPrefetchLimit, []int{4096}},
		{"tail over the limit", 4096, 0, 1000, []int{4096}},
		{"large alignment", 65536, 0, source.DefaultPrefetchLimit, []int{4096, 65536 - 4096, size - 65536}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lens []int
			b := &fake{data: preamble(size, c.dataOff, c.dataLen)}
			b.hook = func(call int, p []byte, off int64) (int, source.Info, error, bool) {
				lens = append(lens, len(p))
				return 0, source.Info{}, nil, false
			}
			if _, err := source.NewRemote(context.Background(), b, source.WithPrefetchLimit(c.limit)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(lens, c.want) {
				t.Fatalf("requests of %v bytes, want %v", lens, c.want)
			}
		})
	}
}
