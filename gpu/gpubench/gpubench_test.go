package gpubench

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
)

// The first words of tensors 0 and 1, computed independently in Python and
// also checked by bench/gpu/bench_gpu.py, so the two generators cannot drift
// apart.
func TestWordVectors(t *testing.T) {
	for _, c := range []struct{ i, j, want uint64 }{
		{0, 0, 0xe220a8397b1dcdaf},
		{0, 1, 0x6e789e6aa1b965f4},
		{1, 0, 0x1937167e168d9372},
	} {
		if got := Word(c.i, c.j); got != c.want {
			t.Errorf("Word(%d, %d) = %#x, want %#x", c.i, c.j, got, c.want)
		}
	}
}

func TestWriteRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.swt")
	if err := Write(path, 3, 64, 96); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumTensors() != 3 {
		t.Fatalf("%d tensors", f.NumTensors())
	}
	for i := range 3 {
		tt := f.TensorAt(i)
		got, err := tt.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 64*96*2)
		Fill(want, uint64(i), 0)
		if !bytes.Equal(got, want) {
			t.Fatalf("tensor %d differs from the generator", i)
		}
	}
}

func TestCount(t *testing.T) {
	if n, err := Count(4 << 30); err != nil || n != 32 {
		t.Fatalf("Count(4 GiB) = %d, %v", n, err)
	}
	if _, err := Count(100); err == nil {
		t.Fatal("a size below one tensor was accepted")
	}
	if FileName(16<<30) != "bench-16GiB.swt" {
		t.Fatal(FileName(16 << 30))
	}
}
