package jld2

import (
	"encoding/binary"
	"math"
)

// h5 builds small JLD2-style HDF5 files for tests: a 512-byte text header,
// superblock version 2 at 512, version 2 object headers. Addresses are
// relative to 512.
type h5 struct {
	buf []byte
	// shift is added to addresses: the bytes before buf that the caller
	// writes itself.
	shift uint64
}

const testHeader = "HDF5-based Julia Data Format, version 0.2.0\x00 (Julia 1.10.4 64-bit LE)\x00"

func newH5() *h5 {
	b := &h5{buf: make([]byte, 512+48)}
	copy(b.buf, testHeader)
	return b
}

func (b *h5) addr() uint64 { return b.shift + uint64(len(b.buf)-512) }

func (b *h5) raw(p []byte) uint64 {
	a := b.addr()
	b.buf = append(b.buf, p...)
	return a
}

type hmsg struct {
	typ   uint8
	flags uint8
	data  []byte
}

// encodeOHDR returns an object header holding msgs.
func encodeOHDR(msgs ...hmsg) []byte {
	var body []byte
	for _, m := range msgs {
		body = append(body, m.typ)
		body = binary.LittleEndian.AppendUint16(body, uint16(len(m.data)))
		body = append(body, m.flags)
		body = append(body, m.data...)
	}
	h := []byte("OHDR")
	h = append(h, 2, 0x02) // version 2, 4-byte chunk size
	h = binary.LittleEndian.AppendUint32(h, uint32(len(body)))
	h = append(h, body...)
	return binary.LittleEndian.AppendUint32(h, lookup3(h))
}

func (b *h5) object(msgs ...hmsg) uint64 { return b.raw(encodeOHDR(msgs...)) }

// finish writes the superblock naming root and returns the file.
func (b *h5) finish(root uint64) []byte {
	copy(b.buf[512:], superblock(b.shift+uint64(len(b.buf)), root))
	return b.buf
}

func superblock(size, root uint64) []byte {
	sb := append([]byte{}, hdf5Magic...)
	sb = append(sb, 2, 8, 8, 0)
	sb = binary.LittleEndian.AppendUint64(sb, 512)
	sb = binary.LittleEndian.AppendUint64(sb, undefAddr)
	sb = binary.LittleEndian.AppendUint64(sb, size)
	sb = binary.LittleEndian.AppendUint64(sb, root)
	return binary.LittleEndian.AppendUint32(sb, lookup3(sb))
}

func u64s(vs ...uint64) []byte {
	var p []byte
	for _, v := range vs {
		p = binary.LittleEndian.AppendUint64(p, v)
	}
	return p
}

func mSpace(dims ...uint64) hmsg {
	if len(dims) == 0 {
		return hmsg{typ: msgDataspace, data: []byte{2, 0, 0, 0}}
	}
	return hmsg{typ: msgDataspace, data: append([]byte{2, byte(len(dims)), 0, 1}, u64s(dims...)...)}
}

func dtF32() []byte {
	d := []byte{0x10 | classFloat, 0x20, 0x1f, 0}
	d = binary.LittleEndian.AppendUint32(d, 4)
	return append(d, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0)
}

func dtRef() []byte {
	d := []byte{0x10 | classRef, 0, 0, 0}
	return binary.LittleEndian.AppendUint32(d, 8)
}

// dtCompound returns a version 3 compound type with one member per type,
// laid out one after another.
func dtCompound(names []string, types [][]byte, sizes []uint32) []byte {
	var total uint32
	for _, s := range sizes {
		total += s
	}
	d := []byte{0x30 | classCompound, byte(len(names)), byte(len(names) >> 8), 0}
	d = binary.LittleEndian.AppendUint32(d, total)
	var off uint32
	for i, n := range names {
		d = append(d, n...)
		d = append(d, 0)
		w := offsetWidth(total)
		for j := 0; j < w; j++ {
			d = append(d, byte(off>>(8*j)))
		}
		d = append(d, types[i]...)
		off += sizes[i]
	}
	return d
}

func mType(dt []byte) hmsg { return hmsg{typ: msgDatatype, flags: 1, data: dt} }

func mCompact(data []byte) hmsg {
	d := []byte{4, layoutCompact}
	d = binary.LittleEndian.AppendUint16(d, uint16(len(data)))
	return hmsg{typ: msgLayout, data: append(d, data...)}
}

func mContig(addr, size uint64) hmsg {
	return hmsg{typ: msgLayout, data: append([]byte{4, layoutContiguous}, u64s(addr, size)...)}
}

func mLink(name string, addr uint64) hmsg {
	d := []byte{1, 0, byte(len(name))}
	d = append(d, name...)
	return hmsg{typ: msgLink, data: append(d, u64s(addr)...)}
}

// f32Dataset writes a contiguous Float32 array with the given row-major
// shape and returns the object address.
func (b *h5) f32Dataset(shape []uint64, vals []float32) uint64 {
	var p []byte
	for _, v := range vals {
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(v))
	}
	data := b.raw(p)
	return b.object(mSpace(shape...), mType(dtF32()), mContig(data, uint64(len(p))))
}

// group writes a group of hard links.
func (b *h5) group(names []string, addrs []uint64) uint64 {
	var ms []hmsg
	for i := range names {
		ms = append(ms, mLink(names[i], addrs[i]))
	}
	return b.object(ms...)
}
