package sign_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"lukechampine.com/blake3"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// BenchmarkHeaderSignature measures the signature check of a file of 10,000
// tensors: "open" includes decode's header parse and header digest, which the
// signature relies on; "verify" is the signature check on an open file.
func BenchmarkHeaderSignature(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "many.swt")
	w, err := encode.Create(path, encode.WithAlignment(64))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 16)
	for i := range 10000 {
		if err := w.Add(fmt.Sprintf("layers.%d.weight", i), format.F32, []int64{4}, data); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	signFile(b, path, key(1), "bench", false)
	raw := readFile(b, path)
	kr := ring(b, key(1))
	opts := sign.WithUnsafeSkipDataDigests()
	b.Run("open+verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := verifyBytes(raw, kr, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := sign.Verify(context.Background(), f, kr, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type patternReader struct{ n byte }

func (r *patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n = r.n*31 + 7
	}
	return len(p), nil
}

// BenchmarkFullVerify compares full verification (signature, every chunk
// digest, all padding) of a mapped file with the BLAKE3 library hashing the
// same data bytes in one call. SWT_BENCH_BYTES sets the data size (default
// 64 MiB; the published figure uses 4 GiB).
func BenchmarkFullVerify(b *testing.B) {
	size := int64(64 << 20)
	if s := os.Getenv("SWT_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("SWT_BENCH_BYTES=%q", s)
		}
		size = n
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "big.swt")
	w, err := encode.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	const tensor = 64 << 20
	r := &patternReader{}
	for i := int64(0); i*tensor < size; i++ {
		n := min(tensor, size-i*tensor) / 4
		if err := w.AddFrom(fmt.Sprintf("t%d", i), format.F32, []int64{n}, io.LimitReader(r, n*4)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	signFile(b, path, key(1), "", false)
	kr := ring(b, key(1))
	f, err := decode.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pre := f.Preamble()
	m := f.Mapping()
	if m == nil {
		b.Skip("no mmap on this platform")
	}
	region := m[pre.DataOffset:pre.DataEnd()]
	b.Run("sign.Verify", func(b *testing.B) {
		b.SetBytes(int64(len(region)))
		for b.Loop() {
			// A fresh File each time: a File remembers verified tensors.
			g, err := decode.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sign.Verify(context.Background(), g, kr); err != nil {
				b.Fatal(err)
			}
			g.Close()
		}
	})
	b.Run("blake3.Sum256", func(b *testing.B) {
		b.SetBytes(int64(len(region)))
		for b.Loop() {
			blake3.Sum256(region)
		}
	})
}
