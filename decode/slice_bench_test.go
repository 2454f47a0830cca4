package decode_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// BenchmarkSlice reads a row slice and a column slice (one eighth of the
// rows or columns) of a 4096 x 4096 F32 tensor, verified, with the default
// 4 MiB chunks and with 4 KiB chunks, and reports the bytes fetched per
// byte of slice and the header size.
func BenchmarkSlice(b *testing.B) {
	for _, chunk := range []int{format.DefaultChunkSize, 4 << 10} {
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) { benchSlice(b, chunk) })
	}
}

func benchSlice(b *testing.B, chunk int) {
	const n = 4096
	path := filepath.Join(b.TempDir(), "big.swt")
	w, err := encode.Create(path, encode.WithChunkSize(chunk))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, n*n*4)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := w.Add("w", format.F32, []int64{n, n}, data); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		s     decode.Slice
		reads int
	}{
		{"row", decode.Slice{{Start: n / 8, Stop: 2 * n / 8}, {Start: 0, Stop: n}}, 1},
		{"column", decode.Slice{{Start: 0, Stop: n}, {Start: n / 8, Stop: 2 * n / 8}}, 1},
		{"column-reads=4", decode.Slice{{Start: 0, Stop: n}, {Start: n / 8, Stop: 2 * n / 8}}, 4},
		{"row-unaligned", decode.Slice{{Start: 100, Stop: 100 + n/8}, {Start: 0, Stop: n}}, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			cr := &countingReader{r: bytes.NewReader(raw)}
			f, err := decode.NewReader(cr, int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
			if err != nil {
				b.Fatal(err)
			}
			t, _ := f.Tensor("w")
			size, _ := t.SliceLength(c.s)
			dst := make([]byte, size)
			b.SetBytes(size)
			cr.reset()
			for b.Loop() {
				if err := t.ReadSliceWith(c.s, dst, decode.SliceOptions{Reads: c.reads}); err != nil {
					b.Fatal(err)
				}
			}
			var fetched int64
			for _, r := range cr.ranges {
				fetched += r[1] - r[0]
			}
			b.ReportMetric(float64(fetched)/float64(b.N)/float64(size), "fetched/slice")
			b.ReportMetric(float64(f.Preamble().HeaderLength), "header-bytes")
		})
	}
}
