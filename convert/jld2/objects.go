package jld2

import (
	"math/bits"

	"github.com/safeweights/safeweights/convert"
)

type objKind uint8

const (
	kindDataset objKind = iota
	kindGroup
	kindType
)

// info is what one object header describes (rules M1-M5, G1).
type info struct {
	addr    uint64
	off     int64
	kind    objKind
	dt      *dtype
	space   dataspace
	layout  *layout
	filters []filter
	attrs   []*attribute
	links   []link
}

// info interprets the messages of the object at addr, once: type names are
// looked up through references from many datasets, and parsing a header's
// messages again for each would cost its size each time.
func (f *file) info(addr uint64) (*info, error) {
	if in, ok := f.infos[addr]; ok {
		return in, nil
	}
	in, err := f.parseInfo(addr)
	if err != nil {
		return nil, err
	}
	f.infos[addr] = in
	return in, nil
}

func (f *file) parseInfo(addr uint64) (*info, error) {
	o, err := f.object(addr)
	if err != nil {
		return nil, err
	}
	in := &info{addr: addr, off: o.off, kind: kindType}
	var haveSpace, group bool
	for i := range o.msgs {
		m := &o.msgs[i]
		c := newCursor(m.data, m.off, "message")
		if m.flags&0x02 != 0 && m.typ != msgDatatype {
			return nil, errAt(convert.ErrUnsupported, m.off, "shared message of type %d", m.typ)
		}
		switch m.typ {
		case msgDataspace:
			c.what = "dataspace"
			in.space = parseDataspace(c)
			haveSpace = true
		case msgDatatype:
			c.what = "datatype"
			if m.flags&0x02 != 0 {
				a := parseSharedAddr(c)
				if c.err == nil {
					in.dt, err = f.committed(a, f.lim.MaxDepth)
					if err != nil {
						return nil, err
					}
				}
			} else {
				in.dt = parseDatatype(c, f.lim.MaxDepth)
			}
		case msgLayout:
			c.what = "data layout"
			in.layout = parseLayout(c)
		case msgFilters:
			c.what = "filter pipeline"
			in.filters = parseFilters(c)
		case msgAttribute:
			c.what = "attribute"
			if a := parseAttribute(c, f.lim.MaxDepth); a != nil {
				in.attrs = append(in.attrs, a)
			}
		case msgLink:
			c.what = "link"
			l := parseLink(c)
			if c.err == nil {
				in.links = append(in.links, l)
			}
			group = true
		case msgLinkInfo:
			c.what = "link info"
			if a := denseStorage(c, true); c.err == nil && a != undefAddr {
				return nil, errAt(convert.ErrUnsupported, m.off, "links in dense storage (fractal heap)")
			}
			group = true
		case msgAttrInfo:
			c.what = "attribute info"
			if a := denseStorage(c, false); c.err == nil && a != undefAddr {
				return nil, errAt(convert.ErrUnsupported, m.off, "attributes in dense storage (fractal heap)")
			}
		case msgGroupInfo:
			group = true
		case msgSymbolTable:
			return nil, errAt(convert.ErrUnsupported, m.off, "version 1 group (symbol table)")
		}
		if c.err != nil {
			return nil, c.err
		}
	}
	switch {
	case in.layout != nil:
		in.kind = kindDataset
		if in.dt == nil || !haveSpace {
			return nil, errAt(convert.ErrMalformed, o.off, "dataset without datatype or dataspace")
		}
	case group:
		in.kind = kindGroup
	case in.dt == nil:
		return nil, errAt(convert.ErrMalformed, o.off, "object is neither dataset, group nor datatype")
	}
	for _, a := range in.attrs {
		if a.dt == nil {
			if a.dt, err = f.committed(a.shared, f.lim.MaxDepth); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// committed returns the datatype stored in the committed datatype object at
// addr. It reads only the datatype message, never the object's attributes:
// JLD2's first committed type is the type of its own julia_type attribute.
func (f *file) committed(addr uint64, depth int) (*dtype, error) {
	if depth <= 0 {
		return nil, errAt(convert.ErrLimit, -1, "committed datatype chain deeper than the limit")
	}
	if ti, ok := f.types[addr]; ok && ti.dt != nil {
		return ti.dt, nil
	}
	o, err := f.object(addr)
	if err != nil {
		return nil, err
	}
	m := o.find(msgDatatype)
	if m == nil || o.find(msgLayout) != nil {
		return nil, errAt(convert.ErrMalformed, o.off, "shared datatype refers to an object that is not a committed datatype")
	}
	c := newCursor(m.data, m.off, "datatype")
	var dt *dtype
	if m.flags&0x02 != 0 {
		a := parseSharedAddr(c)
		if c.err != nil {
			return nil, c.err
		}
		if dt, err = f.committed(a, depth-1); err != nil {
			return nil, err
		}
	} else {
		dt = parseDatatype(c, f.lim.MaxDepth)
		if c.err != nil {
			return nil, c.err
		}
		dt.committed = addr
	}
	ti := f.types[addr]
	if ti == nil {
		ti = &typeInfo{}
		f.types[addr] = ti
	}
	ti.dt = dt
	return dt, nil
}

// datasetBytes returns the stored bytes of a dataset (rules L2, L3) and
// their absolute offset. Compact and contiguous data alias the file;
// chunked data is decoded into new memory and its offset is -1.
func (f *file) datasetBytes(in *info) ([]byte, int64, error) {
	hi, need := bits.Mul64(in.space.n, uint64(in.dt.size))
	if hi != 0 || need > 1<<62 {
		return nil, -1, errAt(convert.ErrMalformed, in.off, "dataset size overflows")
	}
	l := in.layout
	if len(in.filters) > 0 && l.class != layoutChunked {
		return nil, -1, errAt(convert.ErrMalformed, in.off, "filters on a dataset that is not chunked")
	}
	switch l.class {
	case layoutCompact:
		if uint64(len(l.compact)) < need {
			return nil, -1, errAt(convert.ErrMalformed, l.compactOff, "compact data of %d bytes for %d needed", len(l.compact), need)
		}
		return l.compact[:need:need], l.compactOff, nil
	case layoutContiguous:
		if need == 0 {
			return nil, -1, nil
		}
		if l.size < need {
			return nil, -1, errAt(convert.ErrMalformed, in.off, "contiguous data of %d bytes for %d needed", l.size, need)
		}
		if l.addr == undefAddr {
			return nil, -1, errAt(convert.ErrMalformed, in.off, "dataset of %d bytes has no storage", need)
		}
		b, off, err := f.at(l.addr, need, "contiguous data")
		if err != nil {
			err.(*Error).Offset = in.off
			return nil, -1, err
		}
		return b, off, nil
	case layoutChunked:
		b, err := f.chunked(in, need)
		return b, -1, err
	}
	return nil, -1, errAt(convert.ErrMalformed, in.off, "layout class %d", l.class)
}

// gheap is one parsed global heap collection (rule H10).
type gheap struct {
	objs map[uint16][]byte
}

// heapObject returns object index of the global heap collection at addr.
func (f *file) heapObject(addr uint64, index uint32) ([]byte, error) {
	h, ok := f.heaps[addr]
	if !ok {
		b, off, err := f.at(addr, 16, "global heap")
		if err != nil {
			return nil, err
		}
		if err := f.countObject(off); err != nil {
			return nil, err
		}
		f.heaps[addr] = nil
		if string(b[:4]) != "GCOL" || b[4] != 1 {
			return nil, errAt(convert.ErrMalformed, off, "no global heap collection signature")
		}
		size := le64(b[8:])
		if b, off, err = f.at(addr, size, "global heap collection"); err != nil {
			return nil, err
		}
		if err := f.work(len(b), off); err != nil {
			return nil, err
		}
		h = &gheap{objs: map[uint16][]byte{}}
		c := newCursor(b, off, "global heap object")
		c.skip(16)
		for c.left() >= 16 {
			idx := c.u16()
			c.skip(6)
			n := c.u64()
			if idx == 0 {
				break
			}
			if n > uint64(c.left()) {
				return nil, errAt(convert.ErrMalformed, c.pos(), "global heap object of %d bytes past its collection", n)
			}
			h.objs[idx] = c.bytes(int(n))
			c.skip(min(int((n+7)&^7-n), c.left()))
		}
		if c.err != nil {
			return nil, c.err
		}
		f.heaps[addr] = h
	}
	if h == nil {
		return nil, errAt(convert.ErrMalformed, -1, "global heap collection %d is malformed", addr)
	}
	if index > 0xffff {
		return nil, errAt(convert.ErrMalformed, -1, "global heap object index %d", index)
	}
	o, ok := h.objs[uint16(index)]
	if !ok {
		return nil, errAt(convert.ErrMalformed, -1, "global heap collection %d has no object %d", addr, index)
	}
	return o, nil
}

// vlen resolves one variable-length element (length, collection, index):
// the bytes of its n elements of size esize.
func (f *file) vlen(b []byte, esize uint32) ([]byte, uint64, error) {
	n := uint64(le64u32(b))
	coll := le64(b[4:])
	idx := le64u32(b[12:])
	if n == 0 {
		return nil, 0, nil
	}
	o, err := f.heapObject(coll, idx)
	if err != nil {
		return nil, 0, err
	}
	hi, need := bits.Mul64(n, uint64(esize))
	if hi != 0 || need > uint64(len(o)) {
		return nil, 0, errAt(convert.ErrMalformed, -1, "variable-length value of %d elements in a heap object of %d bytes", n, len(o))
	}
	return o[:need], n, nil
}
