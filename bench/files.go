// Package bench measures safeweights against the readers people use today
// (github.com/nlpodyssey/safetensors, github.com/gpustack/gguf-parser-go) and
// against the BLAKE3 library it hashes with. It is its own module so that
// users of safeweights never download the peers.
//
// The measurements are testing.B functions; bench_test.go runs them with
// small sizes under `go test -bench`, and cmd/swtbench runs them side by side
// with the sizes of docs/BENCHMARKS.md and prints the ratios (run.sh).
package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"

	"github.com/safeweights/safeweights/format"
)

// Layout describes a model whose three encodings (.swt, .safetensors, .gguf)
// hold the same tensors: Count F32 tensors of shape Shape, all zero.
type Layout struct {
	Count int
	Shape []int64
}

// Name is the name of tensor i, shaped like a transformer's.
func (l Layout) Name(i int) string {
	kinds := [...]string{"attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight",
		"attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
		"mlp.down_proj.weight", "input_layernorm.weight"}
	return fmt.Sprintf("model.layers.%d.%s", i/len(kinds), kinds[i%len(kinds)])
}

// TensorBytes is the byte length of one tensor.
func (l Layout) TensorBytes() int64 {
	n := int64(4)
	for _, d := range l.Shape {
		n *= d
	}
	return n
}

// WriteSWT writes the layout as a valid .swt file whose tensor bytes are a
// hole (Truncate): every tensor is zero, so each chunk digest is the digest
// of zeros, computed once. The header and preamble are what encode writes.
func WriteSWT(path string, l Layout, chunkSize uint64) error {
	const align = format.DefaultAlignment
	alg := format.BLAKE3
	tb := uint64(l.TensorBytes())
	nchunks := format.NumChunks(tb, chunkSize)
	zero := make([]byte, min(tb, chunkSize))
	full := alg.Sum(zero)
	last := full
	if r := tb % chunkSize; r != 0 && tb > chunkSize {
		last = alg.Sum(zero[:r])
	}
	digests := make([]byte, 0, nchunks*format.DigestSize)
	for c := uint64(0); c < nchunks; c++ {
		if c == nchunks-1 {
			digests = append(digests, last[:]...)
		} else {
			digests = append(digests, full[:]...)
		}
	}
	hf := format.HeaderFields{ChunkSize: chunkSize, Producer: "safeweights bench"}
	var pos uint64
	for i := range l.Count {
		off := uint64(0)
		if i > 0 {
			off, _ = format.AlignUp(pos, align)
		}
		hf.Tensors = append(hf.Tensors, format.TensorEntry{
			Name: l.Name(i), DType: format.F32, Shape: l.Shape,
			Offset: off, StoredLength: tb, Digests: digests,
		})
		pos = off + tb
	}
	hdr := format.BuildHeader(&hf)
	p := format.Preamble{
		VersionMajor: format.VersionMajor, VersionMinor: format.VersionMinor,
		Alignment: align, DigestAlgorithm: alg,
		DataLength: pos, HeaderLength: uint64(len(hdr)),
		HeaderDigest: alg.Sum(hdr),
	}
	p.DataOffset, _ = format.AlignUp(format.PreambleSize, align)
	p.HeaderOffset, _ = format.AlignUp(p.DataEnd(), format.HeaderAlignment)
	pre, _ := p.AppendBinary(nil)
	return writeSparse(path, pre, int64(p.HeaderOffset), hdr)
}

// WriteSafetensors writes the layout as a .safetensors file: an 8-byte
// header length, the JSON header padded with spaces to 8 bytes, then the
// tensor bytes as a hole.
func WriteSafetensors(path string, l Layout) error {
	type info struct {
		DType       string   `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	// Written by hand to keep file order (a Go map would sort the keys).
	js := []byte(`{"__metadata__":{"producer":"safeweights bench"}`)
	tb := l.TensorBytes()
	for i := range l.Count {
		name, _ := json.Marshal(l.Name(i))
		v, _ := json.Marshal(info{"F32", l.Shape, [2]int64{int64(i) * tb, int64(i+1) * tb}})
		js = append(js, ',')
		js = append(js, name...)
		js = append(js, ':')
		js = append(js, v...)
	}
	js = append(js, '}')
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	head := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	head = append(head, js...)
	return writeSparse(path, head, int64(len(head))+int64(l.Count)*tb, nil)
}

// WriteGGUF writes the layout as a minimal valid GGUF v3 file: two metadata
// entries (architecture and alignment), the tensor infos (dimensions
// innermost first, as GGUF orders them; type F32), padding to 32 bytes, then
// the tensor bytes as a hole.
func WriteGGUF(path string, l Layout) error {
	const align = 32
	le := binary.LittleEndian
	str := func(b []byte, s string) []byte {
		b = le.AppendUint64(b, uint64(len(s)))
		return append(b, s...)
	}
	b := []byte("GGUF")
	b = le.AppendUint32(b, 3)
	b = le.AppendUint64(b, uint64(l.Count))
	b = le.AppendUint64(b, 2)
	b = str(b, "general.architecture")
	b = le.AppendUint32(b, 8) // string
	b = str(b, "llama")
	b = str(b, "general.alignment")
	b = le.AppendUint32(b, 4) // uint32
	b = le.AppendUint32(b, align)
	tb := l.TensorBytes()
	stride := (tb + align - 1) / align * align
	for i := range l.Count {
		b = str(b, l.Name(i))
		b = le.AppendUint32(b, uint32(len(l.Shape)))
		for j := len(l.Shape) - 1; j >= 0; j-- {
			b = le.AppendUint64(b, uint64(l.Shape[j]))
		}
		b = le.AppendUint32(b, 0) // GGML_TYPE_F32
		b = le.AppendUint64(b, uint64(int64(i)*stride))
	}
	for len(b)%align != 0 {
		b = append(b, 0)
	}
	return writeSparse(path, b, int64(len(b))+int64(l.Count-1)*stride+tb, nil)
}

// writeSparse writes head at 0, a hole up to tailAt, then tail.
func writeSparse(path string, head []byte, tailAt int64, tail []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(head)
	if err == nil {
		err = f.Truncate(tailAt)
	}
	if err == nil && len(tail) > 0 {
		_, err = f.WriteAt(tail, tailAt)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
