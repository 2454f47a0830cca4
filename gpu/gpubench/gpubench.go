// Package gpubench writes the synthetic model that the GPU loading benchmark
// (bench/gpu in the repository) measures: fp16 tensors of 8192 x 8192
// (128 MiB each) named "layers.N.weight", whose bytes come from a counter
// hashed with SplitMix64, so that any language can produce the same model
// without storing it: bench/gpu/bench_gpu.py writes the .safetensors twin of
// the .swt written here, byte for byte the same tensors.
//
// Word j (little-endian uint64) of tensor i is mix((i<<40 | j) + 1), where
// mix is SplitMix64's finaliser applied to x*0x9E3779B97F4A7C15.
package gpubench

import (
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// Rows and Cols are the shape of every benchmark tensor; TensorBytes its size.
const (
	Rows        = 8192
	Cols        = 8192
	TensorBytes = Rows * Cols * 2
)

// Word returns word j of tensor i.
func Word(i, j uint64) uint64 {
	z := (i<<40 | j) + 1
	z *= 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Fill writes the bytes of tensor i from byte offset off (a multiple of 8)
// into b, whose length is a multiple of 8.
func Fill(b []byte, i uint64, off int64) {
	j := uint64(off / 8)
	for k := 0; k+8 <= len(b); k += 8 {
		binary.LittleEndian.PutUint64(b[k:], Word(i, j))
		j++
	}
}

// FileName is the name of the benchmark model of size bytes (whole GiB).
func FileName(size int64) string { return fmt.Sprintf("bench-%dGiB.swt", size>>30) }

// Count is the number of tensors of the benchmark model of size bytes.
func Count(size int64) (int, error) {
	if size < TensorBytes || size%TensorBytes != 0 || size > 1<<40 {
		return 0, fmt.Errorf("gpubench: size %d is not a multiple of %d bytes in [128 MiB, 1 TiB]", size, TensorBytes)
	}
	return int(size / TensorBytes), nil
}

// WriteDir writes the benchmark model of size bytes to dir/FileName(size)
// and returns its path.
func WriteDir(dir string, size int64, opts ...encode.Option) (string, error) {
	n, err := Count(size)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, FileName(size))
	return path, Write(path, n, Rows, Cols, opts...)
}

// Write writes n tensors of rows x cols fp16 to path (rows*cols even).
func Write(path string, n, rows, cols int, opts ...encode.Option) error {
	if n < 0 || rows <= 0 || cols <= 0 || rows*cols%4 != 0 {
		return fmt.Errorf("gpubench: bad model shape %d x %d x %d", n, rows, cols)
	}
	w, err := encode.Create(path, append([]encode.Option{encode.WithProducer("safeweights gpubench")}, opts...)...)
	if err != nil {
		return err
	}
	w.SetMetadata("gpubench", "splitmix64 v1")
	for i := range n {
		r := &reader{i: uint64(i), n: int64(rows) * int64(cols) * 2}
		if err := w.AddFrom(fmt.Sprintf("layers.%d.weight", i), format.F16, []int64{int64(rows), int64(cols)}, r); err != nil {
			_ = w.Abort()
			return err
		}
	}
	return w.Close()
}

// reader produces the bytes of one tensor.
type reader struct {
	i   uint64
	off int64
	n   int64
	buf [1 << 16]byte
	pos int
	end int
}

func (r *reader) Read(p []byte) (int, error) {
	if r.pos == r.end {
		if r.off == r.n {
			return 0, io.EOF
		}
		k := min(int64(len(r.buf)), r.n-r.off)
		Fill(r.buf[:k], r.i, r.off)
		r.off += k
		r.pos, r.end = 0, int(k)
	}
	c := copy(p, r.buf[r.pos:r.end])
	r.pos += c
	return c, nil
}
