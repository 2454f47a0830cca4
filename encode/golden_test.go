package encode_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// goldenModels are deterministic models whose files must not change from
// one version of the writer to the next: a change to how the writer hashes,
// buffers or writes must leave every byte where it was. The digests were
// taken from the writer before its write path was pipelined.
var goldenModels = []struct {
	name   string
	opts   []encode.Option
	sha256 string
}{
	{"defaults", nil, "7b21ed79af5a93958db8d5812a850881b55c0bb303e1a5cba53da8504808882c"},
	{"small-chunks-sha256", []encode.Option{encode.WithChunkSize(1024), encode.WithDigest(format.SHA256), encode.WithAlignment(64)}, "f2127d2fbae13d9791de9d70f9875d9a09d78ec1d400e0e7a6671310e1823203"},
	{"one-worker", []encode.Option{encode.WithWorkers(1), encode.WithChunkSize(64 << 10)}, "6610c4ca938a88d2270b369aef3ac765b6fd1f7c9d1b485ac0b529f169bdbf87"},
}

// writeGolden writes tensors of sizes around the chunk, segment and
// alignment boundaries, raw and compressed, from memory and from readers.
func writeGolden(path string, opts []encode.Option) error {
	w, err := encode.Create(path, append([]encode.Option{encode.WithProducer("golden"), encode.WithMetadata(map[string]string{"k": "v", "model": "golden"})}, opts...)...)
	if err != nil {
		return err
	}
	x := uint64(0x9e3779b97f4a7c15)
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[i] = byte(x)
		}
		return b
	}
	sizes := []int{0, 1, 1023, 1024, 1025, 4096, 65537, 1 << 20, 4<<20 + 3, 9<<20 + 17}
	for i, n := range sizes {
		b := data(n)
		name := fmt.Sprintf("t%d", i)
		if err := w.Add(name+".add", format.U8, []int64{int64(n)}, b); err != nil {
			return err
		}
		if err := w.AddFrom(name+".from", format.U8, []int64{int64(n)}, bytes.NewReader(b)); err != nil {
			return err
		}
		// Compressible: low nibbles only.
		for j := range b {
			b[j] &= 0x0f
		}
		if err := w.Add(name+".zstd", format.U8, []int64{int64(n)}, b, encode.Compress(1+i%4), encode.Attribute("i", fmt.Sprint(i))); err != nil {
			return err
		}
	}
	f32 := data(4 * 3 * 5)
	if err := w.Add("f32", format.F32, []int64{3, 5}, f32); err != nil {
		return err
	}
	return w.Close()
}

func TestOutputUnchanged(t *testing.T) {
	for _, m := range goldenModels {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.swt")
			if err := writeGolden(path, m.opts); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != m.sha256 {
				t.Errorf("file SHA-256 %s, want %s: the writer's output changed", got, m.sha256)
			}
		})
	}
}
