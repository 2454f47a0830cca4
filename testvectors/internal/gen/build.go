package main

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/safeweights/safeweights/format"
)

var le = binary.LittleEndian

// tensorSpec is one tensor of a hand-assembled file.
type tensorSpec struct {
	name   string
	dt     format.DType
	shape  []int64
	data   []byte // canonical bytes; stored as they are unless zstd or stored is set
	zstd   bool   // store one zstd frame of data (with its content size)
	stored []byte // stored bytes, overriding data (and zstd for the compression field)
	attrs  []format.KeyValue
}

// fileSpec describes a file assembled without the encoder, so that any rule
// can be broken. The hooks run in order: fields (edit the data region and
// the header fields), header (patch the built header; its digest is
// recomputed after), pre (edit the preamble), file (edit the final bytes).
type fileSpec struct {
	align    uint64 // default 64
	chunk    uint64 // default 1024
	alg      format.DigestAlgorithm
	tensors  []tensorSpec
	meta     []format.KeyValue
	producer string
	prov     *format.Provenance

	fields func(b *build)
	header func(b *build)
	pre    func(b *build)
	file   func(b *build)
}

// build is a file being assembled.
type build struct {
	data   []byte // the data region
	hf     format.HeaderFields
	header []byte
	pre    format.Preamble
	out    []byte
	fb     fb // the header, for patches
}

func (s fileSpec) bytes() []byte {
	align := cmp(s.align, 64)
	chunk := cmp(s.chunk, 1024)
	alg := s.alg
	if alg == 0 {
		alg = format.BLAKE3
	}
	b := &build{}
	var entries []format.TensorEntry
	for i, t := range s.tensors {
		stored, comp := t.data, format.None
		if t.zstd {
			stored, comp = zstdFrame(t.data, true), format.Zstd
		}
		if t.stored != nil {
			stored = t.stored
		}
		off := uint64(0)
		if i > 0 {
			off, _ = format.AlignUp(uint64(len(b.data)), align)
		}
		b.data = append(b.data, make([]byte, off-uint64(len(b.data)))...)
		b.data = append(b.data, stored...)
		entries = append(entries, format.TensorEntry{
			Name: t.name, DType: t.dt, Shape: t.shape, Offset: off,
			StoredLength: uint64(len(stored)), Compression: comp,
			Digests: digests(alg, stored, chunk), Attributes: t.attrs,
		})
	}
	b.hf = format.HeaderFields{ChunkSize: chunk, Tensors: entries, Metadata: s.meta, Producer: s.producer, Provenance: s.prov}
	if s.fields != nil {
		s.fields(b)
	}
	b.header = format.BuildHeader(&b.hf)
	b.fb = fb{b.header}
	if s.header != nil {
		s.header(b)
		b.header = b.fb.b
	}
	dataOff, _ := format.AlignUp(format.PreambleSize, align)
	hdrOff, _ := format.AlignUp(dataOff+uint64(len(b.data)), format.HeaderAlignment)
	b.pre = format.Preamble{
		VersionMajor: format.VersionMajor, VersionMinor: format.VersionMinor,
		Alignment: uint32(align), DigestAlgorithm: alg,
		DataOffset: dataOff, DataLength: uint64(len(b.data)),
		HeaderOffset: hdrOff, HeaderLength: uint64(len(b.header)),
		HeaderDigest: alg.Sum(b.header),
	}
	if s.pre != nil {
		s.pre(b)
	}
	out, _ := b.pre.AppendBinary(nil)
	out = append(out, make([]byte, dataOff-format.PreambleSize)...)
	out = append(out, b.data...)
	out = append(out, make([]byte, hdrOff-uint64(len(out)))...)
	b.out = append(out, b.header...)
	if s.file != nil {
		s.file(b)
	}
	return b.out
}

func cmp(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

func digests(alg format.DigestAlgorithm, stored []byte, chunk uint64) []byte {
	d := []byte{}
	for lo := uint64(0); lo < uint64(len(stored)); lo += chunk {
		s := alg.Sum(stored[lo:min(lo+chunk, uint64(len(stored)))])
		d = append(d, s[:]...)
	}
	return d
}

// zstdFrame compresses data into one frame; withSize chooses whether the
// frame header declares the content size.
func zstdFrame(data []byte, withSize bool) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err)
	}
	out := enc.EncodeAll(data, nil)
	if !withSize {
		out = stripContentSize(out)
	}
	var h zstd.Header
	if err := h.Decode(out); err != nil || h.HasFCS != withSize || (withSize && h.FrameContentSize != uint64(len(data))) {
		panic(fmt.Sprintf("zstd frame of %d bytes: content size declared %v, want %v (%v)", len(data), h.HasFCS, withSize, err))
	}
	return out
}

// stripContentSize rewrites a frame header to declare no content size and a
// window of 1 MiB (RFC 8878, section 3.1.1.1).
func stripContentSize(f []byte) []byte {
	fhd := f[4]
	single := fhd>>5&1 == 1
	size := [4]int{0, 2, 4, 8}[fhd>>6]
	if single && size == 0 {
		size = 1
	}
	if fhd&3 != 0 {
		panic("zstd frame with a dictionary id")
	}
	rest := 5 + size
	if !single {
		rest++
	}
	out := append([]byte(nil), f[:4]...)
	out = append(out, fhd&0x04, 10<<3)
	return append(out, f[rest:]...)
}

// pattern returns n deterministic bytes that do not compress much.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// compressible returns n bytes that compress well.
func compressible(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / 64 % 7)
	}
	return b
}

// Slots of the schema (spec/safeweights.fbs field order).
const (
	hChunkSize, hTensors, hNameIndex, hMetadata, hProducer, hProvenance     = 0, 1, 2, 3, 4, 5
	tName, tDType, tShape, tOffset, tStored, tCompression, tDigests, tAttrs = 0, 1, 2, 3, 4, 5, 6, 7
	pSourceFormat, pSHA, pConverter, pNotes                                 = 0, 1, 2, 3
	kvKey, kvValue                                                          = 0, 1
)

// fb navigates and patches a FlatBuffers buffer that is known to be valid.
// Patch functions take positions found by the navigation functions.
type fb struct{ b []byte }

func (f fb) u32(p uint32) uint32      { return le.Uint32(f.b[p:]) }
func (f fb) put32(p, v uint32)        { le.PutUint32(f.b[p:], v) }
func (f fb) put16(p uint32, v uint16) { le.PutUint16(f.b[p:], v) }
func (f fb) root() uint32             { return f.u32(0) }

// vtable returns the position of table t's vtable.
func (f fb) vtable(t uint32) uint32 { return uint32(int64(t) - int64(int32(f.u32(t)))) }

// slotEntry is the position of the vtable entry of slot in table t.
func (f fb) slotEntry(t uint32, slot int) uint32 { return f.vtable(t) + 4 + 2*uint32(slot) }

// field returns the position of a present field.
func (f fb) field(t uint32, slot int) uint32 {
	off := le.Uint16(f.b[f.slotEntry(t, slot):])
	if off == 0 {
		panic(fmt.Sprintf("field %d of table %d absent", slot, t))
	}
	return t + uint32(off)
}

// deref follows the uoffset at p.
func (f fb) deref(p uint32) uint32 { return p + f.u32(p) }

// ref returns the target of the reference field slot of t (a vector,
// string or table).
func (f fb) ref(t uint32, slot int) uint32 { return f.deref(f.field(t, slot)) }

// elem returns the position of element i of the vector at v (width bytes each).
func (f fb) elem(v uint32, i int, width uint32) uint32 { return v + 4 + uint32(i)*width }

// table returns the table referenced by element i of the vector of tables at v.
func (f fb) table(v uint32, i int) uint32 { return f.deref(f.elem(v, i, 4)) }

// tensor returns the table of tensor i.
func (f fb) tensor(i int) uint32 { return f.table(f.ref(f.root(), hTensors), i) }

// point makes the uoffset at p refer to target.
func (f fb) point(p, target uint32) { f.put32(p, target-p) }

// append adds bytes at the end of the buffer, at a position aligned to
// align, and returns the position. Nothing refers to them until patched.
func (f *fb) append(align int, data []byte) uint32 {
	for len(f.b)%align != 0 {
		f.b = append(f.b, 0)
	}
	p := uint32(len(f.b))
	f.b = append(f.b, data...)
	return p
}

// zframe assembles a zstd frame by hand (RFC 8878 section 3.1.1): a
// descriptor with an 8-byte content size and the extra bits fhd, a window
// descriptor wd (its exponent; no window descriptor if single-segment is
// among the extra bits), the dictionary id bytes did (their count sets the
// dictionary id flag), then the blocks.
func zframe(fhd byte, wd byte, did []byte, fcs uint64, blocks ...[]byte) []byte {
	f := le.AppendUint32(nil, 0xFD2FB528)
	flag := map[int]byte{0: 0, 1: 1, 2: 2, 4: 3}[len(did)]
	f = append(f, 0xC0|fhd|flag)
	if fhd&0x20 == 0 {
		f = append(f, wd<<3)
	}
	f = append(f, did...)
	f = le.AppendUint64(f, fcs)
	for _, b := range blocks {
		f = append(f, b...)
	}
	return f
}

// zblock is one block: its 3-byte header and body (one byte for RLE, type 1).
func zblock(last bool, typ, size int, body []byte) []byte {
	h := uint32(size)<<3 | uint32(typ)<<1
	if last {
		h |= 1
	}
	return append([]byte{byte(h), byte(h >> 8), byte(h >> 16)}, body...)
}

// zstdFrameCRC compresses data into one single-segment frame with a
// content checksum.
func zstdFrameCRC(data []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true), zstd.WithSingleSegment(true))
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(data, nil)
}

// zstdFrameWindowed compresses data into one frame with a 128 KiB window,
// not single-segment, so that its window does not depend on its content size.
func zstdFrameWindowed(data []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(false), zstd.WithWindowSize(128<<10))
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(data, nil)
}
