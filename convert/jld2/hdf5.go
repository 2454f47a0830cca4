package jld2

import (
	"bytes"
	"cmp"
	"math/bits"
	"slices"
	"strings"

	"github.com/safeweights/safeweights/convert"
)

const undefAddr = ^uint64(0)

var hdf5Magic = []byte("\x89HDF\r\n\x1a\n")

// file is an opened JLD2/HDF5 file: the bytes, the superblock, and caches
// that make every object header and heap collection parsed at most once.
type file struct {
	data []byte
	base uint64 // absolute offset that addresses are relative to
	root uint64 // root group object header address
	lim  Limits

	header jld2Header

	objects map[uint64]*object
	heaps   map[uint64]*gheap
	types   map[uint64]*typeInfo
	nobj    int
	// headerWork counts object header bytes parsed and checksummed; a valid
	// file parses each byte once, so twice the file size is a generous bound
	// that stops overlapping hostile headers from costing quadratic time.
	headerWork int64
	decoded    int64
	// steps counts the reader's other work (values walked, name bytes
	// built, aliases, type names resolved, chunks); stepBudget bounds it in
	// proportion to the file size (spec section 1), so that no file makes
	// the reader do more than linear work whatever it claims.
	steps      int64
	stepBudget int64

	infos map[uint64]*info
	texts map[[2]uint64]string
	// spans are the file ranges that tensor data was taken from: distinct
	// datasets never share storage in a file HDF5 or JLD2 wrote, and a
	// forged file that makes them share it would multiply the output.
	spans []span
}

// span is a range [start, end) of the file.
type span struct{ start, end uint64 }

// Work units per input byte and a fixed allowance for small files.
const (
	stepsPerByte = 64
	stepsBase    = 1 << 22
)

// jld2Header is what the 512-byte text header declares.
type jld2Header struct {
	text          string
	formatVersion string
	julia         string
}

func openFile(data []byte, lim Limits) (*file, error) {
	f := &file{
		data:    data,
		lim:     lim,
		objects: map[uint64]*object{},
		heaps:   map[uint64]*gheap{},
		types:   map[uint64]*typeInfo{},
		infos:   map[uint64]*info{},
		texts:   map[[2]uint64]string{},

		stepBudget: stepsPerByte*int64(len(data)) + stepsBase,
	}
	// H1: the superblock is at 0, 512, 1024, 2048, ...
	sb := -1
	for off := 0; off+8 <= len(data); off = nextSuperblockOffset(off) {
		if bytes.Equal(data[off:off+8], hdf5Magic) {
			sb = off
			break
		}
	}
	if sb < 0 {
		// Say what the file is where that can be told (CONVERSION.md
		// section 6).
		if err := convert.Diagnose(data); err != nil {
			return nil, errAt(err, 0, "no HDF5 superblock signature")
		}
		return nil, errAt(convert.ErrMalformed, 0, "no HDF5 superblock signature")
	}
	if sb > 0 {
		f.header = parseTextHeader(data[:sb])
	}
	c := newCursor(data[sb:], int64(sb), "superblock")
	c.skip(8)
	version := c.u8()
	if c.err != nil {
		return nil, c.err
	}
	if version != 2 && version != 3 {
		return nil, errAt(convert.ErrUnsupported, int64(sb)+8, "superblock version %d (JLD2 writes version 2)", version)
	}
	so, sl := c.u8(), c.u8()
	c.u8() // file consistency flags: informative only for a reader
	base := c.u64()
	c.u64() // superblock extension: holds no information this reader needs
	eof := c.u64()
	root := c.u64()
	sum := c.u32()
	if c.err != nil {
		return nil, c.err
	}
	if so != 8 || sl != 8 {
		return nil, errAt(convert.ErrUnsupported, int64(sb)+9, "offset size %d, length size %d (only 8 is read)", so, sl)
	}
	if lookup3(data[sb:sb+44]) != sum {
		kind := convert.ErrMalformed
		if err := convert.Diagnose(data); err != nil {
			// A text-mode transfer that left the signature whole
			// (NUL bytes replaced) breaks the checksum.
			kind = err
		}
		return nil, errAt(kind, int64(sb)+44, "superblock checksum mismatch")
	}
	if base > uint64(len(data)) {
		return nil, errAt(convert.ErrMalformed, int64(sb)+12, "base address %d past end of file", base)
	}
	f.base = base
	// JLD2 writes the file size here, HDF5 the size less the base: a file
	// shorter than either reading is truncated.
	if eof > uint64(len(data)) {
		return nil, errAt(convert.ErrMalformed, int64(sb)+28, "file truncated: end of file address %d, size %d", eof, len(data))
	}
	f.root = root
	return f, nil
}

func nextSuperblockOffset(off int) int {
	if off == 0 {
		return 512
	}
	return off * 2
}

// parseTextHeader reads JLD2's user block: "HDF5-based Julia Data Format,
// version 0.1.1\0 (Julia 1.10.1 64-bit LE)" and its older spellings.
func parseTextHeader(b []byte) jld2Header {
	var h jld2Header
	first, rest, _ := bytes.Cut(b, []byte{0})
	h.text = string(first)
	if i := strings.LastIndex(h.text, "version "); i >= 0 {
		h.formatVersion = strings.TrimSpace(h.text[i+len("version "):])
	}
	rest, _, _ = bytes.Cut(rest, []byte{0})
	r := strings.TrimSpace(string(rest))
	if after, ok := strings.CutPrefix(r, "(Julia "); ok {
		if v, _, ok := strings.Cut(after, " "); ok {
			h.julia = v
		} else {
			h.julia = strings.TrimSuffix(after, ")")
		}
	}
	if !isJLD2Text(h.text) {
		h.formatVersion, h.julia = "", ""
	}
	return h
}

func isJLD2Text(s string) bool {
	return strings.HasPrefix(s, "HDF5-based Julia Data Format") || strings.HasPrefix(s, "Julia data file (HDF5)")
}

// at converts an address and length to an absolute slice of the file.
func (f *file) at(addr, n uint64, what string) ([]byte, int64, error) {
	if addr == undefAddr {
		return nil, -1, errAt(convert.ErrMalformed, -1, "%s: undefined address", what)
	}
	start, c1 := bits.Add64(f.base, addr, 0)
	end, c2 := bits.Add64(start, n, 0)
	if c1 != 0 || c2 != 0 || end > uint64(len(f.data)) {
		return nil, -1, errAt(convert.ErrMalformed, -1, "%s: address %d length %d past end of file (size %d)", what, addr, n, len(f.data))
	}
	return f.data[start:end:end], int64(start), nil
}

// rest returns the file from addr to its end.
func (f *file) rest(addr uint64, what string) ([]byte, int64, error) {
	start, c := bits.Add64(f.base, addr, 0)
	if addr == undefAddr || c != 0 || start > uint64(len(f.data)) {
		return nil, -1, errAt(convert.ErrMalformed, -1, "%s: address %d past end of file", what, addr)
	}
	return f.data[start:], int64(start), nil
}

func (f *file) countObject(off int64) error {
	f.nobj++
	if f.nobj > f.lim.MaxObjects {
		return errAt(convert.ErrLimit, off, "more than %d objects", f.lim.MaxObjects)
	}
	return nil
}

func (f *file) work(n int, off int64) error {
	if int64(n) > 2*int64(len(f.data))+1<<16-f.headerWork {
		return errAt(convert.ErrLimit, off, "object headers overlap: more header bytes than the file holds")
	}
	f.headerWork += int64(n)
	return nil
}

// step charges n units of work against the budget proportional to the
// file size.
func (f *file) step(n int) error {
	if int64(n) > f.stepBudget-f.steps {
		return errAt(convert.ErrLimit, -1, "more work than %d units per input byte", stepsPerByte)
	}
	f.steps += int64(n)
	return nil
}

// addSpan records that tensor data came from the n bytes of the file at
// the absolute offset off.
func (f *file) addSpan(off int64, n uint64) {
	if n > 0 && off >= 0 {
		f.spans = append(f.spans, span{uint64(off), uint64(off) + n})
	}
}

// checkSpans fails if two recorded ranges overlap (sorting: n log n).
func (f *file) checkSpans() error {
	slices.SortFunc(f.spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(f.spans); i++ {
		if f.spans[i].start < f.spans[i-1].end {
			return errAt(convert.ErrMalformed, int64(f.spans[i].start), "data of two datasets or chunks overlaps")
		}
	}
	return nil
}

// Message types (HDF5 File Format Specification v3, section IV.A.2).
const (
	msgNIL          = 0x00
	msgDataspace    = 0x01
	msgLinkInfo     = 0x02
	msgDatatype     = 0x03
	msgFillOld      = 0x04
	msgFill         = 0x05
	msgLink         = 0x06
	msgExternal     = 0x07
	msgLayout       = 0x08
	msgBogus        = 0x09
	msgGroupInfo    = 0x0A
	msgFilters      = 0x0B
	msgAttribute    = 0x0C
	msgComment      = 0x0D
	msgModTimeOld   = 0x0E
	msgSharedTable  = 0x0F
	msgContinuation = 0x10
	msgSymbolTable  = 0x11
	msgModTime      = 0x12
	msgBTreeK       = 0x13
	msgDriverInfo   = 0x14
	msgAttrInfo     = 0x15
	msgRefCount     = 0x16
	msgFSInfo       = 0x17
)

type message struct {
	typ   uint8
	flags uint8
	off   int64
	data  []byte
}

type object struct {
	addr uint64
	off  int64
	msgs []message
}

// object parses the version 2 object header at addr (rules H5-H7), once.
func (f *file) object(addr uint64) (*object, error) {
	if o, ok := f.objects[addr]; ok {
		if o == nil {
			return nil, errAt(convert.ErrMalformed, -1, "object header %d refers to itself", addr)
		}
		return o, nil
	}
	b, off, err := f.rest(addr, "object header")
	if err != nil {
		return nil, err
	}
	if err := f.countObject(off); err != nil {
		return nil, err
	}
	f.objects[addr] = nil
	o := &object{addr: addr, off: off}
	c := newCursor(b, off, "object header")
	sig := c.bytes(4)
	if c.err != nil {
		return nil, c.err
	}
	if string(sig) != "OHDR" {
		if sig[0] == 1 {
			return nil, errAt(convert.ErrUnsupported, off, "version 1 object header (JLD2 writes version 2)")
		}
		return nil, errAt(convert.ErrMalformed, off, "no object header signature")
	}
	version, flags := c.u8(), c.u8()
	if c.err == nil && version != 2 {
		return nil, errAt(convert.ErrUnsupported, off+4, "object header version %d", version)
	}
	if flags&^0x3f != 0 {
		return nil, errAt(convert.ErrMalformed, off+5, "reserved object header flags %#x", flags)
	}
	if flags&0x20 != 0 {
		c.skip(16)
	}
	if flags&0x10 != 0 {
		c.skip(4)
	}
	size := c.uN(1 << (flags & 3))
	if c.err != nil {
		return nil, c.err
	}
	start := c.p
	if size > uint64(c.left()) || uint64(c.left())-size < 4 {
		return nil, errAt(convert.ErrMalformed, c.pos(), "object header chunk of %d bytes past end of file", size)
	}
	end := start + int(size)
	if err := f.work(end+4, off); err != nil {
		return nil, err
	}
	if lookup3(b[:end]) != le64u32(b[end:]) {
		return nil, errAt(convert.ErrMalformed, off+int64(end), "object header checksum mismatch")
	}
	creationOrder := flags&0x04 != 0
	conts, err := o.parseMessages(b[start:end], off+int64(start), creationOrder)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	for len(conts) > 0 {
		ct := conts[0]
		conts = conts[1:]
		if seen[ct[0]] {
			return nil, errAt(convert.ErrMalformed, off, "object header continuation loop")
		}
		seen[ct[0]] = true
		cb, coff, err := f.at(ct[0], ct[1], "object header continuation")
		if err != nil {
			return nil, err
		}
		if len(cb) < 8 || string(cb[:4]) != "OCHK" {
			return nil, errAt(convert.ErrMalformed, coff, "no continuation chunk signature")
		}
		if err := f.work(len(cb), coff); err != nil {
			return nil, err
		}
		if lookup3(cb[:len(cb)-4]) != le64u32(cb[len(cb)-4:]) {
			return nil, errAt(convert.ErrMalformed, coff+int64(len(cb))-4, "continuation chunk checksum mismatch")
		}
		more, err := o.parseMessages(cb[4:len(cb)-4], coff+4, creationOrder)
		if err != nil {
			return nil, err
		}
		conts = append(conts, more...)
	}
	f.objects[addr] = o
	return o, nil
}

func le64u32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// parseMessages splits one header chunk into messages and returns the
// continuation chunks it names.
func (o *object) parseMessages(b []byte, off int64, creationOrder bool) ([][2]uint64, error) {
	hdr := 4
	if creationOrder {
		hdr = 6
	}
	var conts [][2]uint64
	c := newCursor(b, off, "object header message")
	for c.left() >= hdr {
		typ, size, flags := c.u8(), c.u16(), c.u8()
		if creationOrder {
			c.skip(2)
		}
		moff := c.pos()
		data := c.bytes(int(size))
		if c.err != nil {
			return nil, c.err
		}
		switch typ {
		case msgNIL:
			continue
		case msgContinuation:
			mc := newCursor(data, moff, "continuation message")
			a, n := mc.u64(), mc.u64()
			if mc.err != nil {
				return nil, mc.err
			}
			if n < 8 {
				return nil, errAt(convert.ErrMalformed, moff, "continuation chunk of %d bytes", n)
			}
			conts = append(conts, [2]uint64{a, n})
			continue
		case msgExternal:
			return nil, errAt(convert.ErrRefused, moff, "external data storage (data in another file)")
		}
		if typ > 0x18 && flags&0x80 != 0 {
			return nil, errAt(convert.ErrUnsupported, moff, "unknown message type %d marked must-understand", typ)
		}
		o.msgs = append(o.msgs, message{typ: typ, flags: flags, off: moff, data: data})
	}
	return conts, nil
}

// find returns the first message of a type.
func (o *object) find(typ uint8) *message {
	for i := range o.msgs {
		if o.msgs[i].typ == typ {
			return &o.msgs[i]
		}
	}
	return nil
}
