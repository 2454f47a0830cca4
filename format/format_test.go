package format_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/testvectors"
)

func TestKindsClosed(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range format.Kinds() {
		if seen[k.Name()] {
			t.Errorf("kind %s twice", k.Name())
		}
		seen[k.Name()] = true
		if got, ok := format.KindByName(k.Name()); !ok || got != k {
			t.Errorf("KindByName(%s)", k.Name())
		}
		err := error(format.Errorf(k, "R1", 3, "f", "r"))
		if !errors.Is(err, k) || format.KindOf(err) != k {
			t.Errorf("%s: errors.Is fails", k.Name())
		}
	}
}

func TestAlignUpAndCounts(t *testing.T) {
	if v, ok := format.AlignUp(math.MaxUint64-10, 64); ok {
		t.Errorf("AlignUp overflow gave %d", v)
	}
	if v, ok := format.AlignUp(65, 64); !ok || v != 128 {
		t.Errorf("AlignUp(65, 64) = %d", v)
	}
	for _, c := range []struct {
		shape []int64
		n     uint64
		ok    bool
	}{
		{nil, 1, true}, {[]int64{0, 1 << 62}, 0, true}, {[]int64{-1}, 0, false},
		{[]int64{1 << 32, 1 << 31}, 0, false}, {[]int64{1 << 31, 1 << 31}, 1 << 62, true},
	} {
		if n, ok := format.NumElements(c.shape); ok != c.ok || (ok && n != c.n) {
			t.Errorf("NumElements(%v) = %d, %v", c.shape, n, ok)
		}
	}
	if format.NumChunks(0, 1024) != 0 || format.NumChunks(1025, 1024) != 2 || format.NumChunks(1024, 1024) != 1 {
		t.Error("NumChunks")
	}
}

func TestPreambleRoundTrip(t *testing.T) {
	cases, err := testvectors.Core()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Kind != nil {
			continue
		}
		p, err := format.ParsePreamble(c.Data, int64(len(c.Data)), format.DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		b, _ := p.AppendBinary(nil)
		if !bytes.Equal(b, c.Data[:format.PreambleSize]) {
			t.Errorf("%s: preamble does not round-trip", c.Name)
		}
	}
}

func TestSignatureBlockRoundTrip(t *testing.T) {
	es := []format.SignatureEntry{
		{Algorithm: format.Ed25519, KeyID: [32]byte{1}, Timestamp: -5, Comment: "c\u00e9", Signature: []byte{1, 2, 3}},
		{Algorithm: 7, Signature: bytes.Repeat([]byte{9}, format.MaxSignatureLength)},
	}
	b := format.AppendSignatureBlock(nil, es)
	got, err := format.ParseSignatureBlock(b, 0, format.DefaultLimits())
	if err != nil || len(got) != 2 || got[0].Comment != es[0].Comment || got[0].Timestamp != -5 ||
		!bytes.Equal(got[1].Signature, es[1].Signature) || got[0].KeyID != es[0].KeyID {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := format.ParseSignatureBlock(b, 0, format.Limits{MaxSignatures: 1}); !errors.Is(err, format.ErrLimit) {
		t.Errorf("count over the limit: %v", err)
	}
}

// FuzzHeader feeds arbitrary bytes to ParseHeader as the header of a file
// whose preamble fits them, and reads every accessor of an accepted header:
// the generated FlatBuffers accessors must never see a buffer that makes
// them panic.
func FuzzHeader(f *testing.F) {
	cases, err := testvectors.Core()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		p, err := format.ParsePreamble(c.Data, int64(len(c.Data)), format.DefaultLimits())
		if err == nil {
			f.Add(c.Data[p.HeaderOffset:p.HeaderEnd()], p.Alignment, p.DataLength)
		}
	}
	lim := format.Limits{MaxTensors: 256, MaxMetadataSize: 1 << 16}.WithDefaults()
	f.Fuzz(func(t *testing.T, h []byte, align uint32, dataLen uint64) {
		p := format.Preamble{Alignment: max(64, align&(1<<20-1)&^63), DataOffset: 128, DataLength: dataLen}
		hdr, err := format.ParseHeader(h, &p, lim)
		if err != nil {
			if format.KindOf(err) == nil {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for i := range hdr.NumTensors() {
			e := hdr.Tensor(i)
			if n, ok := e.Length(); !ok || (e.Compression == format.None && n != e.StoredLength) {
				t.Fatalf("tensor %d: length %d %v", i, n, ok)
			}
			if hdr.Lookup(e.Name) != i {
				t.Fatalf("lookup %q", e.Name)
			}
			if uint64(len(e.Digests)) != format.NumChunks(e.StoredLength, hdr.ChunkSize())*format.DigestSize {
				t.Fatalf("tensor %d: %d digest bytes", i, len(e.Digests))
			}
			_ = hdr.SortedIndex(i)
		}
		hdr.Metadata()
		hdr.Producer()
		hdr.Provenance()
		// Coverage (R11): 8 more bytes that no object references can never
		// be padding.
		if _, err := format.ParseHeader(append(slices.Clone(h), 0, 0, 0, 0, 0, 0, 0, 0), &p, lim); !errors.Is(err, format.ErrHeader) {
			t.Fatalf("header with 8 unreferenced bytes appended: %v", err)
		}
	})
}
