package encode_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// Small sizes only: bench/ (its own module) measures a 4 GiB model against
// the disk's own write speed; see docs/BENCHMARKS.md.

const (
	benchTensors = 4
	benchSize    = 4 << 20
)

func benchData() []byte {
	data := make([]byte, benchSize)
	x := uint32(1)
	for i := range data {
		x = x*1664525 + 1013904223
		data[i] = byte(x >> 24)
	}
	return data
}

// write encodes benchTensors tensors with add and closes the file (fsync
// and rename included).
func write(b *testing.B, add func(w *encode.Writer, name string) error) {
	dir := b.TempDir()
	b.SetBytes(benchTensors * benchSize)
	for b.Loop() {
		w, err := encode.Create(filepath.Join(dir, "m.swt"))
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchTensors {
			if err := add(w, fmt.Sprintf("layers.%d.weight", i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	data := benchData()
	write(b, func(w *encode.Writer, name string) error {
		return w.Add(name, format.U8, []int64{benchSize}, data)
	})
}

func BenchmarkAddFrom(b *testing.B) {
	data := benchData()
	write(b, func(w *encode.Writer, name string) error {
		return w.AddFrom(name, format.U8, []int64{benchSize}, bytes.NewReader(data))
	})
}

func BenchmarkAddCompressed(b *testing.B) {
	data := benchData()
	for i := range data {
		data[i] &= 0x0f // compressible, like low-entropy weights
	}
	write(b, func(w *encode.Writer, name string) error {
		return w.Add(name, format.U8, []int64{benchSize}, data, encode.Compress(1))
	})
}

// BenchmarkHeader measures Close for many small tensors: building,
// checking and writing the header.
func BenchmarkHeader(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		w, err := encode.Create(filepath.Join(dir, "m.swt"), encode.WithAlignment(64))
		if err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			if err := w.Add(fmt.Sprintf("model.layers.%d.weight", i), format.F32, []int64{4}, data); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
