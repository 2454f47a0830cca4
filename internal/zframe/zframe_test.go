package zframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var lim = Limits{MaxContent: 4 << 30}

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / 64 % 7)
	}
	return b
}

func encode(t testing.TB, d []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(true)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(d, nil)
}

// frame assembles a frame by hand: a non-single-segment header with window
// descriptor wd, an 8-byte content size, then blocks.
func frame(fhdExtra byte, wd byte, fcs uint64, blocks ...[]byte) []byte {
	f := binary.LittleEndian.AppendUint32(nil, magic)
	f = append(f, 0xC0|fhdExtra, wd)
	f = binary.LittleEndian.AppendUint64(f, fcs)
	for _, b := range blocks {
		f = append(f, b...)
	}
	return f
}

func blockHeader(last bool, typ int, size int) []byte {
	h := uint32(size)<<3 | uint32(typ)<<1
	if last {
		h |= 1
	}
	return []byte{byte(h), byte(h >> 8), byte(h >> 16)}
}

func raw(last bool, p []byte) []byte { return append(blockHeader(last, 0, len(p)), p...) }
func rle(last bool, c byte, n int) []byte {
	return append(blockHeader(last, 1, n), c)
}

// all runs Check, Decode and a Verifier fed in small pieces, and checks that
// they agree.
func all(t *testing.T, src []byte, want int64) error {
	t.Helper()
	cerr := Check(src, want, lim)
	var derr error
	if want <= 1<<24 {
		dst := make([]byte, want)
		derr = Decode(dst, src, lim)
	} else {
		derr = cerr
	}
	v := NewVerifier(want, lim)
	var verr error
	for p := src; len(p) > 0 && verr == nil; {
		n := min(len(p), 7)
		_, verr = v.Write(p[:n])
		p = p[n:]
	}
	if verr == nil {
		verr = v.Close()
	}
	if (derr == nil) != (verr == nil) {
		t.Fatalf("Decode: %v, Verifier: %v", derr, verr)
	}
	if cerr != nil && derr == nil {
		t.Fatalf("Check: %v, Decode accepted", cerr)
	}
	for _, err := range []error{cerr, derr, verr} {
		var ze *Error
		if err != nil && !errors.As(err, &ze) {
			t.Fatalf("error %v is not a *Error", err)
		}
	}
	return derr
}

func ok(t *testing.T, src []byte, want int64) {
	t.Helper()
	if err := all(t, src, want); err != nil {
		t.Fatalf("valid frame refused: %v", err)
	}
}

func refused(t *testing.T, src []byte, want int64, limit bool) {
	t.Helper()
	err := all(t, src, want)
	var ze *Error
	if !errors.As(err, &ze) {
		t.Fatalf("invalid frame accepted (%v)", err)
	}
	if ze.Limit != limit {
		t.Fatalf("Limit = %v, want %v (%v)", ze.Limit, limit, err)
	}
}

func TestValid(t *testing.T) {
	for _, n := range []int{1, 255, 256, 1000, 5000, 70000, 300000} {
		d := data(n)
		ok(t, encode(t, d), int64(n))
		ok(t, encode(t, d, zstd.WithEncoderCRC(false)), int64(n))
		if n >= 256 { // klauspost declares no size below 256 bytes otherwise
			ok(t, encode(t, d, zstd.WithSingleSegment(false), zstd.WithWindowSize(1<<17)), int64(n))
		}
		dst := make([]byte, n)
		if err := Decode(dst, encode(t, d), lim); err != nil || !bytes.Equal(dst, d) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

// An 8 KiB window (not single-segment) holding 5000 bytes is valid RFC 8878.
func TestSmallWindow(t *testing.T) {
	d := data(5000)
	// exponent 3 -> 8 KiB window
	f := frame(0, 3<<3, 5000, raw(false, d[:4000]), raw(true, d[4000:]))
	ok(t, f, 5000)
	dst := make([]byte, 5000)
	if err := Decode(dst, f, lim); err != nil || !bytes.Equal(dst, d) {
		t.Fatal(err)
	}
}

func TestNonSingleSegment(t *testing.T) {
	d := data(3000)
	f := frame(0, 1<<3, 3000, rle(false, 7, 1000), raw(true, d[:2000]))
	ok(t, f, 3000)
	// A window of 1 KiB caps a block at 1 KiB.
	refused(t, frame(0, 0, 2000, raw(true, d[:2000])), 2000, false)
}

func TestExpansionBound(t *testing.T) {
	// 300 stored bytes declaring 2 GiB.
	f := frame(0, 10<<3, 2<<30, raw(true, data(280)))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	err := Check(f, 2<<30, lim)
	runtime.ReadMemStats(&ms1)
	var ze *Error
	if !errors.As(err, &ze) || ze.Limit {
		t.Fatalf("Check: %v", err)
	}
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 64<<10 {
		t.Fatalf("Check allocated %d bytes", a)
	}
	v := NewVerifier(2<<30, lim)
	if _, err := v.Write(f); err == nil {
		err = v.Close()
		if !errors.As(err, &ze) {
			t.Fatalf("Verifier: %v", err)
		}
	}
	// RLE blocks of 128 KiB produce what they declare.
	f = frame(0, 10<<3, 256<<10, rle(false, 1, 128<<10), rle(true, 2, 128<<10))
	ok(t, f, 256<<10)
	refused(t, frame(0, 10<<3, 256<<10+1, rle(false, 1, 128<<10), rle(true, 2, 128<<10)), 256<<10+1, false)
	// More raw bytes than declared.
	refused(t, frame(0, 10<<3, 10, raw(true, data(11))), 10, false)
}

func TestLimit(t *testing.T) {
	f := encode(t, data(1000))
	err := Check(f, 1000, Limits{MaxContent: 999})
	var ze *Error
	if !errors.As(err, &ze) || !ze.Limit {
		t.Fatalf("Check: %v", err)
	}
	v := NewVerifier(1000, Limits{MaxContent: 999})
	if _, err := v.Write(f); !errors.As(err, &ze) || !ze.Limit {
		t.Fatalf("Verifier: %v", err)
	}
}

func TestRefused(t *testing.T) {
	d := data(1000)
	f := encode(t, d, zstd.WithEncoderCRC(true))
	patch := func(f []byte, i int, fn func(byte) byte) []byte {
		g := bytes.Clone(f)
		g[i] = fn(g[i])
		return g
	}
	sum := patch(f, len(f)-1, func(b byte) byte { return b ^ 1 })
	refused(t, sum, 1000, false)
	refused(t, patch(f, 4, func(b byte) byte { return b | 0x08 }), 1000, false) // reserved bit
	refused(t, patch(f, 4, func(b byte) byte { return b | 0x01 }), 1000, false) // dictionary id flag
	skip := append(binary.LittleEndian.AppendUint32(nil, 0x184D2A50), 0, 0, 0, 0)
	refused(t, append(skip, f...), 1000, false)
	refused(t, append(bytes.Clone(f), skip...), 1000, false)
	refused(t, append(bytes.Clone(f), 0), 1000, false)
	refused(t, append(bytes.Clone(f), f...), 1000, false)
	refused(t, f[:len(f)-2], 1000, false)
	refused(t, f[:3], 1000, false)
	refused(t, nil, 1000, false)
	refused(t, f, 999, false)
	refused(t, f, 1001, false)
	// No last block.
	refused(t, frame(0, 10<<3, 1000, raw(false, d)), 1000, false)
	// Reserved block type.
	refused(t, frame(0, 10<<3, 1000, append(blockHeader(true, 3, 0), d...)), 1000, false)
	// No content size: FCS flag 0, not single-segment.
	g := binary.LittleEndian.AppendUint32(nil, magic)
	g = append(g, 0x00, 10<<3)
	g = append(g, raw(true, d)...)
	refused(t, g, 1000, false)
	// A window over MaxWindow.
	refused(t, frame(0, 18<<3, 1000, raw(true, d)), 1000, false)
}

// A frame that declares the right size but whose compressed block decodes to
// another length passes Check and fails decoding.
func TestDecodesToOtherLength(t *testing.T) {
	d := data(1000)
	f := encode(t, d, zstd.WithEncoderCRC(false))
	var h zstd.Header
	if err := h.Decode(f); err != nil || !h.SingleSegment || h.FrameContentSize != 1000 {
		t.Fatalf("unexpected frame: %+v %v", h, err)
	}
	// Single segment, 2-byte content size (value - 256) at f[5:7].
	g := bytes.Clone(f)
	binary.LittleEndian.PutUint16(g[5:], 1001-256)
	if err := Check(g, 1001, lim); err != nil {
		t.Fatalf("Check: %v", err)
	}
	refused(t, g, 1001, false)
	binary.LittleEndian.PutUint16(g[5:], 999-256)
	refused(t, g, 999, false)
}

func TestVerifierNoLeak(t *testing.T) {
	f := encode(t, data(100000))
	before := runtime.NumGoroutine()
	for range 20 {
		v := NewVerifier(100000, lim)
		v.Write(f[:len(f)/2])
		v.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		v.Close()
		v = NewVerifier(100000, lim)
		v.Write(f)
		v.Close()
	}
	runtime.GC()
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}

func FuzzZframe(f *testing.F) {
	f.Add(encode(f, data(1000)), int64(1000))
	f.Add(encode(f, data(5000), zstd.WithEncoderCRC(false)), int64(5000))
	f.Add(frame(0, 3<<3, 300, rle(false, 1, 100), raw(true, data(200))), int64(300))
	f.Fuzz(func(t *testing.T, src []byte, want int64) {
		if want < 0 || want > 1<<20 {
			want = int64(uint64(want) % (1 << 20))
		}
		all(t, src, want)
	})
}

// A frame naming a 128 MiB window for 5000 bytes is valid, and verifying it
// reserves memory for the content, not for the window.
func TestVerifierMemoryBoundedByContent(t *testing.T) {
	d := data(5000)
	f := frame(0, 17<<3, 5000, raw(false, d[:4000]), raw(true, d[4000:]))
	ok(t, f, 5000)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	v := NewVerifier(5000, lim)
	if _, err := v.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 4<<20 {
		t.Fatalf("Verifier allocated %d bytes for a 5000-byte frame", a)
	}
	// A compressed block larger than the content is refused.
	refused(t, frame(0, 17<<3, 1500, append(blockHeader(true, 2, 1600), make([]byte, 1600)...)), 1500, false)
}
