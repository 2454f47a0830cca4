package format_test

import (
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/format"
)

// BenchmarkParseHeader verifies the header of a file of 1,000 small tensors
// (structure, rules and byte coverage), the part of opening a file that
// grows with the tensor count.
func BenchmarkParseHeader(b *testing.B) {
	const n = 1000
	hf := format.HeaderFields{ChunkSize: 1 << 22, Producer: "bench", Metadata: []format.KeyValue{{Key: "k", Value: "v"}}}
	var off uint64
	for i := range n {
		hf.Tensors = append(hf.Tensors, format.TensorEntry{
			Name: "model.layers." + strconv.Itoa(i) + ".weight", DType: format.F32, Shape: []int64{16, 16},
			Offset: off, StoredLength: 1024, Digests: make([]byte, format.DigestSize),
		})
		off += 4096
	}
	hf.Tensors[n-1].StoredLength = 1024
	p := format.Preamble{VersionMajor: 1, Alignment: 4096, DataOffset: 4096, DataLength: off - 4096 + 1024}
	h := format.BuildHeader(&hf)
	if _, err := format.ParseHeader(h, &p, format.DefaultLimits()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(h)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := format.ParseHeader(h, &p, format.DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
