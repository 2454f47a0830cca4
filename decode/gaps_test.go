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
	// n chunk reads, and the n gaps in a few windows.
	if gaps := clean.reads.Load() - before - n; gaps > n/50 {
		t.Errorf("%d reads for %d gaps", gaps, n)
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
