package gpu

import (
	"bytes"
	"math/rand/v2"

	"github.com/safeweights/safeweights/format"
)

type spec struct {
	name       string
	length     int64
	compressed bool // stored as a different byte string, decoded by readInto
}

// buildView lays the tensors out as the format does (each at a multiple of
// align, zero padding between), fills them with random bytes and computes
// their chunk digests. The file starts with one alignment of header bytes.
func buildView(seed uint64, specs []spec, align, chunk int64) *fileView {
	r := rand.New(rand.NewPCG(seed, 1))
	v := &fileView{chunkSize: chunk, alignment: align, alg: format.BLAKE3}
	off := max(align, 128)
	type laid struct {
		off     int64
		stored  []byte
		decoded []byte
	}
	var ls []laid
	for _, s := range specs {
		off = (off + align - 1) / align * align
		dec := make([]byte, s.length)
		for i := range dec {
			dec[i] = byte(r.Uint32())
		}
		st := dec
		if s.compressed {
			st = append([]byte("z:"), dec[:len(dec)/2]...) // any other bytes
		}
		ls = append(ls, laid{off, st, dec})
		off += int64(len(st))
	}
	// A trailing header; the capacity ends on a page boundary, as a
	// mapping's does.
	file := make([]byte, off+1000, (off+1000+4095)/4096*4096)
	for i := range file[:max(align, 128)] {
		file[i] = 0xEE
	}
	for i := off; i < int64(len(file)); i++ {
		file[i] = 0xDD
	}
	for i, s := range specs {
		l := ls[i]
		copy(file[l.off:], l.stored)
		var digests [][]byte
		for c := int64(0); c < int64(len(l.stored)); c += chunk {
			sum := format.BLAKE3.Sum(l.stored[c:min(c+chunk, int64(len(l.stored)))])
			digests = append(digests, sum[:])
		}
		comp := format.None
		if s.compressed {
			comp = format.Zstd
		}
		dec := l.decoded
		v.tensors = append(v.tensors, viewTensor{
			name: s.name, dtype: format.U8, shape: []int64{s.length}, compression: comp,
			offset: l.off, stored: int64(len(l.stored)), length: s.length,
			numChunks:   len(digests),
			chunkDigest: func(i int) []byte { return digests[i] },
			readInto:    func(dst []byte) error { copy(dst, dec); return nil },
		})
	}
	v.mapping = file
	v.readerAt = bytes.NewReader(file)
	v.size = int64(len(file))
	return v
}

// decoded returns tensor i's canonical bytes.
func (v *fileView) decoded(i int) []byte {
	b := make([]byte, v.tensors[i].length)
	_ = v.tensors[i].readInto(b)
	return b
}

// oddSpecs are tensors whose sizes straddle every boundary the plan knows.
func oddSpecs(chunk int64) []spec {
	return []spec{
		{"empty", 0, false},
		{"one", 1, false},
		{"page-1", 4095, false},
		{"page", 4096, false},
		{"page+1", 4097, false},
		{"chunks+5", 3*chunk + 5, false},
		{"zipped", 10000, true},
		{"big", 20*chunk + 77, false},
		{"tail", 63, false},
	}
}
