package decode_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// sizedReader asks for reads of size bytes, as a remote source with that
// part size does, and records the length of every read that starts in
// [from, to), the tensor's bytes.
type sizedReader struct {
	r     *bytes.Reader
	size  int64
	from  int64
	to    int64
	mu    sync.Mutex
	reads []int
}

func (s *sizedReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= s.from && off < s.to {
		s.mu.Lock()
		s.reads = append(s.reads, len(b))
		s.mu.Unlock()
	}
	return s.r.ReadAt(b, off)
}
func (s *sizedReader) ReadParallelism() int { return 4 }
func (s *sizedReader) ReadSize() int64      { return s.size }

// TestReadSizeGroupsChunks: under a ReadSizer, Verify and checked reads of
// a tensor read runs of whole chunks of up to the read size, and a changed
// chunk inside a run is still named exactly.
func TestReadSizeGroupsChunks(t *testing.T) {
	const chunk = 4096
	path := filepath.Join(t.TempDir(), "g.swt")
	w, err := encode.Create(path, encode.WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 37*chunk+100) // 38 chunks
	for i := range data {
		data[i] = byte(i * 13)
	}
	if err := w.Add("w", format.U8, []int64{int64(len(data))}, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte, size int64, opts ...decode.Option) (*decode.File, *sizedReader) {
		sr := &sizedReader{r: bytes.NewReader(b), size: size}
		f, err := decode.NewReader(sr, int64(len(b)), opts...)
		if err != nil {
			t.Fatal(err)
		}
		tt, _ := f.Tensor("w")
		sr.from, sr.to = tt.Offset, tt.Offset+tt.StoredLength
		return f, sr
	}
	for _, size := range []int64{chunk, 5 * chunk, 8*chunk + 17, 1 << 30} {
		g := max(1, min(size, 16<<20)/chunk)
		want := (38 + int(g) - 1) / int(g)
		f, sr := open(raw, size)
		if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		if len(sr.reads) != want {
			t.Errorf("read size %d: Verify read the tensor in %d reads %v, want %d", size, len(sr.reads), sr.reads, want)
		}

		f, sr = open(raw, size, decode.WithVerify(decode.VerifyLazy), decode.WithCheckedReads())
		tt, _ := f.Tensor("w")
		got := make([]byte, len(data))
		if err := tt.ReadInto(got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("ReadInto returned other bytes")
		}
		if len(sr.reads) != want {
			t.Errorf("read size %d: ReadInto took %d reads %v, want %d", size, len(sr.reads), sr.reads, want)
		}

		for _, c := range []int{0, 6, 37} {
			bad := bytes.Clone(raw)
			bad[tt.Offset+int64(c)*chunk+int64(min(50, len(data)-c*chunk-1))] ^= 1
			bf, _ := open(bad, size)
			err := bf.Verify(context.Background(), decode.VerifyOptions{})
			var fe *format.FormatError
			if !errors.Is(err, format.ErrDigest) || !errors.As(err, &fe) || fe.Offset != tt.Offset+int64(c)*chunk {
				t.Errorf("read size %d, chunk %d changed: Verify said %v", size, c, err)
			}
			bf, _ = open(bad, size, decode.WithVerify(decode.VerifyLazy), decode.WithCheckedReads())
			bt, _ := bf.Tensor("w")
			if err := bt.ReadInto(got); !errors.Is(err, format.ErrDigest) || !errors.As(err, &fe) || fe.Offset != tt.Offset+int64(c)*chunk {
				t.Errorf("read size %d, chunk %d changed: ReadInto said %v", size, c, err)
			}
		}
	}
}

// sizedMutating is a mutatingReader that asks for grouped reads.
type sizedMutating struct{ *mutatingReader }

func (s sizedMutating) ReadParallelism() int { return 3 }
func (s sizedMutating) ReadSize() int64      { return 3 * 1024 }

// TestReadSizeNeverReturnsChangedBytes: with reads grouped by a ReadSizer,
// a source that changes between reads still gets either the signed bytes
// or a digest error, never other bytes.
func TestReadSizeNeverReturnsChangedBytes(t *testing.T) {
	data := make([]byte, 20*1024+7)
	for i := range data {
		data[i] = byte(i*31 + 5)
	}
	_, raw := writeSliceFile(t, []sliceTensor{{name: "w", dt: format.U8, shape: []int64{int64(len(data))}, data: data}},
		encode.WithChunkSize(1024), encode.WithAlignment(64))
	var failed, ok int
	for seed := range uint64(60) {
		m := &mutatingReader{raw: raw, r: rand.New(rand.NewPCG(seed, 3))}
		f, err := decode.NewReader(sizedMutating{m}, int64(len(raw)), decode.WithVerify(decode.VerifyLazy), decode.WithCheckedReads())
		if err != nil {
			continue // the header read was changed
		}
		tt, _ := f.Tensor("w")
		m.dataFrom = tt.Offset
		got := make([]byte, len(data))
		if err := tt.ReadInto(got); err != nil {
			if !errors.Is(err, format.ErrDigest) && !errors.Is(err, format.ErrPadding) {
				t.Fatalf("seed %d: %v, want a digest or padding error", seed, err)
			}
			failed++
			continue
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("seed %d: ReadInto returned bytes that differ from the signed ones", seed)
		}
		ok++
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("the changing source did not exercise both outcomes: %d failed, %d ok", failed, ok)
	}
}
