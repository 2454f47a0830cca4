package decode_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// FuzzParseSlice: any expression either fails with ErrSlice or gives a
// slice that fits the shape and whose String parses back to itself.
func FuzzParseSlice(f *testing.F) {
	for _, s := range []string{"", "0:128,:", ":, 5:9", "[1:2, -3:]", "-1,2", "::1", "1:2:3", "9223372036854775807:", "-9223372036854775808", "1,"} {
		f.Add(s, []byte{10, 20, 30})
	}
	f.Fuzz(func(t *testing.T, expr string, dims []byte) {
		if len(dims) > 8 {
			dims = dims[:8]
		}
		shape := make([]int64, len(dims))
		for i, d := range dims {
			shape[i] = int64(d)
		}
		s, err := decode.ParseSlice(expr, shape)
		if err != nil {
			if !errors.Is(err, decode.ErrSlice) {
				t.Fatalf("error without ErrSlice: %v", err)
			}
			return
		}
		if err := s.Check(shape); err != nil {
			t.Fatalf("%q parsed to %v, which fails Check: %v", expr, s, err)
		}
		again, err := decode.ParseSlice(s.String(), shape)
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q: %s reparsed to %v, %v", expr, s, again, err)
		}
	})
}

// FuzzSliceRead: a slice read of a verified file equals the same slice cut
// from the full read, for every range the fuzzer picks.
func FuzzSliceRead(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	shapes := [][]int64{{300}, {40, 33}, {7, 9, 11}, {3, 5, 4, 6}}
	var ts []sliceTensor
	for i, sh := range shapes {
		dt := []format.DType{format.F32, format.BF16, format.U8, format.F64}[i]
		data := make([]byte, prod(sh)*int64(dt.Size()))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		ts = append(ts, sliceTensor{name: string(rune('a' + i)), dt: dt, shape: sh, data: data, zstd: i == 2})
	}
	_, raw := writeSliceFile(f, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	file, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(1), []byte{0, 40, 3, 9})
	f.Add(uint8(3), []byte{1, 2, 0, 5, 2, 3, 0, 6})
	f.Fuzz(func(t *testing.T, which uint8, bounds []byte) {
		s := ts[int(which)%len(ts)]
		sl := make(decode.Slice, len(s.shape))
		for i, d := range s.shape {
			a, b := int64(0), d
			if 2*i+1 < len(bounds) {
				a, b = int64(bounds[2*i])%(d+1), int64(bounds[2*i+1])%(d+1)
			}
			sl[i] = decode.Range{Start: min(a, b), Stop: max(a, b)}
		}
		tt, err := file.Tensor(s.name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := tt.SliceLength(sl)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if err := tt.ReadSliceWith(sl, got, decode.SliceOptions{Reads: int(which>>4) % 4}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, refSlice(s.data, s.shape, s.dt.Size(), sl)) {
			t.Fatalf("%s [%v]: slice differs from the full read", s.name, sl)
		}
	})
}
