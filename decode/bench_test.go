package decode_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// Small sizes only: bench/ (its own module) measures large files and the
// peer readers side by side; see docs/BENCHMARKS.md.

// benchFile writes n tensors of size bytes each and returns its path.
func benchFile(b *testing.B, n, size int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "m.swt")
	w, err := encode.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for i := range n {
		if err := w.Add(fmt.Sprintf("model.layers.%d.weight", i), format.U8, []int64{int64(size)}, data); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{10, 1000} {
		path := benchFile(b, n, 64)
		b.Run(fmt.Sprintf("tensors=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f, err := decode.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

func BenchmarkNewReader(b *testing.B) {
	path := benchFile(b, 1000, 64)
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTensorLookup(b *testing.B) {
	f, err := decode.Open(benchFile(b, 1000, 64))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := f.Tensor(fmt.Sprintf("model.layers.%d.weight", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerify(b *testing.B) {
	const size = 4 << 20
	f, err := decode.Open(benchFile(b, 4, size))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(4 * size)
			for b.Loop() {
				if err := f.Verify(context.Background(), decode.VerifyOptions{Workers: workers}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
