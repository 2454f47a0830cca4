package jld2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/internal/fixtures"
)

// FuzzRead reads arbitrary bytes: every failure is a typed *Error, and a
// model that reads has distinct names and data of its shape's size.
//
// Its seeds are real files of up to 64 KiB, and the fuzzing engine
// minimizes every input that finds new coverage before it counts it, at
// the cost of many executions per input byte: the exec count then stands
// still for up to -fuzzminimizetime (60s by default) while the reader is
// not stuck. Run it with a bounded minimization, for example
//
//	go test -run '^$' -fuzz '^FuzzRead$' -fuzztime 30s -fuzzminimizetime 200x ./convert/jld2
//
// TestWorkBounded checks the work and memory of every seed and corpus
// entry against the input size.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.h5"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, c := range hostile() {
		f.Add(c.data)
	}
	for _, c := range workCases() {
		f.Add(c.data)
	}
	for _, c := range indexHostile(f) {
		f.Add(c.data)
	}
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	inner := structFile(b, []string{"weight", "tied"}, []uint64{w, w})
	f.Add(b.finish(b.group([]string{"model"}, []uint64{inner})))
	// Chains whose functions are only among the type parameters.
	f.Add(chainJLD2(denseModel()))
	f.Add(chainJLD2(convModel()))
	f.Add(knetFile([2]uint64{2, 3}, make([]byte, 24)))
	b = newH5()
	w = b.f32Dataset([]uint64{2}, []float32{1, 2})
	self := b.addr()
	structFile(b, []string{"w", "next"}, []uint64{w, self})
	f.Add(b.finish(b.group([]string{"m"}, []uint64{self})))
	if dir := fixtureDirOrEmpty(); dir != "" {
		fx, _ := filepath.Glob(filepath.Join(dir, "*.jld2"))
		for _, p := range fx {
			if st, err := os.Stat(p); err == nil && st.Size() < 64<<10 {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b)
				}
			}
		}
	}
	lim := Limits{MaxDecodedBytes: 64 << 20, MaxNodes: 1 << 16, MaxObjects: 1 << 14}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Read(data, WithLimits(lim))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, tt := range m.Tensors {
			if names[tt.Name] {
				t.Fatalf("tensor %s twice", tt.Name)
			}
			names[tt.Name] = true
			n := int64(tt.DType.Size())
			for _, d := range tt.Shape {
				n *= d
			}
			if n != int64(len(tt.Data)) {
				t.Fatalf("%s: %d bytes for shape %v", tt.Name, len(tt.Data), tt.Shape)
			}
		}
	})
}

func fixtureDirOrEmpty() string { return fixtures.Dir("flux-jld2") }

func TestConvertEndToEnd(t *testing.T) {
	for _, file := range []string{"chunked-deflate.h5", "chunked-zstd.h5", "float16-bool.h5"} {
		t.Run(file, func(t *testing.T) {
			src := filepath.Join("testdata", file)
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Read(data)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "out.swt")
			rep, err := Convert(context.Background(), src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Tensors) != len(want.Tensors) || rep.SourceFormat != "jld2" {
				t.Fatalf("report %+v", rep)
			}
			out, err := decode.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			for _, wt := range want.Tensors {
				got, err := out.Tensor(wt.Name)
				if err != nil {
					t.Fatal(err)
				}
				b, err := got.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if got.DType != wt.DType || !bytes.Equal(b, wt.Data) || fmt.Sprint(got.Shape) != fmt.Sprint(wt.Shape) {
					t.Errorf("%s differs after conversion", wt.Name)
				}
			}
		})
	}
}

func TestConvertRefusedLeavesNothing(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out.swt")
	_, err := Convert(context.Background(), filepath.Join("testdata", "external-link.h5"), dst)
	if !errors.Is(err, convert.ErrRefused) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal("output left behind")
	}
}

// writeContiguousFile writes a JLD2-style file of about size bytes: one
// group of 64 MiB contiguous Float32 arrays, as jldsave writes large
// arrays.
func writeContiguousFile(tb testing.TB, path string, size int64) {
	const per = 64 << 20
	n := int((size + per - 1) / per)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	// Layout: header and superblock, then the arrays, then their object
	// headers and the root group.
	if _, err := f.Write(make([]byte, 512+48)); err != nil {
		tb.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	addrs := make([]uint64, n)
	for i := range n {
		addrs[i] = uint64(48 + i*per)
		for j := 0; j < per; j += len(chunk) {
			if _, err := f.Write(chunk); err != nil {
				tb.Fatal(err)
			}
		}
	}
	// The tail builder's buffer starts at address 48+n*per; its first 512
	// bytes stand for the header and are not written.
	b := &h5{buf: make([]byte, 512), shift: uint64(48 + n*per)}
	names := make([]string, n)
	objs := make([]uint64, n)
	for i := range n {
		names[i] = "w" + strconv.Itoa(i+1)
		objs[i] = b.object(mSpace(4096, per/4/4096), mType(dtF32()), mContig(addrs[i], per))
	}
	root := b.group(names, objs)
	if _, err := f.Write(b.buf[512:]); err != nil {
		tb.Fatal(err)
	}
	head := make([]byte, 512, 512+48)
	copy(head, testHeader)
	head = append(head, superblock(b.addr()+512, root)...)
	if _, err := f.WriteAt(head, 0); err != nil {
		tb.Fatal(err)
	}
}

// benchSize is the size of the generated benchmark file: 256 MiB, or
// 1 GiB with SAFEWEIGHTS_BENCH_1G=1.
func benchSize() int64 {
	if os.Getenv("SAFEWEIGHTS_BENCH_1G") != "" {
		return 1 << 30
	}
	return 256 << 20
}

// BenchmarkCopy is the baseline for BenchmarkConvertContiguous: the same
// generated file read and written through a temporary file, synced and
// renamed into place, as a conversion must at least do. The copy goes
// through a user-space buffer, as the encoder's does, not through
// copy_file_range.
func BenchmarkCopy(b *testing.B) {
	size := benchSize()
	dir := b.TempDir()
	src := filepath.Join(dir, "big.jld2")
	writeContiguousFile(b, src, size)
	dst := filepath.Join(dir, "big.copy")
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.CreateTemp(dir, "copy-*")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
			b.Fatal(err)
		}
		if err := out.Sync(); err != nil {
			b.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(out.Name(), dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertContiguous converts a generated contiguous file (256 MiB,
// or 1 GiB with SAFEWEIGHTS_BENCH_1G=1) and reports throughput and the
// heap in use after the conversion, which must not grow with the file.
func BenchmarkConvertContiguous(b *testing.B) {
	size := benchSize()
	dir := b.TempDir()
	src := filepath.Join(dir, "big.jld2")
	writeContiguousFile(b, src, size)
	dst := filepath.Join(dir, "big.swt")
	b.SetBytes(size)
	b.ResetTimer()
	var peak uint64
	for b.Loop() {
		if _, err := Convert(context.Background(), src, dst); err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	b.ReportMetric(float64(peak)/(1<<20), "heap-MiB")
}
