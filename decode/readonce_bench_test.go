package decode_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/decode"
)

// BenchmarkReadModel reads every tensor of a model of 256 MiB tensors
// (SAFEWEIGHTS_BENCH_MIB MiB in all, default 256) on each path, so that
// read-once verification is compared with an unverified read and with
// the two passes (hash one read, return another) it replaced, in one run:
//
//	SAFEWEIGHTS_BENCH_MIB=4096 go test -run '^$' -bench ReadModel -benchtime 3x ./decode
func BenchmarkReadModel(b *testing.B) {
	mib := 256
	if s := os.Getenv("SAFEWEIGHTS_BENCH_MIB"); s != "" {
		var err error
		if mib, err = strconv.Atoi(s); err != nil || mib < 1 {
			b.Fatalf("SAFEWEIGHTS_BENCH_MIB=%q", s)
		}
	}
	tensorMiB := min(mib, 256)
	path := benchFile(b, mib/tensorMiB, tensorMiB<<20)
	buf := make([]byte, tensorMiB<<20)
	total := int64(mib/tensorMiB) * int64(tensorMiB<<20)
	readAllInto := func(b *testing.B, f *decode.File) {
		for t := range f.All() {
			if err := t.ReadInto(buf[:t.Length]); err != nil {
				b.Fatal(err)
			}
		}
	}
	touch := func(p []byte) (s byte) {
		for i := 0; i < len(p); i += 4096 {
			s += p[i]
		}
		return s
	}
	cases := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"pread/unverified", func(b *testing.B) {
			f, err := decode.Open(path, decode.WithoutMmap())
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			readAllInto(b, f)
		}},
		{"pread/two-passes", func(b *testing.B) { // the former checked read
			f, err := decode.Open(path, decode.WithoutMmap())
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
				b.Fatal(err)
			}
			readAllInto(b, f)
		}},
		{"pread/read-once-lazy", func(b *testing.B) {
			f, err := decode.Open(path, decode.WithoutMmap(), decode.WithVerify(decode.VerifyLazy))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			readAllInto(b, f)
		}},
		{"pread/eager-then-read-once", func(b *testing.B) {
			f, err := decode.Open(path, decode.WithoutMmap(), decode.WithVerify(decode.VerifyEager))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			readAllInto(b, f)
		}},
		{"mmap/view-lazy", func(b *testing.B) {
			f, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			for t := range f.All() {
				p, err := t.Bytes()
				if err != nil {
					b.Fatal(err)
				}
				touch(p)
			}
		}},
		{"mmap/checked-reads", func(b *testing.B) {
			f, err := decode.Open(path, decode.WithCheckedReads())
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			readAllInto(b, f)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				c.run(b)
			}
		})
	}
}
