package jld2

import (
	"math/bits"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// Datatype classes (HDF5 spec IV.A.2.d).
const (
	classFixed    = 0
	classFloat    = 1
	classTime     = 2
	classString   = 3
	classBitfield = 4
	classOpaque   = 5
	classCompound = 6
	classRef      = 7
	classEnum     = 8
	classVlen     = 9
	classArray    = 10
)

type dtype struct {
	class   uint8
	version uint8
	flags   uint32 // the 24-bit class bit field
	size    uint32
	prec    uint16
	boff    uint16
	expSize uint8
	manSize uint8
	members []member
	base    *dtype
	dims    []uint32 // array class
	// committed is the address of the committed datatype this came from,
	// undefAddr for a type stored in place.
	committed uint64
}

type member struct {
	name   string
	offset uint32
	typ    *dtype
}

// parseDatatype reads one datatype description (rule T1) with its nested
// types, at most depth levels deep.
func parseDatatype(c *cursor, depth int) *dtype {
	if depth <= 0 {
		c.fail(convert.ErrLimit, "datatype nesting deeper than the limit")
		return nil
	}
	b0 := c.u8()
	f0, f1, f2 := c.u8(), c.u8(), c.u8()
	size := c.u32()
	if c.err != nil {
		return nil
	}
	t := &dtype{class: b0 & 15, version: b0 >> 4, flags: uint32(f0) | uint32(f1)<<8 | uint32(f2)<<16, size: size, committed: undefAddr}
	if t.version < 1 || t.version > 4 {
		c.fail(convert.ErrUnsupported, "datatype version %d", t.version)
		return nil
	}
	switch t.class {
	case classFixed, classBitfield:
		t.boff, t.prec = c.u16(), c.u16()
	case classFloat:
		t.boff, t.prec = c.u16(), c.u16()
		c.skip(1) // exponent location
		t.expSize = c.u8()
		c.skip(1) // mantissa location
		t.manSize = c.u8()
		c.skip(4) // exponent bias
	case classTime:
		c.skip(2)
	case classString, classRef:
	case classOpaque:
		c.skip(int(t.flags & 0xff))
	case classCompound:
		n := int(t.flags & 0xffff)
		if n > c.left() {
			c.fail(convert.ErrMalformed, "compound with %d members in %d bytes", n, c.left())
			return nil
		}
		t.members = make([]member, 0, n)
		for i := 0; i < n && c.err == nil; i++ {
			var m member
			m.name = c.cstring(t.version < 3)
			switch t.version {
			case 1:
				m.offset = c.u32()
				c.skip(28) // dimensionality, permutation and sizes of the old array members
			case 2:
				m.offset = c.u32()
			default:
				m.offset = uint32(c.uN(offsetWidth(size)))
			}
			m.typ = parseDatatype(c, depth-1)
			if c.err != nil {
				return nil
			}
			if end, carry := bits.Add32(m.offset, m.typ.size, 0); carry != 0 || end > size {
				c.fail(convert.ErrMalformed, "compound member %q at %d+%d outside its %d bytes", m.name, m.offset, m.typ.size, size)
				return nil
			}
			t.members = append(t.members, m)
		}
	case classEnum:
		t.base = parseDatatype(c, depth-1)
		n := int(t.flags & 0xffff)
		if n > c.left() {
			c.fail(convert.ErrMalformed, "enum with %d members in %d bytes", n, c.left())
			return nil
		}
		for i := 0; i < n && c.err == nil; i++ {
			c.cstring(t.version < 3)
		}
		if c.err == nil {
			vs, carry := bits.Mul64(uint64(n), uint64(t.base.size))
			if carry != 0 || vs > uint64(c.left()) {
				c.fail(convert.ErrMalformed, "enum values truncated")
				return nil
			}
			c.skip(int(vs))
		}
	case classVlen:
		t.base = parseDatatype(c, depth-1)
	case classArray:
		rank := int(c.u8())
		if t.version < 3 {
			c.skip(3)
		}
		if rank > 32 {
			c.fail(convert.ErrMalformed, "array datatype of rank %d", rank)
			return nil
		}
		n := uint64(1)
		for i := 0; i < rank; i++ {
			d := c.u32()
			t.dims = append(t.dims, d)
			var carry uint64
			carry, n = bits.Mul64(n, uint64(d))
			if carry != 0 {
				c.fail(convert.ErrMalformed, "array datatype size overflows")
				return nil
			}
		}
		if t.version < 3 {
			c.skip(4 * rank) // permutation indices
		}
		t.base = parseDatatype(c, depth-1)
		if c.err == nil {
			hi, lo := bits.Mul64(n, uint64(t.base.size))
			if hi != 0 || lo != uint64(size) {
				c.fail(convert.ErrMalformed, "array datatype of %d bytes holds %d elements of %d bytes", size, n, t.base.size)
				return nil
			}
		}
	default:
		c.fail(convert.ErrUnsupported, "datatype class %d", t.class)
		return nil
	}
	if c.err != nil {
		return nil
	}
	return t
}

// offsetWidth is the width of a version 3 compound member offset: the bytes
// needed to hold the compound's size.
func offsetWidth(size uint32) int {
	switch {
	case size < 1<<8:
		return 1
	case size < 1<<16:
		return 2
	case size < 1<<24:
		return 3
	}
	return 4
}

// isVlenString reports a variable-length string (JLD2's String and Symbol).
func (t *dtype) isVlenString() bool { return t.class == classVlen && t.flags&15 == 1 }

// isObjectRef reports an 8-byte object reference (rule T4).
func (t *dtype) isObjectRef() bool {
	return t.class == classRef && t.flags&15 == 0 && t.size == 8 && t.version < 4
}

// numeric maps a datatype to a tensor element type (rule T2). ok is false
// for types that are not numbers the format has.
func (t *dtype) numeric() (format.DType, bool) {
	le := t.flags&1 == 0
	switch t.class {
	case classFixed:
		if !le || t.boff != 0 || uint32(t.prec) != 8*t.size {
			return 0, false
		}
		signed := t.flags&8 != 0
		switch t.size {
		case 1:
			return pick(signed, format.I8, format.U8), true
		case 2:
			return pick(signed, format.I16, format.U16), true
		case 4:
			return pick(signed, format.I32, format.U32), true
		case 8:
			return pick(signed, format.I64, format.U64), true
		}
	case classFloat:
		if t.flags&0x41 != 0 || t.boff != 0 || uint32(t.prec) != 8*t.size {
			return 0, false
		}
		switch {
		case t.size == 2 && t.expSize == 5 && t.manSize == 10:
			return format.F16, true
		case t.size == 2 && t.expSize == 8 && t.manSize == 7:
			return format.BF16, true
		case t.size == 4 && t.expSize == 8 && t.manSize == 23:
			return format.F32, true
		case t.size == 8 && t.expSize == 11 && t.manSize == 52:
			return format.F64, true
		}
	case classBitfield:
		if t.size == 1 && le {
			return format.Bool, true
		}
	case classCompound:
		// Complex{T}: JLD2 writes a compound of two equal floats re, im.
		if len(t.members) == 2 && t.members[0].name == "re" && t.members[1].name == "im" &&
			t.members[0].offset == 0 && t.members[1].offset == t.size/2 {
			a, ok1 := t.members[0].typ.numeric()
			b, ok2 := t.members[1].typ.numeric()
			if ok1 && ok2 && a == b {
				switch {
				case a == format.F32 && t.size == 8:
					return format.C64, true
				case a == format.F64 && t.size == 16:
					return format.C128, true
				}
			}
		}
	}
	return 0, false
}

func pick(signed bool, s, u format.DType) format.DType {
	if signed {
		return s
	}
	return u
}

// hasRefs reports whether values of t can refer to other objects or to the
// global heap, so that walking its elements can find arrays.
func (t *dtype) hasRefs() bool {
	switch t.class {
	case classRef, classVlen:
		return true
	case classCompound:
		for _, m := range t.members {
			if m.typ.hasRefs() {
				return true
			}
		}
	case classArray:
		return t.base.hasRefs()
	}
	return false
}

// parseSharedDatatype reads a datatype message stored elsewhere (message
// flag "shared", rule T3) and returns the committed datatype's address.
func parseSharedAddr(c *cursor) uint64 {
	v, typ := c.u8(), c.u8()
	switch {
	case v == 1:
		c.skip(6)
	case v == 2:
	case v == 3 && typ == 2:
	default:
		c.fail(convert.ErrUnsupported, "shared message version %d type %d (only committed datatypes are read)", v, typ)
		return 0
	}
	return c.u64()
}
