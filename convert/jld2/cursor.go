package jld2

import (
	"encoding/binary"

	"github.com/safeweights/safeweights/convert"
)

// cursor reads little-endian fields from a bounded slice of the file. The
// first read past the end records an error and every later read returns
// zero, so a parser checks c.err once after a run of reads.
type cursor struct {
	b    []byte
	p    int
	off  int64 // absolute file offset of b[0]
	what string
	err  error
}

func newCursor(b []byte, off int64, what string) *cursor {
	return &cursor{b: b, off: off, what: what}
}

func (c *cursor) pos() int64 { return c.off + int64(c.p) }

func (c *cursor) left() int { return len(c.b) - c.p }

func (c *cursor) fail(kind error, reason string, args ...any) {
	if c.err == nil {
		c.err = errAt(kind, c.pos(), reason, args...)
	}
}

func (c *cursor) need(n int) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || n > len(c.b)-c.p {
		c.fail(convert.ErrMalformed, "%s truncated", c.what)
		return false
	}
	return true
}

func (c *cursor) skip(n int) {
	if c.need(n) {
		c.p += n
	}
}

func (c *cursor) bytes(n int) []byte {
	if !c.need(n) {
		return nil
	}
	b := c.b[c.p : c.p+n : c.p+n]
	c.p += n
	return b
}

func (c *cursor) u8() uint8 {
	if !c.need(1) {
		return 0
	}
	v := c.b[c.p]
	c.p++
	return v
}

func (c *cursor) u16() uint16 {
	if !c.need(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(c.b[c.p:])
	c.p += 2
	return v
}

func (c *cursor) u32() uint32 {
	if !c.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(c.b[c.p:])
	c.p += 4
	return v
}

func (c *cursor) u64() uint64 {
	if !c.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(c.b[c.p:])
	c.p += 8
	return v
}

// uN reads an n-byte little-endian unsigned integer, 1 <= n <= 8.
func (c *cursor) uN(n int) uint64 {
	if n < 1 || n > 8 {
		c.fail(convert.ErrMalformed, "%s: field width %d", c.what, n)
		return 0
	}
	if !c.need(n) {
		return 0
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(c.b[c.p+i])
	}
	c.p += n
	return v
}

// cstring reads a NUL-terminated string; pad8 skips padding to a multiple of
// 8 bytes counted from the start of the string.
func (c *cursor) cstring(pad8 bool) string {
	if c.err != nil {
		return ""
	}
	start := c.p
	for i := c.p; i < len(c.b); i++ {
		if c.b[i] == 0 {
			s := string(c.b[start:i])
			n := i + 1 - start
			if pad8 {
				n = (n + 7) &^ 7
			}
			c.p = start
			c.skip(n)
			return s
		}
	}
	c.fail(convert.ErrMalformed, "%s: unterminated name", c.what)
	return ""
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
