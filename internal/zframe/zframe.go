// Package zframe checks and decodes the zstd frame of a compressed tensor
// (spec/SPEC.md section 4.3, rule R27).
//
// A tensor's stored bytes must be exactly one zstd frame (RFC 8878) of a
// restricted form: no dictionary, no skippable frame, a declared content size
// equal to the tensor's canonical length, a window of at most MaxWindow, and
// nothing after the frame. Check walks the frame header and every block
// header (3 bytes each) without decoding and without allocating in
// proportion to the declared size, so that a declared size the stored bytes
// cannot produce is refused before any buffer is made for it. Decode and
// Verifier run the same walk first, then decode with klauspost/compress/zstd
// and insist on exactly the declared length.
package zframe

import (
	"fmt"
)

// MaxWindow is the largest window a frame may use: 128 MiB (2^27), the
// default limit of the reference decoder. A single-segment frame's window is
// its content size.
const MaxWindow = 128 << 20

// Limits bound what a frame may make a reader allocate.
type Limits struct {
	// MaxContent is the largest content size accepted (the reader's
	// MaxDecompressedSize). A larger want is refused with Limit set.
	MaxContent int64
}

// Error is the reason a frame was refused. Limit is true when a reader's
// limit, not the format, refused it.
type Error struct {
	Limit  bool
	Reason string
	Err    error
}

func (e *Error) Error() string {
	s := "zframe: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func bad(format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

const (
	magic         = 0xFD2FB528
	skippableMask = 0xFFFFFFF0
	skippableBase = 0x184D2A50
	maxBlock      = 128 << 10
	minWindow     = 1 << 10
)

// walker checks a frame's structure as its bytes arrive, in any pieces.
type walker struct {
	want int64

	state   int
	hdr     [18]byte // the frame header, as it arrives
	hn      int      // bytes of hdr held
	hneed   int      // size of the frame header, once known
	bh      [3]byte
	bhn     int
	skip    int64 // bytes of the current block body (or checksum) left
	sum     bool  // a content checksum follows the last block
	window  int64 // Window_Size
	eff     int64 // the effective window: min(Window_Size, max(want, 1 KiB))
	bms     int64 // Block_Maximum_Size of the effective window
	lo, hi  int64 // bytes the blocks seen so far produce: exactly (raw, RLE), at most
	off     int64 // bytes consumed
	blocks  int64
	lastSet bool
}

const (
	stHeader = iota
	stBlockHeader
	stBody
	stChecksum
	stDone
)

func newWalker(want int64, lim Limits) (*walker, error) {
	if want < 0 {
		return nil, bad("negative content size %d", want)
	}
	if want > lim.MaxContent {
		return nil, &Error{Limit: true, Reason: fmt.Sprintf("content size %d over the limit of %d", want, lim.MaxContent)}
	}
	return &walker{want: want, hneed: 5}, nil
}

// write consumes p. It never retains p.
func (w *walker) write(p []byte) error {
	for len(p) > 0 {
		switch w.state {
		case stHeader:
			n := copy(w.hdr[w.hn:w.hneed], p)
			w.hn += n
			p = p[n:]
			w.off += int64(n)
			if w.hn >= 4 && w.hn-n < 4 {
				if err := checkMagic(w.hdr[:4]); err != nil {
					return err
				}
			}
			if w.hn == 5 && w.hneed == 5 {
				need, err := headerSize(w.hdr[4])
				if err != nil {
					return err
				}
				w.hneed = need
			}
			if w.hn == w.hneed && w.hneed > 5 {
				if err := w.parseHeader(); err != nil {
					return err
				}
				w.state = stBlockHeader
			}
		case stBlockHeader:
			n := copy(w.bh[w.bhn:], p)
			w.bhn += n
			p = p[n:]
			w.off += int64(n)
			if w.bhn == 3 {
				w.bhn = 0
				if err := w.block(); err != nil {
					return err
				}
			}
		case stBody, stChecksum:
			n := int64(len(p))
			if n > w.skip {
				n = w.skip
			}
			w.skip -= n
			p = p[n:]
			w.off += n
			if w.skip == 0 {
				w.afterBody()
			}
		case stDone:
			return bad("%d bytes follow the frame", len(p))
		}
	}
	return nil
}

func checkMagic(b []byte) error {
	m := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	switch {
	case m == magic:
		return nil
	case m&skippableMask == skippableBase:
		return bad("a skippable frame")
	default:
		return bad("not a zstd frame (magic %#08x)", m)
	}
}

// headerSize is the size of the frame header (magic included) that the
// Frame_Header_Descriptor fhd announces (RFC 8878 section 3.1.1.1).
func headerSize(fhd byte) (int, error) {
	if fhd&0x08 != 0 {
		return 0, bad("reserved bit of the frame header set")
	}
	if fhd&0x03 != 0 {
		return 0, bad("the frame names a dictionary")
	}
	single := fhd&0x20 != 0
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	if fcs == 0 {
		return 0, bad("the frame does not declare its content size")
	}
	n := 5 + fcs
	if !single {
		n++
	}
	return n, nil
}

func (w *walker) parseHeader() error {
	fhd := w.hdr[4]
	single := fhd&0x20 != 0
	w.sum = fhd&0x04 != 0
	p := w.hdr[5:w.hneed]
	var window uint64
	if !single {
		wd := p[0]
		p = p[1:]
		exp := uint64(wd >> 3)
		base := uint64(1) << (10 + exp)
		window = base + base/8*uint64(wd&7)
	}
	var fcs uint64
	switch len(p) {
	case 1:
		fcs = uint64(p[0])
	case 2:
		fcs = uint64(p[0]) | uint64(p[1])<<8 + 256
	case 4:
		fcs = uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24
	case 8:
		for i := 7; i >= 0; i-- {
			fcs = fcs<<8 | uint64(p[i])
		}
	}
	if fcs != uint64(w.want) {
		return bad("the frame declares %d bytes, the tensor has %d", fcs, w.want)
	}
	if single {
		window = fcs
	}
	if window > MaxWindow {
		return bad("window of %d bytes over %d", window, MaxWindow)
	}
	w.window = int64(window)
	// A frame never refers further back than its content, so the window a
	// decoder needs is at most the content size (at least the 1 KiB
	// minimum of RFC 8878): a 5000-byte frame naming a 128 MiB window must
	// not make a reader reserve 128 MiB.
	w.eff = min(w.window, max(w.want, minWindow))
	w.bms = min(w.eff, maxBlock)
	return nil
}

// decoderHeader is the frame header to give a streaming decoder: the
// original, with the window descriptor lowered to the smallest one that
// covers the effective window when the frame names a larger one.
func (w *walker) decoderHeader() []byte {
	h := append([]byte(nil), w.hdr[:w.hneed]...)
	if h[4]&0x20 != 0 || w.eff == w.window {
		return h
	}
	for exp := uint64(0); exp < 32; exp++ {
		base := uint64(1) << (10 + exp)
		for m := uint64(0); m < 8; m++ {
			if base+base/8*m >= uint64(w.eff) {
				h[5] = byte(exp<<3 | m)
				return h
			}
		}
	}
	return h
}

// block handles the block header in w.bh (RFC 8878 section 3.1.1.2).
func (w *walker) block() error {
	h := uint32(w.bh[0]) | uint32(w.bh[1])<<8 | uint32(w.bh[2])<<16
	w.lastSet = h&1 != 0
	size := int64(h >> 3)
	w.blocks++
	if size > w.bms {
		return bad("block %d of %d bytes over the block maximum of %d", w.blocks, size, w.bms)
	}
	switch (h >> 1) & 3 {
	case 0: // raw
		w.lo += size
		w.hi += size
		w.skip = size
	case 1: // RLE: one byte, repeated size times
		w.lo += size
		w.hi += size
		w.skip = 1
	case 2: // compressed: size stored bytes, at most bms produced
		if size < 2 { // a literals header and a sequences header
			return bad("block %d: compressed block of %d bytes", w.blocks, size)
		}
		w.hi += w.bms
		w.skip = size
	default:
		return bad("block %d of reserved type", w.blocks)
	}
	if w.lo > w.want {
		return bad("the blocks produce more than the declared %d bytes", w.want)
	}
	w.state = stBody
	if w.skip == 0 {
		w.afterBody()
	}
	return nil
}

func (w *walker) afterBody() {
	switch {
	case w.state == stChecksum:
		w.state = stDone
	case !w.lastSet:
		w.state = stBlockHeader
	case w.sum:
		w.state, w.skip = stChecksum, 4
	default:
		w.state = stDone
	}
}

// close reports whether the bytes written were one whole frame whose blocks
// can produce the declared size.
func (w *walker) close() error {
	switch w.state {
	case stHeader:
		return bad("frame header truncated")
	case stBlockHeader:
		if w.bhn == 0 && w.blocks > 0 {
			return bad("the frame has no last block")
		}
		return bad("frame truncated")
	case stBody:
		return bad("frame truncated")
	case stChecksum:
		return bad("content checksum truncated")
	}
	if w.hi < w.want {
		return bad("the blocks can produce at most %d bytes, the frame declares %d", w.hi, w.want)
	}
	return nil
}

// Check walks the frame in src: its header and every block header. It
// enforces every structural rule of R27 and the expansion bound, and
// allocates nothing in proportion to want.
func Check(src []byte, want int64, lim Limits) error {
	w, err := newWalker(want, lim)
	if err != nil {
		return err
	}
	if err := w.write(src); err != nil {
		return err
	}
	return w.close()
}
