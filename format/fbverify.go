package format

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// fbv verifies the structure of a FlatBuffers buffer: every offset, vtable,
// vector and string is checked against the buffer before anything is read
// through it (rule R11). It knows nothing of the schema; header.go drives it
// field by field. base is the buffer's offset in the file, for error offsets.
//
// When cover is set, every object the verifier walks claims its bytes in the
// bitmap, and checkCoverage then requires every header byte to belong to
// exactly one object or to short zero padding (R11, coverage), so that the
// digest-covered header has no room for bytes nobody reads.
type fbv struct {
	buf  []byte
	base int64

	cover  []uint64          // bitmap of claimed bytes; nil: coverage not checked
	lastVT uint32            // the vtable claimed last (tables of one type share it)
	vts    map[uint32]uint16 // every claimed vtable and its length, for sharing

	// The field mask of the last small table: tables of one type that
	// share a vtable, an inline size and a position mod 8 have the same one.
	maskW    *uint8 // the widths of that table type
	maskVT   uint32
	maskKey  uint16 // size<<3 | pos%8
	maskBits uint64
}

// Widths of the inline fields of each table, by slot (spec/safeweights.fbs).
var (
	widthsHeader     = []uint8{8, 4, 4, 4, 4, 4}
	widthsTensor     = []uint8{4, 1, 4, 8, 8, 1, 4, 4}
	widthsKeyValue   = []uint8{4, 4}
	widthsProvenance = []uint8{4, 4, 4, 4}
)

// maxGap bounds a run of padding bytes (between objects, and between the
// fields of a table): fewer than 8, the largest alignment in the header.
const maxGap = 8

// claim marks [a, b) as owned by one object; it fails if any byte of it is
// owned already.
func (v *fbv) claim(a, b uint64, field string) error {
	if v.cover == nil {
		return nil
	}
	if w := a / 64; w == (b-1)/64 && a < b {
		// Most objects (fields, short strings) lie within one word.
		m := (^uint64(0) >> (64 - (b - a))) << (a % 64)
		if v.cover[w]&m != 0 {
			return v.errf(a, field, "object overlaps another object of the header")
		}
		v.cover[w] |= m
		return nil
	}
	for i := a; i < b; {
		w := i / 64
		lo, hi := i%64, uint64(64)
		if b-w*64 < 64 {
			hi = b - w*64
		}
		m := (^uint64(0) >> (64 - (hi - lo))) << lo
		if v.cover[w]&m != 0 {
			return v.errf(i, field, "object overlaps another object of the header")
		}
		v.cover[w] |= m
		i = w*64 + hi
	}
	return nil
}

// claimMask claims the bytes at pos+i for each bit i of m.
func (v *fbv) claimMask(pos uint64, m uint64, field string) error {
	w, sh := pos/64, pos%64
	lo := m << sh
	if v.cover[w]&lo != 0 {
		return v.errf(pos, field, "object overlaps another object of the header")
	}
	if sh != 0 && m>>(64-sh) != 0 {
		hi := m >> (64 - sh)
		if w+1 >= uint64(len(v.cover)) || v.cover[w+1]&hi != 0 {
			return v.errf(pos, field, "object overlaps another object of the header")
		}
		v.cover[w+1] |= hi
	}
	v.cover[w] |= lo
	return nil
}

// claimVTable claims a vtable, which several tables may share: a second
// claim of the same vtable is no overlap.
func (v *fbv) claimVTable(vt uint32, n uint16, field string) error {
	if v.cover == nil || vt == v.lastVT {
		return nil
	}
	if m, ok := v.vts[vt]; ok {
		if m != n {
			return v.errf(uint64(vt), field, "vtable overlaps another object of the header")
		}
		v.lastVT = vt
		return nil
	}
	if err := v.claim(uint64(vt), uint64(vt)+uint64(n), field); err != nil {
		return err
	}
	if v.vts == nil {
		v.vts = make(map[uint32]uint16, 4)
	}
	v.vts[vt] = n
	v.lastVT = vt
	return nil
}

// checkCoverage checks that every byte no object claimed is zero and lies in
// a run of fewer than maxGap such bytes.
func (v *fbv) checkCoverage() error {
	if v.cover == nil {
		return nil
	}
	n := uint64(len(v.buf))
	end, run := uint64(0), uint64(0) // the current run of free bytes ends at end
	for w, word := range v.cover {
		// Walk the runs of free (unclaimed) bytes in this word.
		for free := ^word; free != 0; {
			lo := uint64(bits.TrailingZeros64(free))
			l := uint64(bits.TrailingZeros64(^(free >> lo))) // 64 when the run fills the word
			free &^= (^uint64(0) >> (64 - l)) << lo
			a := uint64(w)*64 + lo
			if a >= n {
				return nil
			}
			b := min(a+l, n)
			for p := a; p < b; p++ {
				if v.buf[p] != 0 {
					return v.errf(p, "header", "byte belongs to no object and is not zero padding")
				}
			}
			if a == end && run > 0 {
				run += b - a
			} else {
				run = b - a
			}
			end = b
			if run >= maxGap {
				return v.errf(b-run, "header", "8 or more bytes of padding between objects")
			}
		}
	}
	return nil
}

// claimFields claims a table's soffset and each of its present fields,
// which must lie inside the table, aligned, and not overlap. The other bytes
// of the table's inline size are padding, checked with the rest of the
// header by checkCoverage. In a file of a minor version this package knows,
// a vtable entry for a slot the schema does not define is an error: it would
// reference bytes nobody reads.
func (v *fbv) claimFields(t table, widths []uint8, field string) error {
	// Tables of up to 64 bytes (all that this package writes) claim their
	// bytes with one mask; larger ones field by field.
	small := t.size <= 64
	key := t.size<<3 | uint16(t.pos%8)
	if small && t.vt == v.maskVT && key == v.maskKey && &widths[0] == v.maskW {
		return v.claimMask(uint64(t.pos), v.maskBits, field)
	}
	m := uint64(0xf) // the soffset
	if !small {
		if err := v.claim(uint64(t.pos), uint64(t.pos)+4, field); err != nil {
			return err
		}
	}
	slots := (int(t.vtLen) - 4) / 2
	for slot := 0; slot < slots; slot++ {
		off := le.Uint16(v.buf[t.vt+4+2*uint32(slot):])
		if off == 0 {
			continue
		}
		if slot >= len(widths) {
			return v.errf(uint64(t.vt), field, "vtable entry for a field this format version does not define")
		}
		w := uint64(widths[slot])
		p := uint64(t.pos) + uint64(off)
		if off < 4 || uint64(off)+w > uint64(t.size) || p%w != 0 {
			return v.errf(uint64(t.pos), field, "field outside its table or misaligned")
		}
		if small {
			f := (uint64(1)<<w - 1) << off
			if m&f != 0 {
				return v.errf(p, field, "fields of a table overlap")
			}
			m |= f
		} else if err := v.claim(p, p+w, field); err != nil {
			return err
		}
	}
	if small {
		v.maskW, v.maskVT, v.maskKey, v.maskBits = &widths[0], t.vt, key, m
		return v.claimMask(uint64(t.pos), m, field)
	}
	return nil
}

// table is a verified table: its position, vtable position and sizes.
type table struct {
	pos, vt     uint32
	vtLen, size uint16
}

var le = binary.LittleEndian

func (v *fbv) errf(pos uint64, field, reason string) error {
	return Errorf(ErrHeader, "R11", v.base+int64(pos), field, reason)
}

// table verifies the table at pos, whose fields have the given widths.
func (v *fbv) table(pos uint64, widths []uint8, field string) (table, error) {
	n := uint64(len(v.buf))
	if pos%4 != 0 || pos+4 > n {
		return table{}, v.errf(pos, field, "table offset out of range or misaligned")
	}
	soff := int64(int32(le.Uint32(v.buf[pos:])))
	vt := int64(pos) - soff
	if vt < 0 || vt%2 != 0 || uint64(vt)+4 > n {
		return table{}, v.errf(pos, field, "vtable out of range or misaligned")
	}
	vtLen := le.Uint16(v.buf[vt:])
	size := le.Uint16(v.buf[vt+2:])
	if vtLen < 4 || vtLen%2 != 0 || uint64(vt)+uint64(vtLen) > n {
		return table{}, v.errf(uint64(vt), field, "vtable length out of range")
	}
	if size < 4 || pos+uint64(size) > n {
		return table{}, v.errf(pos, field, "table size out of range")
	}
	t := table{pos: uint32(pos), vt: uint32(vt), vtLen: vtLen, size: size}
	if v.cover != nil {
		if err := v.claimVTable(t.vt, vtLen, field); err != nil {
			return table{}, err
		}
		if err := v.claimFields(t, widths, field); err != nil {
			return table{}, err
		}
	}
	return t, nil
}

// field returns the absolute position of field slot in t, or 0 when absent.
// width is the size of the field's inline value.
func (v *fbv) field(t table, slot int, width uint16, name string) (uint64, error) {
	e := 4 + 2*uint32(slot)
	if e+2 > uint32(t.vtLen) {
		return 0, nil
	}
	off := le.Uint16(v.buf[t.vt+e:])
	if off == 0 {
		return 0, nil
	}
	if off < 4 || uint32(off)+uint32(width) > uint32(t.size) {
		return 0, v.errf(uint64(t.pos), name, "field outside its table")
	}
	p := uint64(t.pos) + uint64(off)
	if p%uint64(width) != 0 {
		return 0, v.errf(p, name, "field misaligned")
	}
	return p, nil
}

// deref follows the uoffset stored at p.
func (v *fbv) deref(p uint64, name string) (uint64, error) {
	target := p + uint64(le.Uint32(v.buf[p:]))
	if target >= uint64(len(v.buf)) {
		return 0, v.errf(p, name, "offset past the end of the header")
	}
	return target, nil
}

// vector verifies a vector of n elements of width bytes at pos and returns
// the position of its first element and its length.
func (v *fbv) vector(pos uint64, width uint64, name string) (start uint64, n uint64, err error) {
	if pos%4 != 0 || pos+4 > uint64(len(v.buf)) {
		return 0, 0, v.errf(pos, name, "vector offset out of range or misaligned")
	}
	n = uint64(le.Uint32(v.buf[pos:]))
	start = pos + 4
	if n > (uint64(len(v.buf))-start)/width {
		return 0, 0, v.errf(pos, name, "vector length past the end of the header")
	}
	if width == 8 && start%8 != 0 {
		return 0, 0, v.errf(start, name, "vector misaligned")
	}
	return start, n, nil
}

// vectorField verifies the vector in field slot of t; ok is false when absent.
func (v *fbv) vectorField(t table, slot int, width uint64, name string) (start, n uint64, ok bool, err error) {
	return v.vectorFieldTail(t, slot, width, 0, name)
}

// vectorFieldTail is vectorField for a vector followed by tail bytes that
// belong to it (a string's NUL), claimed with it.
func (v *fbv) vectorFieldTail(t table, slot int, width, tail uint64, name string) (start, n uint64, ok bool, err error) {
	p, err := v.field(t, slot, 4, name)
	if err != nil || p == 0 {
		return 0, 0, false, err
	}
	pos, err := v.deref(p, name)
	if err != nil {
		return 0, 0, false, err
	}
	start, n, err = v.vector(pos, width, name)
	if err != nil {
		return 0, 0, false, err
	}
	if tail != 0 && (start+n >= uint64(len(v.buf)) || v.buf[start+n] != 0) {
		return 0, 0, false, v.errf(start, name, "string not NUL-terminated")
	}
	if err := v.claim(pos, start+n*width+tail, name); err != nil {
		return 0, 0, false, err
	}
	return start, n, true, nil
}

// stringField verifies the string in field slot of t and returns its bytes,
// which alias the buffer. ok is false when absent. The string must be
// NUL-terminated as FlatBuffers requires; UTF-8 validity is the caller's rule.
func (v *fbv) stringField(t table, slot int, name string) (s []byte, off uint64, ok bool, err error) {
	start, n, ok, err := v.vectorFieldTail(t, slot, 1, 1, name)
	if err != nil || !ok {
		return nil, 0, false, err
	}
	return v.buf[start : start+n], start, true, nil
}

// tableAt verifies the table referenced by the uoffset at p.
func (v *fbv) tableAt(p uint64, widths []uint8, name string) (table, error) {
	pos, err := v.deref(p, name)
	if err != nil {
		return table{}, err
	}
	return v.table(pos, widths, name)
}

// u64 reads a scalar field (absent reads as 0).
func (v *fbv) u64(t table, slot int, name string) (uint64, error) {
	p, err := v.field(t, slot, 8, name)
	if err != nil || p == 0 {
		return 0, err
	}
	return le.Uint64(v.buf[p:]), nil
}

func (v *fbv) u8(t table, slot int, name string) (uint8, error) {
	p, err := v.field(t, slot, 1, name)
	if err != nil || p == 0 {
		return 0, err
	}
	return v.buf[p], nil
}

// validName reports whether b is a valid tensor name apart from its length:
// non-empty UTF-8 without NUL (rule R15).
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	// Names are nearly always ASCII: one pass checks both rules for them.
	for i, c := range b {
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			rest := b[i:]
			return utf8.Valid(rest) && indexZero(rest) < 0
		}
	}
	return true
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// CheckName reports whether name is a valid tensor name of at most maxLen
// bytes (rule R15), with the error a reader would give.
func CheckName(name string, maxLen int) error {
	if len(name) > maxLen {
		return Errorf(ErrLimit, "R15", -1, "tensor name", itoa(uint64(len(name)))+" bytes over the limit of "+itoa(uint64(maxLen)))
	}
	if !validName([]byte(name)) {
		return Errorf(ErrName, "R15", -1, "tensor name "+strconvQuote([]byte(name)), "empty, not UTF-8, or holds NUL")
	}
	return nil
}
