package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	gguf "github.com/gpustack/gguf-parser-go"
	"github.com/nlpodyssey/safetensors"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
)

// These run with small sizes under `go test -bench .`; cmd/swtbench runs the
// same functions with the sizes of docs/BENCHMARKS.md.

func envInt(key string, def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv(key), 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{10, 1000, int(envInt("SWT_BENCH_MAX_TENSORS", 10000))} {
		l := Layout{Count: n, Shape: []int64{64, 64}}
		dir := b.TempDir()
		swt, st, gg := filepath.Join(dir, "m.swt"), filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "m.gguf")
		if err := errors.Join(WriteSWT(swt, l, format.DefaultChunkSize), WriteSafetensors(st, l), WriteGGUF(gg, l)); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d/safeweights", n), OpenSWT(swt))
		b.Run(fmt.Sprintf("n=%d/safetensors", n), OpenSafetensors(st))
		b.Run(fmt.Sprintf("n=%d/gguf", n), OpenGGUF(gg))
	}
}

func BenchmarkEncode(b *testing.B) {
	src := make([]byte, envInt("SWT_BENCH_TENSOR", 16<<20))
	Pattern(src, 1)
	b.Run("model", Encode(b.TempDir(), src, envInt("SWT_BENCH_MODEL", 64<<20)))
}

func BenchmarkVerify(b *testing.B) {
	src := make([]byte, envInt("SWT_BENCH_TENSOR", 16<<20))
	Pattern(src, 1)
	path, err := EncodeModel(b.TempDir(), src, envInt("SWT_BENCH_MODEL", 64<<20))
	if err != nil {
		b.Fatal(err)
	}
	f, err := decode.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("Verify", Verify(f, 0))
	b.Run("blake3-chunks", BLAKE3Chunks(f, 2))
	b.Run("blake3-whole", BLAKE3Whole(f))
}

// TestFilesAreValid checks that the generated files are accepted by their
// readers and describe the same tensors.
func TestFilesAreValid(t *testing.T) {
	l := Layout{Count: 20, Shape: []int64{3, 5}}
	dir := t.TempDir()
	swt := filepath.Join(dir, "m.swt")
	if err := WriteSWT(swt, l, 1024); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(swt, decode.WithVerify(decode.VerifyEager))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumTensors() != l.Count {
		t.Fatalf("%d tensors, want %d", f.NumTensors(), l.Count)
	}
	for i := range l.Count {
		tn := f.TensorAt(i)
		if tn.Name != l.Name(i) || tn.DType != format.F32 || len(tn.Shape) != 2 || tn.Shape[0] != 3 || tn.Shape[1] != 5 {
			t.Fatalf("tensor %d: %s %v %v", i, tn.Name, tn.DType, tn.Shape)
		}
	}
	st := filepath.Join(dir, "m.safetensors")
	if err := WriteSafetensors(st, l); err != nil {
		t.Fatal(err)
	}
	buf, err := os.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := safetensors.Deserialize(buf)
	if err != nil {
		t.Fatal(err)
	}
	if sf.Len() != l.Count {
		t.Fatalf("safetensors: %d tensors, want %d", sf.Len(), l.Count)
	}
	if tv, ok := sf.Tensor(l.Name(7)); !ok || len(tv.Shape()) != 2 || tv.Shape()[1] != 5 {
		t.Fatalf("safetensors: tensor %s missing or misshapen", l.Name(7))
	}
	gg := filepath.Join(dir, "m.gguf")
	if err := WriteGGUF(gg, l); err != nil {
		t.Fatal(err)
	}
	gf, err := gguf.ParseGGUFFile(gg, gguf.UseMMap())
	if err != nil {
		t.Fatal(err)
	}
	if len(gf.TensorInfos) != l.Count {
		t.Fatalf("gguf: %d tensors, want %d", len(gf.TensorInfos), l.Count)
	}
	ti := gf.TensorInfos[7]
	if ti.Name != l.Name(7) || ti.NDimensions != 2 || ti.Dimensions[0] != 5 || ti.Dimensions[1] != 3 {
		t.Fatalf("gguf: tensor 7 is %+v", ti)
	}
}
