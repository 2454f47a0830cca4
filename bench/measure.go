package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gguf "github.com/gpustack/gguf-parser-go"
	"github.com/nlpodyssey/safetensors"
	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// cpuTime is the CPU time, user and system, that the process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU makes a benchmark report cpu-ns/op beside its wall time. On a
// shared machine the wall time includes waiting for a core; the CPU time
// does not, so ratios of CPU times are the steadier comparison of work.
// It counts every goroutine of the process, so parallel work adds up.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// OpenSWT opens (mmap) and fully validates the header of path, then closes.
func OpenSWT(path string) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			f, err := decode.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	}
}

// OpenSafetensors maps path read-only, runs safetensors.Deserialize over the
// mapping (which parses and validates the JSON header), then unmaps: the
// same work decode.Open does.
func OpenSafetensors(path string) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			fh, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			st, err := fh.Stat()
			if err != nil {
				b.Fatal(err)
			}
			m, err := unix.Mmap(int(fh.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := safetensors.Deserialize(m); err != nil {
				b.Fatal(err)
			}
			unix.Munmap(m)
			fh.Close()
		}
	}
}

// OpenGGUF parses path with gguf-parser-go over its own mmap.
func OpenGGUF(path string) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := gguf.ParseGGUFFile(path, gguf.UseMMap()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Pattern fills b with cheap non-constant bytes.
func Pattern(b []byte, seed uint64) {
	x := seed | 1
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
}

// EncodeModel writes total bytes as tensors of tensorBytes each (the last
// may be shorter), all from the one buffer src, into a new file in dir.
// It returns the path of the finished file.
func EncodeModel(dir string, src []byte, total int64) (string, error) {
	path := filepath.Join(dir, "model.swt")
	w, err := encode.Create(path)
	if err != nil {
		return "", err
	}
	for i := 0; total > 0; i++ {
		n := min(total, int64(len(src)))
		if err := w.Add(fmt.Sprintf("layers.%d.weight", i), format.U8, []int64{n}, src[:n]); err != nil {
			w.Abort()
			return "", err
		}
		total -= n
	}
	return path, w.Close()
}

// Encode measures encode.Create, Add and Close (which fsyncs) of a model of
// total bytes made of tensors of len(src) bytes, in dir. SetBytes makes
// the benchmark report MB/s.
func Encode(dir string, src []byte, total int64) func(*testing.B) {
	return func(b *testing.B) {
		b.SetBytes(total)
		defer reportCPU(b)()
		for b.Loop() {
			path, err := EncodeModel(dir, src, total)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.Remove(path)
			b.StartTimer()
		}
	}
}

// WriteSync is the disk's ceiling for Encode: the same bytes written with
// os.File.Write and synced, with no hashing and no header.
func WriteSync(dir string, src []byte, total int64) func(*testing.B) {
	return func(b *testing.B) {
		b.SetBytes(total)
		defer reportCPU(b)()
		for b.Loop() {
			path := filepath.Join(dir, "plain.bin")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			for left := total; left > 0; {
				n := min(left, int64(len(src)))
				if _, err := f.Write(src[:n]); err != nil {
					b.Fatal(err)
				}
				left -= n
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			b.StopTimer()
			os.Remove(path)
			b.StartTimer()
		}
	}
}

// BLAKE3Memory is the hash's ceiling for Encode: the same bytes (total
// bytes, len(src) per tensor) cut into the default 4 MiB digest chunks and
// hashed from memory with blake3.Sum256 on workers goroutines, with no I/O.
func BLAKE3Memory(src []byte, total int64, workers int) func(*testing.B) {
	return func(b *testing.B) {
		const chunk = format.DefaultChunkSize
		type job struct{ lo, hi int }
		var jobs []job
		for left := total; left > 0; {
			n := min(left, int64(len(src)))
			for lo := int64(0); lo < n; lo += chunk {
				jobs = append(jobs, job{int(lo), int(min(lo+chunk, n))})
			}
			left -= n
		}
		b.SetBytes(total)
		defer reportCPU(b)()
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for j := next.Add(1) - 1; j < int64(len(jobs)); j = next.Add(1) - 1 {
						s := blake3.Sum256(src[jobs[j].lo:jobs[j].hi])
						if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
							runtime.Gosched()
						}
					}
				})
			}
			wg.Wait()
		}
	}
}

// Verify measures f.Verify over every tensor of an open file.
func Verify(f *decode.File, workers int) func(*testing.B) {
	return func(b *testing.B) {
		b.SetBytes(dataBytes(f))
		defer reportCPU(b)()
		for b.Loop() {
			if err := f.Verify(context.Background(), decode.VerifyOptions{Workers: workers}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func dataBytes(f *decode.File) int64 {
	var n int64
	for t := range f.All() {
		n += t.StoredLength
	}
	return n
}

// BLAKE3Chunks hashes the same stored bytes as Verify, chunk by chunk on
// workers goroutines, with blake3.Sum256: what Verify does minus its
// bookkeeping, so Verify's share of it is its overhead.
func BLAKE3Chunks(f *decode.File, workers int) func(*testing.B) {
	return func(b *testing.B) {
		cs := f.ChunkSize()
		type job struct{ lo, hi int64 }
		var jobs []job
		for t := range f.All() {
			for lo := int64(0); lo < t.StoredLength; lo += cs {
				jobs = append(jobs, job{t.Offset + lo, t.Offset + min(lo+cs, t.StoredLength)})
			}
		}
		m := f.Mapping()
		b.SetBytes(dataBytes(f))
		defer reportCPU(b)()
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for {
						j := next.Add(1) - 1
						if j >= int64(len(jobs)) {
							return
						}
						s := blake3.Sum256(m[jobs[j].lo:jobs[j].hi])
						if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
							runtime.Gosched() // keep the sum live
						}
					}
				})
			}
			wg.Wait()
		}
	}
}

// BLAKE3Whole hashes the whole data region (the same bytes as Verify plus
// the padding between tensors, none for tensors of whole alignments) with
// one blake3.Sum256 call, which spreads a large input over all cores by
// itself.
func BLAKE3Whole(f *decode.File) func(*testing.B) {
	return func(b *testing.B) {
		p := f.Preamble()
		data := f.Mapping()[p.DataOffset:p.DataEnd()]
		b.SetBytes(int64(len(data)))
		defer reportCPU(b)()
		for b.Loop() {
			s := blake3.Sum256(data)
			if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
				runtime.Gosched()
			}
		}
	}
}
