package format_test

import (
	"errors"
	"slices"
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

// TestCoverageMinorVersion checks that bytes no object references are
// refused in a file of a known minor version and allowed in a later one,
// whose unknown fields may reference them (SPEC.md R11).
func TestCoverageMinorVersion(t *testing.T) {
	hf := format.HeaderFields{ChunkSize: 1 << 22, Tensors: []format.TensorEntry{
		{Name: "a", DType: format.U8, Shape: []int64{0}},
		{Name: "b", DType: format.U8, Shape: []int64{0}},
	}}
	h := format.BuildHeader(&hf)
	p := format.Preamble{VersionMajor: 1, Alignment: 64, DataOffset: 128}
	if _, err := format.ParseHeader(h, &p, format.DefaultLimits()); err != nil {
		t.Fatalf("the encoder's header (two tables sharing a vtable): %v", err)
	}
	junk := append(slices.Clone(h), "\x00\x00\x00\x00#!/bin/sh\n"...)
	if _, err := format.ParseHeader(junk, &p, format.DefaultLimits()); !errors.Is(err, format.ErrHeader) {
		t.Errorf("junk in a minor-0 header: %v", err)
	}
	p.VersionMinor = format.VersionMinor + 1
	if _, err := format.ParseHeader(junk, &p, format.DefaultLimits()); err != nil {
		t.Errorf("junk in a header of a later minor version: %v", err)
	}
}
