package format

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// TestBLAKE3Sequential compares the sequential tree walk with the library
// at every length around the chunk and group boundaries where the tree's
// shape changes, and at random lengths up to 20 MiB.
func TestBLAKE3Sequential(t *testing.T) {
	data := make([]byte, 20<<20+4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var lengths []int
	for n := 0; n <= 3*16384+2; n++ {
		if n < 2100 || n%1024 <= 2 || n%1024 >= 1022 {
			lengths = append(lengths, n)
		}
	}
	for _, k := range []int{16, 17, 31, 32, 33, 48, 63, 64, 65, 255, 256, 257, 4095, 4096, 4097} {
		for _, d := range []int{-1, 0, 1} {
			lengths = append(lengths, k*16384+d, k*1024+d)
		}
	}
	for range 40 {
		lengths = append(lengths, rng.IntN(20<<20))
	}
	lengths = append(lengths, 4<<20, 16<<20, 20<<20)
	for _, n := range lengths {
		if n < 0 || n > len(data) {
			continue
		}
		want := blake3.Sum256(data[:n])
		if got := blake3Sum256(data[:n]); got != want {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
		for _, parts := range []int{2, 3, 8} {
			if got := BLAKE3.SumParallel(data[:n], parts); got != want {
				t.Fatalf("length %d in %d parts: %x, want %x", n, parts, got, want)
			}
		}
	}
}

func BenchmarkBLAKE3Chunk(b *testing.B) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.Run("sequential", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			blake3Sum256(data)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			BLAKE3.SumParallel(data, 2)
		}
	})
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			blake3.Sum256(data)
		}
	})
}
