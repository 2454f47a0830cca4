package httpsrc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/httpsrc"
)

// BenchmarkOpen counts what opening a remote file costs at the server:
// requests and bytes asked for per open, which depend on the file's layout
// and not on the machine (docs/BENCHMARKS.md, "Remote"). Tensors are 64
// bytes at an alignment of 64, so each has its chunk digest in the header,
// as in a real model; the bytes per open are the first 4 KiB and the tail.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000} {
		m := makeModel(b, n, func(int) int { return 64 }, encode.WithAlignment(64))
		s := newServer(nil, m.raw)
		b.Run(fmt.Sprintf("tensors=%d", n), func(b *testing.B) {
			s.reset()
			for b.Loop() {
				src, err := httpsrc.Open(context.Background(), s.url())
				if err != nil {
					b.Fatal(err)
				}
				f, err := decode.NewReaderContext(context.Background(), src, src.Size())
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			reqs := s.reqs()
			var bytes int64
			for _, r := range reqs {
				bytes += min(r.end, int64(len(m.raw))) - r.off
			}
			b.ReportMetric(float64(len(reqs))/float64(b.N), "requests/op")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/op")
			b.ReportMetric(float64(len(m.raw)), "file-bytes")
		})
		s.srv.Close()
	}
}

// BenchmarkVerify counts what a whole-file Verify of a remote file costs
// at the server after the open: requests and bytes asked for. Small
// tensors and the padding between them are read in windows, not one
// request each (docs/REMOTE.md, "Parallel parts").
func BenchmarkVerify(b *testing.B) {
	for _, c := range []struct{ n, size, align int }{{1000, 64, 64}, {100_000, 64, 64}, {1000, 1000, 4096}} {
		m := makeModel(b, c.n, func(int) int { return c.size }, encode.WithAlignment(c.align))
		s := newServer(nil, m.raw)
		b.Run(fmt.Sprintf("tensors=%d/size=%d/align=%d", c.n, c.size, c.align), func(b *testing.B) {
			var reqs, bytes int64
			for b.Loop() {
				src, err := httpsrc.Open(context.Background(), s.url())
				if err != nil {
					b.Fatal(err)
				}
				f, err := decode.NewReaderContext(context.Background(), src, src.Size())
				if err != nil {
					b.Fatal(err)
				}
				s.reset()
				if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
				for _, r := range s.reqs() {
					reqs++
					bytes += min(r.end, int64(len(m.raw))) - r.off
				}
				f.Close()
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/op")
			b.ReportMetric(float64(m.pre.DataLength), "data-bytes")
		})
		s.srv.Close()
	}
}

// BenchmarkReadAll reads every tensor of a 64 MiB file under VerifyLazy
// through the parallel parts of the remote layer, from an in-process
// server. Its speed measures this machine's loopback and hashing, not a
// network: it is not recorded.
func BenchmarkReadAll(b *testing.B) {
	m := makeModel(b, 8, func(int) int { return 8 << 20 }, nil...)
	s := newServer(nil, m.raw)
	defer s.srv.Close()
	b.SetBytes(int64(len(m.raw)))
	for b.Loop() {
		src, err := httpsrc.Open(context.Background(), s.url(), httpsrc.WithRemoteOptions(source.WithPartSize(1<<20)))
		if err != nil {
			b.Fatal(err)
		}
		f, err := decode.NewReaderContext(context.Background(), src, src.Size(), decode.WithVerify(decode.VerifyLazy))
		if err != nil {
			b.Fatal(err)
		}
		for t := range f.All() {
			if _, err := t.Bytes(); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}
