package decode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// parallelReader is a reader that asks for many reads in flight, as a
// remote source does, and counts them.
type parallelReader struct {
	r     *bytes.Reader
	reads atomic.Int64
}

func (p *parallelReader) ReadAt(b []byte, off int64) (int, error) {
	p.reads.Add(1)
	return p.r.ReadAt(b, off)
}
func (p *parallelReader) ReadParallelism() int { return 16 }

// TestGapsFirstInFileOrder: padding is checked in windows, in parallel;
// the error is the first non-zero byte in file order whatever the
// schedule, and many small gaps cost few reads.
func TestGapsFirstInFileOrder(t *testing.T) {
	const n = 3000
	// Small tensors: their gaps are read together.
	raw := gapsModel(t, n, 5)
	clean := &parallelReader{r: bytes.NewReader(raw)}
	f, err := decode.NewReader(clean, int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	before := clean.reads.Load()
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The n tensors and the n gaps, each in a few windows.
	if reads := clean.reads.Load() - before; reads > n/25 {
		t.Errorf("%d reads to verify %d small tensors", reads, n)
	}

	// Tensors larger than the merge distance: each gap is a window of its
	// own, and the windows are checked in parallel.
	raw = gapsModel(t, n, 5000)
	f, err = decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	gapAt := func(i int) int64 { tn := f.TensorAt(i); return tn.Offset + tn.StoredLength + 3 }
	for _, bad := range [][]int{{2500}, {100, 2900}, {5, 6, 7, 2998}} {
		b := bytes.Clone(raw)
		for _, i := range bad {
			b[gapAt(i)] = 0xff
		}
		for range 5 {
			f, err := decode.NewReader(&parallelReader{r: bytes.NewReader(b)}, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			err = f.Verify(context.Background(), decode.VerifyOptions{})
			var fe *format.FormatError
			if !errors.Is(err, format.ErrPadding) || !errors.As(err, &fe) || fe.Offset != gapAt(bad[0]) {
				t.Fatalf("bad gaps %v: got %v, want padding at %d", bad, err, gapAt(bad[0]))
			}
		}
	}
}

func gapsModel(t *testing.T, n, size int) []byte {
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithAlignment(64), encode.WithChunkSize(8192))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, size)
	for i := range n {
		if err := w.Add(fmt.Sprintf("t%05d", i), format.U8, []int64{int64(size)}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestSmallTensorsGrouped: small tensors are verified in groups read at
// once; a changed byte still names its tensor and chunk.
func TestSmallTensorsGrouped(t *testing.T) {
	raw := gapsModel(t, 500, 5000) // chunks of 8 KiB: one chunk a tensor
	f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 137, 499} {
		tn := f.TensorAt(i)
		b := bytes.Clone(raw)
		b[tn.Offset+4321] ^= 1
		r := &parallelReader{r: bytes.NewReader(b)}
		g, err := decode.NewReader(r, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		err = g.Verify(context.Background(), decode.VerifyOptions{})
		var fe *format.FormatError
		if !errors.Is(err, format.ErrDigest) || !errors.As(err, &fe) || fe.Offset != tn.Offset {
			t.Fatalf("tensor %d changed: got %v", i, err)
		}
	}
}
