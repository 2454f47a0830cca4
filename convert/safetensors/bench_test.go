package safetensors

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// benchSize is the size of the benchmark's safetensors file: the
// SAFEWEIGHTS_BENCH_SIZE environment variable in bytes (such as 4294967296
// for the 4 GiB of the project's target), 64 MiB by default.
func benchSize(b *testing.B) int64 {
	if s := os.Getenv("SAFEWEIGHTS_BENCH_SIZE"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1<<20 {
			b.Fatalf("SAFEWEIGHTS_BENCH_SIZE=%q: want a size in bytes of at least 1 MiB", s)
		}
		return n
	}
	return 64 << 20
}

// benchFile writes a safetensors file of about size bytes: F32 tensors of
// up to 64 MiB each, filled with random bits.
func benchFile(b *testing.B, dir string, size int64) string {
	b.Helper()
	const maxTensor = 64 << 20
	r := rand.New(rand.NewPCG(1, 2))
	var ts []convert.Tensor
	for left, i := size, 0; left >= 4; i++ {
		n := min(left, maxTensor) &^ 3
		data := make([]byte, n)
		for j := 0; j+8 <= len(data); j += 8 {
			binary.LittleEndian.PutUint64(data[j:], r.Uint64())
		}
		ts = append(ts, convert.Tensor{Name: "layers." + strconv.Itoa(i) + ".weight", DType: format.F32,
			Shape: []int64{n / 4}, Data: data})
		left -= n
	}
	path := filepath.Join(dir, "bench.safetensors")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := Write(f, ts, nil); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkImport measures converting a safetensors file to .swt against
// copying the same file (read, write, fsync: what any conversion must at
// least do). Compare the MB/s of the sub-benchmarks from one run.
func BenchmarkImport(b *testing.B) {
	dir := b.TempDir()
	size := benchSize(b)
	src := benchFile(b, dir, size)
	st, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "out")

	b.Run("copy", func(b *testing.B) {
		b.SetBytes(st.Size())
		buf := make([]byte, 1<<20)
		for b.Loop() {
			in, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			out, err := os.Create(dst)
			if err != nil {
				b.Fatal(err)
			}
			// CopyBuffer through plain Reader/Writer values moves the bytes
			// through user space, as a conversion does, rather than letting
			// the kernel clone them.
			if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
				b.Fatal(err)
			}
			if err := out.Sync(); err != nil {
				b.Fatal(err)
			}
			out.Close()
			in.Close()
		}
	})
	b.Run("read-header", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ReadHeader(f, st.Size(), Limits{}); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("convert", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := Convert(context.Background(), src, dst+".swt"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
