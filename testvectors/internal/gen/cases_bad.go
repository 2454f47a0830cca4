package main

import (
	"bytes"
	"slices"
	"strings"

	"github.com/safeweights/safeweights/format"
)

// moveHeader inserts n zero bytes before the header and records the header
// offset where it now is: only R6 (the header follows the data at the next
// multiple of 8) is broken.
func moveHeader(n int) func() []byte {
	return with(one(), func(s *fileSpec) {
		s.pre = func(b *build) { b.pre.HeaderOffset += uint64(n) }
		s.file = func(b *build) {
			at := len(b.out) - len(b.header)
			b.out = append(b.out[:at:at], append(make([]byte, n), b.out[at:]...)...)
		}
	})
}

func preamble() []vector {
	patch := func(off int, v ...byte) func() []byte {
		return file(one(), func(b []byte) []byte { copy(b[off:], v); return b })
	}
	return []vector{
		bad("magic-wrong", format.ErrMagic, "R1", "the second byte of the magic is X", patch(1, 'X')),
		bad("magic-wrong-short-file", format.ErrMagic, "R1", "a 16-byte file that does not start with the magic",
			func() []byte { return []byte("PK\x03\x04 not swt!") }),
		bad("magic-text-mode-corruption", format.ErrMagic, "R1", "the CR LF of the magic turned into LF, as a text-mode transfer does",
			file(one(), func(b []byte) []byte { return append(b[:4:4], b[5:]...) })),
		bad("short-file", format.ErrTruncated, "R1", "the first 100 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:100] })),
		bad("empty-file", format.ErrTruncated, "R1", "a file of 0 bytes", func() []byte { return nil }),
		bad("short-file-7-bytes-not-magic", format.ErrTruncated, "R1", "a file of 7 bytes that do not start the magic: fewer than 8 bytes are always truncated",
			func() []byte { return []byte("#!/bin/") }),
		bad("short-file-1-bytes", format.ErrTruncated, "R1", "the first 1 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:1] })),
		bad("short-file-2-bytes", format.ErrTruncated, "R1", "the first 2 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:2] })),
		bad("short-file-3-bytes", format.ErrTruncated, "R1", "the first 3 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:3] })),
		bad("short-file-4-bytes", format.ErrTruncated, "R1", "the first 4 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:4] })),
		bad("short-file-5-bytes", format.ErrTruncated, "R1", "the first 5 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:5] })),
		bad("short-file-6-bytes", format.ErrTruncated, "R1", "the first 6 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:6] })),
		bad("short-file-7-bytes", format.ErrTruncated, "R1", "the first 7 bytes of a valid file",
			file(one(), func(b []byte) []byte { return b[:7] })),
		bad("version-major-2", format.ErrVersion, "R2", "major version 2", pre(one(), func(p *format.Preamble) { p.VersionMajor = 2 })),
		bad("version-major-0", format.ErrVersion, "R2", "major version 0", pre(one(), func(p *format.Preamble) { p.VersionMajor = 0 })),
		bad("flags-unknown", format.ErrVersion, "R2", "flag bit 0 set: a later feature an old reader must not ignore",
			pre(one(), func(p *format.Preamble) { p.Flags = 1 })),
		bad("reserved-nonzero", format.ErrVersion, "R2", "the last reserved byte of the preamble is 1", patch(127, 1)),
		bad("alignment-not-power-of-two", format.ErrLayout, "R3", "alignment 96", pre(one(), func(p *format.Preamble) { p.Alignment = 96 })),
		bad("alignment-below-minimum", format.ErrLayout, "R3", "alignment 32, below the minimum of 64",
			pre(one(), func(p *format.Preamble) { p.Alignment = 32 })),
		bad("alignment-above-maximum", format.ErrLayout, "R3", "alignment 32 MiB, above the maximum of 16 MiB",
			pre(one(), func(p *format.Preamble) { p.Alignment = 32 << 20 })),
		bad("digest-algorithm-unknown", format.ErrUnsupported, "R4", "digest algorithm 3",
			pre(one(), func(p *format.Preamble) { p.DigestAlgorithm = 3 })),
		bad("digest-algorithm-zero", format.ErrUnsupported, "R4", "digest algorithm 0",
			pre(one(), func(p *format.Preamble) { p.DigestAlgorithm = 0 })),
		bad("data-offset-wrong", format.ErrLayout, "R5", "data_offset 192 where alignment 64 gives 128",
			pre(one(), func(p *format.Preamble) { p.DataOffset = 192 })),
		bad("data-length-overflow", format.ErrLayout, "R5", "data_length 2^64-1: data_offset + data_length overflows",
			pre(one(), func(p *format.Preamble) { p.DataLength = 1<<64 - 1 })),
		bad("header-offset-misaligned", format.ErrLayout, "R6", "header_offset one past the 8-aligned end of the data; the header really is there, after one more zero byte",
			moveHeader(1)),
		bad("header-offset-after-gap", format.ErrLayout, "R6", "header_offset 8 bytes after the end of the data rounded up to 8; the header really is there, after 8 more zero bytes",
			moveHeader(8)),
		bad("header-length-over-limit", format.ErrLimit, "R7", "header_length 64 MiB + 1, over the default header limit; it also runs past the end of the file (a real 64 MiB header is too large for a vector), so this vector also checks that R7 comes before R8",
			pre(one(), func(p *format.Preamble) { p.HeaderLength = 64<<20 + 1 })),
		bad("header-length-over-configured-limit", format.ErrLimit, "R7", "a valid file read with a header limit of 64 bytes",
			one().bytes).withLimits(format.Limits{MaxHeaderSize: 64}),
		bad("header-length-too-short", format.ErrHeader, "R7", "header_length 4, too short for a FlatBuffers root offset and identifier",
			pre(one(), func(p *format.Preamble) { p.HeaderLength = 4 })),
		bad("header-past-eof", format.ErrTruncated, "R8", "the last byte of the header is missing",
			file(one(), func(b []byte) []byte { return b[:len(b)-1] })),
		bad("header-length-past-eof", format.ErrTruncated, "R8", "header_length 8 bytes more than the file holds",
			pre(one(), func(p *format.Preamble) { p.HeaderLength += 8 })),
		bad("header-digest-mismatch", format.ErrHeader, "R10", "one bit of the header digest in the preamble flipped",
			pre(one(), func(p *format.Preamble) { p.HeaderDigest[5] ^= 1 })),
		bad("header-byte-changed", format.ErrHeader, "R10", "one byte of the header changed after its digest was recorded",
			file(one(), func(b []byte) []byte { b[len(b)-3] ^= 0x20; return b })),
		bad("header-digest-other-algorithm", format.ErrHeader, "R10", "the preamble names SHA-256 but the header digest is BLAKE3-256",
			pre(one(), func(p *format.Preamble) { p.DigestAlgorithm = format.SHA256 })),
	}
}

// structure: FlatBuffers defects (R11, R12). The header digest is recomputed
// after each patch, so the reader reaches the structural check.
func structure() []vector {
	h := func(comment string, name string, edit func(f *fb)) vector {
		return bad("fb-"+name, format.ErrHeader, "R11", comment, header(withMeta(), func(b *build) { edit(&b.fb) }))
	}
	req := func(name, comment string, edit func(f *fb)) vector {
		return bad(name, format.ErrHeader, "R12", comment, header(withMeta(), func(b *build) { edit(&b.fb) }))
	}
	cover := func(name, comment string, s fileSpec, edit func(f *fb)) vector {
		return bad(name, format.ErrHeader, "R11", comment, header(s, func(b *build) { edit(&b.fb) }))
	}
	coverage := []vector{
		cover("header-junk-shell-line", "31 bytes no object references, a shell script line, at the end of the digest-covered header",
			withMeta(), func(f *fb) { f.append(8, []byte("#!/bin/sh\necho polyglot; exit\n\x00")[:31]) }),
		cover("header-junk-zip-record", "a zip end-of-central-directory record (22 bytes) that no object references, inside the header",
			withMeta(), func(f *fb) { f.append(8, append([]byte("PK\x05\x06"), make([]byte, 18)...)) }),
		cover("header-zero-gap-8-bytes", "8 zero bytes at the end of the header: padding is fewer than 8 bytes",
			withMeta(), func(f *fb) { f.append(8, make([]byte, 8)) }),
		cover("header-objects-overlap", "the producer string is also the first metadata key: two references to one string (only vtables may be shared)",
			withMeta(), func(f *fb) {
				kv := f.table(f.ref(f.root(), hMetadata), 0)
				f.point(f.field(f.root(), hProducer), f.ref(kv, 0))
			}),
		cover("tensor-shapes-shared", "the second tensor's shape field points at the first tensor's shape vector: were shapes shared, a small header could declare many tensors whose decoded shapes take memory out of proportion to it",
			two(), func(f *fb) { f.point(f.field(f.tensor(1), tShape), f.ref(f.tensor(0), tShape)) }),
		cover("fb-vtable-entry-below-4", "the root vtable's chunk_size entry is 2: a field may not overlap the table's offset to its vtable",
			withMeta(), func(f *fb) { f.put16(f.slotEntry(f.root(), hChunkSize), 2) }),
		cover("fb-uoffset-zero", "the name_index offset of a file without tensors is 0: it names its own bytes as an empty vector, which overlaps the field",
			fileSpec{}, func(f *fb) { f.put32(f.field(f.root(), hNameIndex), 0) }),
	}
	return append(coverage, []vector{
		h("file identifier SWT2 instead of SWT1", "identifier-wrong", func(f *fb) { copy(f.b[4:], "SWT2") }),
		h("the root offset points past the end of the header", "root-offset-past-end", func(f *fb) { f.put32(0, uint32(len(f.b))+16) }),
		h("the root offset is not 4-aligned", "root-table-misaligned", func(f *fb) { f.put32(0, f.root()+2) }),
		h("the root table's vtable lies past the end of the header", "vtable-past-end", func(f *fb) {
			r := f.root()
			f.put32(r, uint32(int32(int64(r)-int64(len(f.b))-4)))
		}),
		h("the root table's vtable lies before the start of the header", "vtable-before-start", func(f *fb) {
			r := f.root()
			f.put32(r, r+64)
		}),
		h("the root table's vtable is misaligned", "vtable-misaligned", func(f *fb) { r := f.root(); f.put32(r, f.u32(r)+1) }),
		h("the root vtable's length runs past the end of the header", "vtable-length-past-end", func(f *fb) {
			f.put16(f.vtable(f.root()), 0xfffe)
		}),
		h("the root vtable's length is odd", "vtable-length-odd", func(f *fb) {
			vt := f.vtable(f.root())
			f.put16(vt, le.Uint16(f.b[vt:])+1)
		}),
		h("the root vtable's length is 2, below the minimum of 4", "vtable-length-too-small", func(f *fb) {
			f.put16(f.vtable(f.root()), 2)
		}),
		h("the root table's inline size runs past the end of the header", "table-size-past-end", func(f *fb) {
			f.put16(f.vtable(f.root())+2, 0xfff0)
		}),
		h("the 8-byte chunk_size field starts 4 bytes before the end of its table", "field-outside-table", func(f *fb) {
			vt := f.vtable(f.root())
			size := le.Uint16(f.b[vt+2:])
			f.put16(f.slotEntry(f.root(), hChunkSize), size-4)
		}),
		h("the 8-byte chunk_size field is at a position that is not a multiple of 8", "field-misaligned", func(f *fb) {
			r := f.root()
			e := f.slotEntry(r, hChunkSize)
			size := le.Uint16(f.b[f.vtable(r)+2:])
			off := le.Uint16(f.b[e:])
			if off >= 8 {
				off -= 4
			} else if off+12 <= size {
				off += 4
			} else {
				panic("no room to misalign chunk_size")
			}
			f.put16(e, off)
		}),
		h("the tensors vector offset points past the end of the header", "vector-offset-past-end", func(f *fb) {
			f.put32(f.field(f.root(), hTensors), uint32(len(f.b)))
		}),
		h("the tensors vector offset is not 4-aligned", "vector-misaligned", func(f *fb) {
			p := f.field(f.root(), hTensors)
			f.put32(p, f.u32(p)+2)
		}),
		h("the tensors vector claims 2^30 elements", "vector-length-past-end", func(f *fb) {
			f.put32(f.ref(f.root(), hTensors), 1<<30)
		}),
		h("the shape vector of 64-bit dimensions starts at a position that is not a multiple of 8", "vector-64bit-misaligned", func(f *fb) {
			// A vector of one dimension whose elements start at 4 mod 8.
			p := f.append(8, []byte{1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0})
			f.point(f.field(f.tensor(0), tShape), p)
		}),
		h("the name string's length runs past the end of the header", "string-length-past-end", func(f *fb) {
			f.put32(f.ref(f.tensor(0), tName), 0x7fffffff)
		}),
		h("the name string is not NUL-terminated", "string-not-nul-terminated", func(f *fb) {
			s := f.ref(f.tensor(0), tName)
			f.b[s+4+f.u32(s)] = 'x'
		}),
		h("the name string's terminator would be the first byte after the header", "string-terminator-past-end", func(f *fb) {
			f.b = append(f.b, 0, 0, 0, 0) // keep the next append at the very end
			p := f.append(4, []byte{1, 0, 0, 0, 'w'})
			f.point(f.field(f.tensor(0), tName), p)
		}),
		h("the first tensor's table offset points past the end of the header", "table-offset-past-end", func(f *fb) {
			f.put32(f.elem(f.ref(f.root(), hTensors), 0, 4), uint32(len(f.b)))
		}),
		h("the first tensor's table offset is not 4-aligned", "table-offset-misaligned", func(f *fb) {
			p := f.elem(f.ref(f.root(), hTensors), 0, 4)
			f.put32(p, f.u32(p)+1)
		}),
		h("the provenance table's vtable lies past the end of the header", "nested-table-vtable-past-end", func(f *fb) {
			t := f.ref(f.root(), hProvenance)
			f.put32(t, uint32(int32(int64(t)-int64(len(f.b)))))
		}),
		h("a metadata entry's table offset points past the end of the header", "keyvalue-offset-past-end", func(f *fb) {
			f.put32(f.elem(f.ref(f.root(), hMetadata), 1, 4), uint32(len(f.b)))
		}),
		req("tensor-name-missing", "the tensor's name field is absent from its vtable", func(f *fb) {
			f.put16(f.slotEntry(f.tensor(0), tName), 0)
		}),
		bad("metadata-value-missing", format.ErrHeader, "R12", "a metadata entry's value field is absent from its vtable",
			header(with1(func(s *fileSpec) { s.meta = []format.KeyValue{{Key: "k", Value: "v"}} }), func(b *build) {
				f := &b.fb
				f.put16(f.slotEntry(f.table(f.ref(f.root(), hMetadata), 0), kvValue), 0)
			})),
		bad("attribute-key-missing", format.ErrHeader, "R12", "a tensor attribute's key field is absent from its vtable",
			header(with1(func(s *fileSpec) { s.tensors[0].attrs = []format.KeyValue{{Key: "k", Value: "v"}} }), func(b *build) {
				f := &b.fb
				f.put16(f.slotEntry(f.table(f.ref(f.tensor(0), tAttrs), 0), kvKey), 0)
			})),
	}...)
}

// with1 returns one() changed by edit.
func with1(edit func(s *fileSpec)) fileSpec {
	s := one()
	edit(&s)
	return s
}

func tensors() []vector {
	name := func(n string) func() []byte { return tensorEdit(one(), 0, func(e *format.TensorEntry) { e.Name = n }) }
	dtype := func(d format.DType) func() []byte {
		return tensorEdit(one(), 0, func(e *format.TensorEntry) { e.DType = d })
	}
	shape := func(s ...int64) func() []byte {
		return tensorEdit(one(), 0, func(e *format.TensorEntry) { e.Shape = s })
	}
	// [2, 3, 1, ..., 1]: the six elements the tensor's 24 bytes hold, so
	// only the rank is wrong.
	rank17 := []int64{2, 3}
	for range 15 {
		rank17 = append(rank17, 1)
	}
	return []vector{
		bad("chunk-size-absent", format.ErrChunking, "R13", "the header has no chunk_size (it reads as 0)",
			fields(one(), func(b *build) { b.hf.ChunkSize = 0 })),
		bad("chunk-size-not-power-of-two", format.ErrChunking, "R13", "chunk_size 1536",
			fields(one(), func(b *build) { b.hf.ChunkSize = 1536 })),
		bad("chunk-size-too-small", format.ErrChunking, "R13", "chunk_size 512, below 1 KiB",
			fields(one(), func(b *build) { b.hf.ChunkSize = 512 })),
		bad("chunk-size-too-large", format.ErrChunking, "R13", "chunk_size 2 GiB, above 1 GiB",
			fields(one(), func(b *build) { b.hf.ChunkSize = 2 << 30 })),
		bad("tensor-count-over-limit", format.ErrLimit, "R14", "five tensors read with a limit of four",
			with(one(), func(s *fileSpec) {
				for i := range 4 {
					s.tensors = append(s.tensors, tensorSpec{name: "w" + itoa(i), dt: format.U8, shape: []int64{1}, data: []byte{byte(i)}})
				}
			})).withLimits(format.Limits{MaxTensors: 4}),
		bad("name-empty", format.ErrName, "R15", "a tensor named by the empty string", name("")),
		bad("name-invalid-utf8", format.ErrName, "R15", "a name holding the byte 0xff", name("w\xff")),
		bad("name-overlong-utf8", format.ErrName, "R15", "a name holding an overlong encoding of '/' (C0 AF)", name("a\xc0\xafb")),
		bad("name-utf16-surrogate", format.ErrName, "R15", "a name holding an encoded UTF-16 surrogate (ED A0 80)", name("a\xed\xa0\x80")),
		bad("name-holds-nul", format.ErrName, "R15", "a name holding a NUL byte", name("a\x00b")),
		bad("name-over-limit", format.ErrLimit, "R15", "a name of 1025 bytes, over the default limit of 1024", name(strings.Repeat("n", 1025))),
		bad("name-over-configured-limit", format.ErrLimit, "R15", "a name of 9 bytes read with a name limit of 8",
			name("123456789")).withLimits(format.Limits{MaxNameLength: 8}),
		bad("dtype-unknown", format.ErrDType, "R16", "dtype 18, one past C128", dtype(18)),
		bad("dtype-zero", format.ErrDType, "R16", "dtype 0 (INVALID; the field absent reads as 0)", dtype(0)),
		bad("dtype-255", format.ErrDType, "R16", "dtype 255", dtype(255)),
		bad("rank-over-limit", format.ErrLimit, "R17", "rank 17, over the default limit of 16", shape(rank17...)),
		bad("rank-over-configured-limit", format.ErrLimit, "R17", "rank 2 read with a rank limit of 1",
			shape(2, 3)).withLimits(format.Limits{MaxRank: 1}),
		bad("shape-dimension-negative", format.ErrShape, "R17", "a dimension of 2^64-1 (-1 as a signed integer)", shape(-1, -6)),
		bad("shape-element-count-overflow", format.ErrShape, "R17", "shape [2^32, 2^32]: 2^64 elements",
			shape(1<<32, 1<<32)),
		bad("shape-element-count-over-int64", format.ErrShape, "R17", "shape [2^62, 2]: 2^63 elements, over the signed 64-bit range",
			shape(1<<62, 2)),
		bad("shape-byte-length-overflow", format.ErrShape, "R17", "F32 shape [2^62]: 2^64 bytes", shape(1<<62)),
		bad("stored-length-short", format.ErrShape, "R18", "a raw F32 tensor of shape [2, 3] storing 20 bytes, not 24",
			with(one(), func(s *fileSpec) { s.tensors[0].data = s.tensors[0].data[:20] })),
		bad("stored-length-long", format.ErrShape, "R18", "a raw F32 tensor of shape [2, 3] storing 28 bytes, not 24",
			with(one(), func(s *fileSpec) { s.tensors[0].data = pattern(28, 1) })),
		bad("compression-unknown", format.ErrCompression, "R18", "compression 2",
			tensorEdit(one(), 0, func(e *format.TensorEntry) { e.Compression = 2 })),
		bad("compressed-empty-tensor", format.ErrCompression, "R18", "a zstd tensor of shape [0]",
			with(one(), func(s *fileSpec) {
				s.tensors[0] = tensorSpec{name: "w", dt: format.F32, shape: []int64{0}, stored: zstdFrame(nil, false)}
				s.fields = setZstd(0)
			})),
		bad("compressed-nothing-stored", format.ErrCompression, "R18", "a zstd tensor of 1 KiB with a stored length of 0",
			with(zstdOne(), func(s *fileSpec) { s.tensors[0].stored = []byte{} })),
	}
}

func placement() []vector {
	return []vector{
		bad("tensor-offset-first-nonzero", format.ErrLayout, "R19", "the first tensor starts at offset 64 of the data region, after a hole",
			fields(one(), func(b *build) {
				b.data = append(make([]byte, 64), b.data...)
				b.hf.Tensors[0].Offset = 64
			})),
		bad("tensor-offset-misaligned", format.ErrLayout, "R19", "the second tensor starts at offset 10, right after the first, not at 64",
			fields(two(), func(b *build) {
				b.data = append(b.data[:10], b.data[64:]...)
				b.hf.Tensors[1].Offset = 10
			})),
		bad("tensor-overlap", format.ErrLayout, "R19", "the second tensor starts at offset 0, overlapping the first",
			fields(two(), func(b *build) {
				b.data = b.data[64:]
				b.hf.Tensors[1].Offset = 0
			})),
		bad("tensor-hole", format.ErrLayout, "R19", "the second tensor starts at offset 128, leaving a hole of 64 bytes",
			fields(two(), func(b *build) {
				b.data = append(b.data[:64:64], append(make([]byte, 64), b.data[64:]...)...)
				b.hf.Tensors[1].Offset = 128
			})),
		bad("tensors-out-of-order", format.ErrLayout, "R19", "the tensors listed in reverse file order",
			fields(two(), func(b *build) {
				t := b.hf.Tensors
				t[0], t[1] = t[1], t[0]
			})),
		bad("tensor-past-data-region", format.ErrLayout, "R20", "a 24-byte tensor in a data region of 16 bytes",
			fields(one(), func(b *build) { b.data = b.data[:16] })),
		bad("data-region-longer-than-tensors", format.ErrLayout, "R20", "64 zero bytes after the last tensor inside the data region",
			fields(one(), func(b *build) { b.data = append(b.data, make([]byte, 64)...) })),
		bad("no-tensors-nonempty-data-region", format.ErrLayout, "R20", "no tensors and a data region of 64 bytes",
			fields(fileSpec{producer: producer}, func(b *build) { b.data = make([]byte, 64) })),
		bad("compressed-stored-length-past-file", format.ErrLayout, "R20", "a zstd tensor whose stored length runs 1 MiB past the end of the file (chunks of 1 GiB, so its one digest is the count R21 wants)",
			tensorEdit(func() fileSpec { s := zstdOne(); s.chunk = 1 << 30; return s }(), 0, func(e *format.TensorEntry) { e.StoredLength += 1 << 20 })),
		bad("compressed-stored-length-2-63", format.ErrLayout, "R20", "a zstd tensor with a stored length of 2^63",
			tensorEdit(zstdOne(), 0, func(e *format.TensorEntry) { e.StoredLength = 1 << 63 })),
		bad("digests-one-missing", format.ErrChunking, "R21", "a tensor of three chunks with two digests",
			tensorEdit(chunked(), 0, func(e *format.TensorEntry) { e.Digests = e.Digests[:64] })),
		bad("digests-one-extra", format.ErrChunking, "R21", "a tensor of three chunks with four digests",
			tensorEdit(chunked(), 0, func(e *format.TensorEntry) { e.Digests = append(e.Digests, e.Digests[:32]...) })),
		bad("digests-partial", format.ErrChunking, "R21", "digests of 95 bytes, not a multiple of 32",
			tensorEdit(chunked(), 0, func(e *format.TensorEntry) { e.Digests = e.Digests[:95] })),
		bad("digests-absent", format.ErrChunking, "R21", "a non-empty tensor without a digests field",
			header(one(), func(b *build) { b.fb.put16(b.fb.slotEntry(b.fb.tensor(0), tDigests), 0) })),
		bad("empty-tensor-with-digest", format.ErrChunking, "R21", "an empty tensor with one digest",
			with(one(), func(s *fileSpec) {
				s.tensors[0] = tensorSpec{name: "w", dt: format.F32, shape: []int64{0}}
				s.fields = func(b *build) { d := format.BLAKE3.Sum(nil); b.hf.Tensors[0].Digests = d[:] }
			})),
		bad("duplicate-name", format.ErrDuplicate, "R22", "two tensors named a",
			tensorEdit(two(), 1, func(e *format.TensorEntry) { e.Name = "a" })),
		bad("name-index-unsorted", format.ErrHeader, "R22", "the name index lists b before a",
			header(two(), func(b *build) {
				v := b.fb.ref(b.fb.root(), hNameIndex)
				b.fb.put32(v+4, 1)
				b.fb.put32(v+8, 0)
			})),
		bad("name-index-not-permutation", format.ErrHeader, "R22", "the name index lists tensor 0 twice",
			header(two(), func(b *build) { b.fb.put32(b.fb.ref(b.fb.root(), hNameIndex)+8, 0) })),
		bad("name-index-out-of-range", format.ErrHeader, "R22", "the name index lists tensor 7 of 2",
			header(two(), func(b *build) { b.fb.put32(b.fb.ref(b.fb.root(), hNameIndex)+8, 7) })),
		bad("name-index-short", format.ErrHeader, "R22", "a name index of one entry for two tensors",
			header(two(), func(b *build) { b.fb.put32(b.fb.ref(b.fb.root(), hNameIndex), 1) })),
		bad("name-index-absent", format.ErrHeader, "R22", "no name index in a file with tensors",
			header(two(), func(b *build) { b.fb.put16(b.fb.slotEntry(b.fb.root(), hNameIndex), 0) })),
	}
}

func keyValues() []vector {
	meta := func(kvs ...format.KeyValue) func() []byte {
		return with(one(), func(s *fileSpec) { s.meta = kvs })
	}
	swap := func(vec func(f *fb) uint32) func(b *build) {
		return func(b *build) {
			v := vec(&b.fb)
			t0, t1 := b.fb.table(v, 0), b.fb.table(v, 1)
			b.fb.point(b.fb.elem(v, 0, 4), t1)
			b.fb.point(b.fb.elem(v, 1, 4), t0)
		}
	}
	kv := func(k, v string) format.KeyValue { return format.KeyValue{Key: k, Value: v} }
	prov := func(edit func(p *format.Provenance)) func() []byte {
		return with(withMeta(), func(s *fileSpec) { edit(s.prov) })
	}
	return []vector{
		bad("metadata-unsorted", format.ErrMetadata, "R23", "metadata keys k2 before k1",
			header(withMeta(), swap(func(f *fb) uint32 { return f.ref(f.root(), hMetadata) }))),
		bad("metadata-duplicate-key", format.ErrDuplicate, "R23", "the metadata key k twice", meta(kv("k", "1"), kv("k", "2"))),
		bad("metadata-key-empty", format.ErrMetadata, "R23", "a metadata entry with an empty key", meta(kv("", "v"))),
		bad("metadata-key-invalid-utf8", format.ErrMetadata, "R23", "a metadata key holding 0xfe", meta(kv("k\xfe", "v"))),
		bad("metadata-value-invalid-utf8", format.ErrMetadata, "R23", "a metadata value holding a lone continuation byte", meta(kv("k", "\x80"))),
		bad("metadata-over-limit", format.ErrLimit, "R23", "34 bytes of metadata read with a metadata limit of 32",
			meta(kv("key", strings.Repeat("v", 31)))).withLimits(format.Limits{MaxMetadataSize: 32}),
		bad("attributes-unsorted", format.ErrMetadata, "R23", "tensor attributes b before a",
			header(withMeta(), swap(func(f *fb) uint32 { return f.ref(f.tensor(0), tAttrs) }))),
		bad("attribute-duplicate-key", format.ErrDuplicate, "R23", "the tensor attribute a twice",
			with(one(), func(s *fileSpec) { s.tensors[0].attrs = []format.KeyValue{kv("a", "1"), kv("a", "1")} })),
		bad("provenance-notes-unsorted", format.ErrMetadata, "R23", "provenance notes n2 before n1",
			header(withMeta(), swap(func(f *fb) uint32 { return f.ref(f.ref(f.root(), hProvenance), pNotes) }))),
		bad("provenance-note-duplicate-key", format.ErrDuplicate, "R23", "the provenance note n twice",
			prov(func(p *format.Provenance) { p.Notes = []format.KeyValue{kv("n", "1"), kv("n", "2")} })),
		bad("producer-invalid-utf8", format.ErrMetadata, "R24", "a producer holding 0xff",
			with(one(), func(s *fileSpec) { s.producer = "tool\xff" })),
		bad("provenance-sha256-short", format.ErrMetadata, "R24", "a source_sha256 of 31 bytes",
			prov(func(p *format.Provenance) { p.SourceSHA256 = p.SourceSHA256[:31] })),
		bad("provenance-sha256-long", format.ErrMetadata, "R24", "a source_sha256 of 33 bytes",
			prov(func(p *format.Provenance) { p.SourceSHA256 = append(p.SourceSHA256, 0) })),
		bad("provenance-converter-invalid-utf8", format.ErrMetadata, "R24", "a converter name holding 0xc3 without its continuation",
			prov(func(p *format.Provenance) { p.Converter = "conv\xc3" })),
	}
}

func data() []vector {
	flip := func(s fileSpec, pos func(b *build) int) func() []byte {
		return with(s, func(sp *fileSpec) { sp.file = func(b *build) { b.out[pos(b)] ^= 0x01 } })
	}
	dataAt := func(off int) func(b *build) int { return func(b *build) int { return int(b.pre.DataOffset) + off } }
	zt := func(shape int64, stored []byte) func() []byte {
		return with(fileSpec{producer: producer, tensors: []tensorSpec{{name: "z", dt: format.U8, shape: []int64{shape}, stored: stored}}},
			func(s *fileSpec) { s.fields = setZstd(0) })
	}
	d := compressible(1000)
	frame := zstdFrame(d, true)
	aligned256 := one()
	aligned256.align = 256
	five := fileSpec{producer: producer, tensors: []tensorSpec{{name: "w", dt: format.U8, shape: []int64{5}, data: pattern(5, 1)}}}
	sha := chunked()
	sha.alg = format.SHA256
	return []vector{
		bad("padding-after-preamble-nonzero", format.ErrPadding, "R25", "a non-zero byte in the padding between the preamble and the data region (alignment 256)",
			file(aligned256, func(b []byte) []byte { b[200] = 1; return b })),
		bad("padding-before-header-nonzero", format.ErrPadding, "R25", "a non-zero byte in the padding between the data region and the header",
			with(five, func(s *fileSpec) { s.file = func(b *build) { b.out[b.pre.DataOffset+6] = 0xff } })),
		bad("padding-between-tensors-nonzero", format.ErrPadding, "R25", "a non-zero byte in the padding between two tensors; found when verifying the data",
			flip(two(), dataAt(40))).verifyFull(),
		bad("digest-mismatch", format.ErrDigest, "R26", "one bit of the second chunk flipped",
			flip(chunked(), dataAt(1500))).verifyFull(),
		bad("digest-mismatch-last-partial-chunk", format.ErrDigest, "R26", "one bit of the last, partial chunk flipped",
			flip(chunked(), dataAt(2499))).verifyFull(),
		bad("digest-mismatch-recorded", format.ErrDigest, "R26", "the header records a wrong digest for the first chunk (the header digest matches the header)",
			tensorEdit(chunked(), 0, func(e *format.TensorEntry) { e.Digests = bytes.Clone(e.Digests); e.Digests[0] ^= 1 })).verifyFull(),
		bad("digest-mismatch-sha256", format.ErrDigest, "R26", "one bit flipped in a file with SHA-256 digests",
			flip(sha, dataAt(10))).verifyFull(),
		bad("digest-mismatch-compressed", format.ErrDigest, "R26", "one bit of a zstd frame flipped; the digests cover the stored bytes, so no decompressor sees them",
			flip(zstdOne(), dataAt(10))).verifyFull(),
		bad("digest-mismatch-second-tensor", format.ErrDigest, "R26", "one bit of the second of two tensors flipped",
			flip(two(), dataAt(70))).verifyFull(),
		bad("zstd-frame-corrupt", format.ErrCompression, "R27", "stored bytes that are not a zstd frame, with correct digests",
			zt(1000, []byte("this is not a zstd frame at all"))).verifyFull(),
		bad("zstd-frame-truncated", format.ErrCompression, "R27", "a zstd frame missing its last 3 bytes",
			zt(1000, frame[:len(frame)-3])).verifyFull(),
		bad("zstd-frame-without-content-size", format.ErrCompression, "R27", "a zstd frame whose header does not declare the content size (spec 4.3: the frame declares it)",
			with(fileSpec{producer: producer, tensors: []tensorSpec{{name: "z", dt: format.U8, shape: []int64{1000}, data: compressible(1000)}}},
				func(s *fileSpec) { s.tensors[0].stored = zstdFrame(compressible(1000), false); s.fields = setZstd(0) })).verifyFull(),
		bad("zstd-two-frames", format.ErrCompression, "R27", "two zstd frames that together decode to the canonical bytes (spec 4.3: exactly one frame)",
			with(fileSpec{producer: producer, tensors: []tensorSpec{{name: "z", dt: format.U8, shape: []int64{1000}, data: compressible(1000)}}},
				func(s *fileSpec) {
					d := compressible(1000)
					s.tensors[0].stored = append(zstdFrame(d[:1000], true), zstdFrame(nil, true)...)
					s.fields = setZstd(0)
				})).verifyFull(),
		bad("zstd-trailing-garbage", format.ErrCompression, "R27", "a valid zstd frame followed by 4 bytes that are no frame",
			zt(1000, append(bytes.Clone(frame), "junk"...))).verifyFull(),
		bad("zstd-content-size-larger", format.ErrCompression, "R27", "a frame declaring 2000 bytes in a tensor of 1000",
			zt(1000, zstdFrame(compressible(2000), true))).verifyFull(),
		bad("zstd-content-size-smaller", format.ErrCompression, "R27", "a frame declaring 500 bytes in a tensor of 1000",
			zt(1000, zstdFrame(compressible(500), true))).verifyFull(),
		bad("zstd-decodes-longer", format.ErrCompression, "R27", "a frame declaring 1000 bytes, the tensor's length, whose compressed blocks decode to 3000",
			zt(1000, withFCS(zstdFrameWindowed(compressible(3000)), 1000))).verifyFull(),
		bad("zstd-decodes-shorter", format.ErrCompression, "R27", "a frame declaring 1000 bytes, the tensor's length, whose compressed block decodes to 999",
			zt(1000, withFCS(zstdFrameWindowed(compressible(999)), 1000))).verifyFull(),
		bad("zstd-decompressed-size-over-limit", format.ErrLimit, "R27", "a valid frame of 32769 RLE blocks declaring 4 GiB + 128 KiB, over the default decompression limit of 4 GiB",
			zt(4<<30+128<<10, overLimit())).verifyFull(),
		bad("zstd-checksum-wrong", format.ErrCompression, "R27", "a frame whose content checksum does not match what it decodes to",
			zt(1000, func() []byte { f := zstdFrameCRC(d); f[len(f)-1] ^= 1; return f }())).verifyFull(),
		bad("zstd-dictionary-id", format.ErrCompression, "R27", "a frame of raw blocks naming dictionary 1 (spec 4.3: no dictionary)",
			zt(1000, zframe(0, 10, []byte{1}, 1000, zblock(true, 0, 1000, d)))).verifyFull(),
		bad("zstd-skippable-frame", format.ErrCompression, "R27", "a skippable frame of 4 bytes before a valid frame",
			zt(1000, append(append(le.AppendUint32(nil, 0x184D2A50), 4, 0, 0, 0, 0, 0, 0, 0), frame...))).verifyFull(),
		bad("zstd-reserved-bit", format.ErrCompression, "R27", "a valid frame of raw blocks with the reserved bit of its header set",
			zt(1000, zframe(0x08, 10, nil, 1000, zblock(true, 0, 1000, d)))).verifyFull(),
		bad("zstd-no-last-block", format.ErrCompression, "R27", "a frame whose one raw block of 1000 bytes is not marked last",
			zt(1000, zframe(0, 10, nil, 1000, zblock(false, 0, 1000, d)))).verifyFull(),
		bad("zstd-expansion-bound", format.ErrCompression, "R27", "a frame of 300 bytes declaring 2 GiB: its one raw block can produce only 280 bytes",
			zt(2<<30, zframe(0, 10, nil, 2<<30, zblock(true, 0, 280, pattern(280, 3))))).verifyFull(),
		bad("zstd-decodes-to-other-length", format.ErrCompression, "R27", "a single-segment frame declaring 1001 bytes, the tensor's length, whose compressed block decodes to 1000",
			zt(1001, withFCS(zstdFrame(d, true), 1001))).verifyFull(),
		bad("zstd-block-over-window", format.ErrCompression, "R27", "a raw block of 2000 bytes in a frame with a 1 KiB window (Block_Maximum_Size)",
			zt(2000, zframe(0, 0, nil, 2000, zblock(true, 0, 2000, pattern(2000, 4))))).verifyFull(),
		bad("zstd-decompressed-size-over-configured-limit", format.ErrLimit, "R27", "a zstd tensor of 1000 bytes read with a decompression limit of 999",
			zt(1000, frame)).verifyFull().withLimits(format.Limits{MaxDecompressedSize: 999}),
	}
}

func trailing() []vector {
	blk := func(edit func(b []byte) []byte) func() []byte { return sigEdit(edit) }
	return []vector{
		bad("trailing-bytes", format.ErrTrailing, "R28", "a zip end-of-central-directory record after the header (a polyglot file)",
			appendBytes(one(), append([]byte("PK\x05\x06"), make([]byte, 18)...))),
		bad("trailing-zero-byte", format.ErrTrailing, "R28", "one zero byte after the header", appendBytes(one(), []byte{0})),
		bad("trailing-after-signature-block", format.ErrSignatureBlock, "R28", "a byte after a valid signature block",
			blk(func(b []byte) []byte { return append(b, 0) })),
		bad("signature-block-truncated", format.ErrSignatureBlock, "R28", "the signature magic and 8 more bytes",
			appendBytes(one(), append(format.SignatureMagic[:], 0, 0, 0, 0, 0, 0, 0, 0))),
		bad("signature-block-length-wrong", format.ErrSignatureBlock, "R28", "a block length one more than the bytes present",
			blk(func(b []byte) []byte { return put64(b, 8, uint64(len(b))+1) })),
		bad("signature-block-count-zero", format.ErrSignatureBlock, "R28", "an entry count of 0",
			appendBytes(one(), sigBlock())),
		bad("signature-block-count-over-limit", format.ErrLimit, "R28", "17 well-formed entries, over the default limit of 16",
			appendBytes(one(), sigBlock(slices.Repeat([]format.SignatureEntry{sigEntry()}, 17)...))),
		bad("signature-block-count-too-large", format.ErrSignatureBlock, "R28", "an entry count of 2 for a block of one entry",
			blk(func(b []byte) []byte { return put32(b, 16, 2) })),
		bad("signature-block-reserved-nonzero", format.ErrSignatureBlock, "R28", "the block's reserved field is 1",
			blk(func(b []byte) []byte { return put32(b, 20, 1) })),
		bad("signature-entry-reserved-nonzero", format.ErrSignatureBlock, "R28", "the entry's reserved field is 1",
			blk(func(b []byte) []byte { b[24+6] = 1; return b })),
		bad("signature-entry-length-wrong", format.ErrSignatureBlock, "R28", "an entry length that disagrees with its comment and signature lengths",
			blk(func(b []byte) []byte { return put32(b, 24, le.Uint32(b[24:])-1) })),
		bad("signature-entry-comment-invalid-utf8", format.ErrSignatureBlock, "R28", "a comment holding 0xff",
			blk(func(b []byte) []byte { b[24+52] = 0xff; return b })),
		bad("signature-entry-signature-empty", format.ErrSignatureBlock, "R28", "an entry with a signature of 0 bytes",
			appendBytes(one(), sigBlock(func() format.SignatureEntry { e := sigEntry(); e.Signature = nil; return e }()))),
		bad("signature-entry-comment-too-long", format.ErrSignatureBlock, "R28", "a comment of 1025 bytes, over the maximum of 1024",
			appendBytes(one(), sigBlock(func() format.SignatureEntry { e := sigEntry(); e.Comment = strings.Repeat("c", 1025); return e }()))),
	}
}

// overLimit is a valid frame of 4 GiB + 128 KiB of RLE blocks (128 KiB
// window, 4 stored bytes per 128 KiB block): over the default decompression
// limit, and breaking nothing else.
func overLimit() []byte {
	const n = 4<<30/(128<<10) + 1
	var blocks [][]byte
	for i := range n {
		blocks = append(blocks, zblock(i == n-1, 1, 128<<10, []byte{byte(i)}))
	}
	return zframe(0, 7, nil, 4<<30+128<<10, blocks...)
}

// withFCS rewrites the 2-byte content size field of frame f to n.
func withFCS(f []byte, n int) []byte {
	if f[4]>>6 != 1 || n < 256 || n > 65535+256 {
		panic("withFCS: not a 2-byte content size")
	}
	at := 6
	if f[4]&0x20 != 0 {
		at = 5
	}
	le.PutUint16(f[at:], uint16(n-256))
	return f
}
