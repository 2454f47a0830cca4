package jld2

import (
	"math/bits"
	"unicode/utf8"

	"github.com/safeweights/safeweights/convert"
)

const maxRank = 32

type spaceKind uint8

const (
	spaceScalar spaceKind = iota
	spaceSimple
	spaceNull
)

type dataspace struct {
	kind spaceKind
	dims []uint64
	n    uint64 // number of elements
	// maxdims are the maximum dimensions, nil when not stored (then the
	// dimensions); unlimited is all ones.
	maxdims []uint64
}

// parseDataspace reads a dataspace message, versions 1 and 2 (rule M1).
func parseDataspace(c *cursor) dataspace {
	var s dataspace
	version, rank, flags := c.u8(), int(c.u8()), c.u8()
	switch version {
	case 1:
		c.skip(5)
		s.kind = spaceSimple
		if rank == 0 {
			s.kind = spaceScalar
		}
	case 2:
		switch c.u8() {
		case 0:
			s.kind = spaceScalar
		case 1:
			s.kind = spaceSimple
		case 2:
			s.kind = spaceNull
		default:
			c.fail(convert.ErrMalformed, "unknown dataspace type")
		}
	default:
		c.fail(convert.ErrUnsupported, "dataspace version %d", version)
	}
	if rank > maxRank {
		c.fail(convert.ErrMalformed, "dataspace rank %d over %d", rank, maxRank)
	}
	if c.err != nil {
		return s
	}
	s.n = 1
	if s.kind == spaceNull {
		s.n = 0
	}
	for i := 0; i < rank; i++ {
		d := c.u64()
		if d > 1<<62 {
			c.fail(convert.ErrMalformed, "dataspace dimension %d", d)
			return s
		}
		s.dims = append(s.dims, d)
		hi, lo := bits.Mul64(s.n, d)
		if hi != 0 {
			c.fail(convert.ErrMalformed, "dataspace element count overflows")
			return s
		}
		s.n = lo
	}
	if flags&1 != 0 {
		// Maximum dimensions: chunk indices number chunks over them.
		for i := 0; i < rank; i++ {
			s.maxdims = append(s.maxdims, c.u64())
		}
	}
	if s.kind == spaceSimple && rank == 0 {
		c.fail(convert.ErrMalformed, "simple dataspace of rank 0")
	}
	return s
}

const (
	layoutCompact    = 0
	layoutContiguous = 1
	layoutChunked    = 2
	layoutVirtual    = 3
)

// Chunk index types of layout version 4; idxBTree1 stands for version 3's
// version 1 B-tree.
const (
	idxBTree1      = 0
	idxSingle      = 1
	idxImplicit    = 2
	idxFixedArray  = 3
	idxExtensible  = 4
	idxBTree2      = 5
	filteredSingle = 0x02
)

type layout struct {
	class      uint8
	compact    []byte
	compactOff int64
	addr       uint64
	size       uint64
	chunk      []uint64 // chunk dimensions, element size dimension excluded
	elem       uint64   // element size recorded with the chunk dimensions
	index      uint8
	flags      uint8
	single     struct {
		size uint64
		mask uint32
	}
	pageBits uint8
	// ea holds an extensible array's creation parameters: maximum element
	// bits, index block elements, minimum data block pointers of a
	// secondary block, minimum data block elements, page bits.
	ea [5]byte
}

// parseLayout reads a data layout message, versions 3 and 4 (rule L1).
func parseLayout(c *cursor) *layout {
	l := &layout{}
	version := c.u8()
	l.class = c.u8()
	if c.err != nil {
		return nil
	}
	if version < 3 || version > 4 {
		c.fail(convert.ErrUnsupported, "data layout version %d", version)
		return nil
	}
	switch l.class {
	case layoutCompact:
		n := int(c.u16())
		l.compactOff = c.pos()
		l.compact = c.bytes(n)
	case layoutContiguous:
		l.addr, l.size = c.u64(), c.u64()
	case layoutChunked:
		var rank, width int
		if version == 3 {
			rank = int(c.u8())
			l.addr = c.u64()
			width = 4
		} else {
			l.flags = c.u8()
			rank = int(c.u8())
			width = int(c.u8())
			if width < 1 || width > 8 {
				c.fail(convert.ErrMalformed, "chunk dimension width %d", width)
			}
		}
		if rank < 2 || rank > maxRank+1 {
			c.fail(convert.ErrMalformed, "chunk rank %d", rank)
		}
		for i := 0; i < rank && c.err == nil; i++ {
			d := c.uN(width)
			if d == 0 {
				c.fail(convert.ErrMalformed, "chunk dimension 0")
			}
			if i == rank-1 {
				l.elem = d
			} else {
				l.chunk = append(l.chunk, d)
			}
		}
		if version == 3 {
			l.index = idxBTree1
			break
		}
		l.index = c.u8()
		switch l.index {
		case idxSingle:
			if l.flags&filteredSingle != 0 {
				l.single.size = c.u64()
				l.single.mask = c.u32()
			}
		case idxImplicit:
		case idxFixedArray:
			l.pageBits = c.u8()
		case idxExtensible:
			copy(l.ea[:], c.bytes(5))
		case idxBTree2:
			c.skip(6) // node size, split and merge percent: the header has them
		default:
			c.fail(convert.ErrMalformed, "chunk index type %d", l.index)
		}
		l.addr = c.u64()
	case layoutVirtual:
		c.fail(convert.ErrRefused, "virtual dataset (data in other files)")
	default:
		c.fail(convert.ErrMalformed, "layout class %d", l.class)
	}
	if c.err != nil {
		return nil
	}
	return l
}

type filter struct {
	id    uint16
	flags uint16
	cd    []uint32
}

// parseFilters reads a filter pipeline message, versions 1 and 2 (rule F1).
func parseFilters(c *cursor) []filter {
	version, n := c.u8(), int(c.u8())
	if version == 1 {
		c.skip(6)
	} else if version != 2 {
		c.fail(convert.ErrUnsupported, "filter pipeline version %d", version)
	}
	if n > 32 {
		c.fail(convert.ErrMalformed, "%d filters (at most 32)", n)
	}
	var fs []filter
	for i := 0; i < n && c.err == nil; i++ {
		var f filter
		f.id = c.u16()
		nameLen := 0
		if version == 1 || f.id >= 256 {
			nameLen = int(c.u16())
		}
		f.flags = c.u16()
		nv := int(c.u16())
		if version == 1 {
			nameLen = (nameLen + 7) &^ 7
		}
		c.skip(nameLen)
		if nv > c.left()/4 {
			c.fail(convert.ErrMalformed, "filter with %d parameters", nv)
			break
		}
		for j := 0; j < nv; j++ {
			f.cd = append(f.cd, c.u32())
		}
		if version == 1 && nv%2 == 1 {
			c.skip(4)
		}
		fs = append(fs, f)
	}
	return fs
}

type attribute struct {
	name   string
	dt     *dtype
	shared uint64 // committed datatype address, undefAddr when in place
	space  dataspace
	data   []byte
	off    int64
}

// parseAttribute reads an attribute message, versions 1 to 3 (rule M4).
func parseAttribute(c *cursor, depth int) *attribute {
	a := &attribute{shared: undefAddr}
	version := c.u8()
	flags := c.u8()
	nameLen, dtLen, dsLen := int(c.u16()), int(c.u16()), int(c.u16())
	if version == 3 {
		c.skip(1)
	}
	if c.err != nil {
		return nil
	}
	if version < 1 || version > 3 {
		c.fail(convert.ErrUnsupported, "attribute version %d", version)
		return nil
	}
	pad := func(n int) int {
		if version == 1 {
			return (n + 7) &^ 7
		}
		return n
	}
	nb := c.bytes(pad(nameLen))
	if c.err != nil {
		return nil
	}
	if nameLen > 0 {
		nb = nb[:nameLen]
		if nb[nameLen-1] == 0 {
			nb = nb[:nameLen-1]
		}
	}
	a.name = string(nb)
	dtOff := c.pos()
	dtb := c.bytes(pad(dtLen))
	dsOff := c.pos()
	dsb := c.bytes(pad(dsLen))
	if c.err != nil {
		return nil
	}
	dc := newCursor(dtb, dtOff, "attribute datatype")
	if flags&1 != 0 {
		a.shared = parseSharedAddr(dc)
	} else {
		a.dt = parseDatatype(dc, depth)
	}
	if dc.err != nil {
		c.err = dc.err
		return nil
	}
	if flags&2 != 0 {
		c.fail(convert.ErrUnsupported, "shared dataspace")
		return nil
	}
	sc := newCursor(dsb, dsOff, "attribute dataspace")
	a.space = parseDataspace(sc)
	if sc.err != nil {
		c.err = sc.err
		return nil
	}
	a.off = c.pos()
	a.data = c.b[c.p:]
	return a
}

const (
	linkHard     = 0
	linkSoft     = 1
	linkExternal = 64
)

type link struct {
	name string
	kind uint8
	addr uint64
}

// parseLink reads a link message, version 1 (rule G2).
func parseLink(c *cursor) link {
	var l link
	if v := c.u8(); v != 1 && c.err == nil {
		c.fail(convert.ErrUnsupported, "link message version %d", v)
		return l
	}
	flags := c.u8()
	if flags&0x08 != 0 {
		l.kind = c.u8()
	}
	if flags&0x04 != 0 {
		c.skip(8)
	}
	if flags&0x10 != 0 {
		c.skip(1)
	}
	n := c.uN(1 << (flags & 3))
	if n > uint64(c.left()) {
		c.fail(convert.ErrMalformed, "link name of %d bytes", n)
		return l
	}
	name := c.bytes(int(n))
	if !utf8.Valid(name) {
		c.fail(convert.ErrMalformed, "link name is not UTF-8")
	}
	l.name = string(name)
	switch l.kind {
	case linkHard:
		l.addr = c.u64()
	case linkSoft:
		c.skip(int(c.u16()))
	case linkExternal:
		c.fail(convert.ErrRefused, "external link %q (to another file)", l.name)
	default:
		c.fail(convert.ErrUnsupported, "user-defined link type %d", l.kind)
	}
	return l
}

// denseStorage reads the fractal heap address of a link info or attribute
// info message; JLD2 never writes dense storage (rule G3).
func denseStorage(c *cursor, linkInfo bool) uint64 {
	c.u8() // version
	flags := c.u8()
	if flags&1 != 0 {
		if linkInfo {
			c.skip(8)
		} else {
			c.skip(2)
		}
	}
	return c.u64()
}
