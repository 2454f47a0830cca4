package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/safeweights/safeweights/format"
)

// Magic starts every .npy file.
const Magic = "\x93NUMPY"

// ErrDType is returned for an element type with no .npy descr.
var ErrDType = errors.New("npy: no numpy dtype for this element type")

// ErrShape is returned for a shape that is negative, overflows, or does not
// match the data's length.
var ErrShape = errors.New("npy: shape does not match the data")

// growthAxisMaxDigits is numpy's GROWTH_AXIS_MAX_DIGITS: numpy leaves room
// in the header to rewrite the first dimension with up to this many digits.
const growthAxisMaxDigits = 21

// arrayAlign is numpy's ARRAY_ALIGN: data starts at a multiple of 64 bytes.
const arrayAlign = 64

var descrs = [...]struct {
	descr string
	exact bool
}{
	format.F64: {"<f8", true}, format.F32: {"<f4", true}, format.F16: {"<f2", true},
	format.BF16:   {"<u2", false},
	format.F8E4M3: {"|u1", false}, format.F8E5M2: {"|u1", false},
	format.I64: {"<i8", true}, format.I32: {"<i4", true}, format.I16: {"<i2", true}, format.I8: {"|i1", true},
	format.U64: {"<u8", true}, format.U32: {"<u4", true}, format.U16: {"<u2", true}, format.U8: {"|u1", true},
	format.Bool: {"|b1", true}, format.C64: {"<c8", true}, format.C128: {"<c16", true},
}

// Descr returns the numpy dtype descr for dt. exact is false when NumPy has
// no such type and the elements are written as raw unsigned integers of
// the same width (BF16, F8_E4M3, F8_E5M2).
func Descr(dt format.DType) (descr string, exact bool, err error) {
	if !dt.Valid() || int(dt) >= len(descrs) || descrs[dt].descr == "" {
		return "", false, fmt.Errorf("%w: %v", ErrDType, dt)
	}
	return descrs[dt].descr, descrs[dt].exact, nil
}

// Header returns the .npy header (magic, version, length, dict and padding)
// for a C-order array of type dt and the given shape.
func Header(dt format.DType, shape []int64) ([]byte, error) {
	descr, _, err := Descr(dt)
	if err != nil {
		return nil, err
	}
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative dimension %d", ErrShape, d)
		}
	}
	dict := make([]byte, 0, 64+len(shape)*8)
	dict = append(dict, "{'descr': '"...)
	dict = append(dict, descr...)
	dict = append(dict, "', 'fortran_order': False, 'shape': ("...)
	for i, d := range shape {
		if i > 0 {
			dict = append(dict, ", "...)
		}
		dict = strconv.AppendInt(dict, d, 10)
	}
	if len(shape) == 1 {
		dict = append(dict, ',') // Python's one-element tuple: (3,)
	}
	dict = append(dict, "), }"...)
	if len(shape) > 0 {
		if n := growthAxisMaxDigits - len(strconv.FormatInt(shape[0], 10)); n > 0 {
			for range n {
				dict = append(dict, ' ')
			}
		}
	}
	// Version 1.0 has a 2-byte header length, 2.0 a 4-byte one.
	for _, v := range []struct {
		major  byte
		lenLen int
		max    uint64
	}{{1, 2, math.MaxUint16}, {2, 4, math.MaxUint32}} {
		prefix := len(Magic) + 2 + v.lenLen
		hlen := len(dict) + 1 // the final newline
		pad := arrayAlign - (prefix+hlen)%arrayAlign
		total := uint64(hlen + pad)
		if total > v.max {
			continue
		}
		out := make([]byte, 0, prefix+hlen+pad)
		out = append(out, Magic...)
		out = append(out, v.major, 0)
		if v.lenLen == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(total))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(total))
		}
		out = append(out, dict...)
		for range pad {
			out = append(out, ' ')
		}
		return append(out, '\n'), nil
	}
	return nil, fmt.Errorf("%w: header too long", ErrShape)
}

// byteLength is the number of bytes of an array of dt and shape.
func byteLength(dt format.DType, shape []int64) (int64, error) {
	if _, _, err := Descr(dt); err != nil {
		return 0, err
	}
	n := uint64(dt.Size())
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d", ErrShape, d)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%w: size overflows", ErrShape)
		}
		n = lo
	}
	return int64(n), nil
}

// Write writes data, the C-order little-endian bytes of an array of type dt
// and the given shape, to w as a .npy file.
func Write(w io.Writer, dt format.DType, shape []int64, data []byte) error {
	n, err := byteLength(dt, shape)
	if err != nil {
		return err
	}
	if int64(len(data)) != n {
		return fmt.Errorf("%w: %d bytes, shape %v of %v needs %d", ErrShape, len(data), shape, dt, n)
	}
	return WriteFrom(w, dt, shape, bytesReader(data))
}

// WriteFrom is Write reading the array's bytes from r: exactly the array's
// byte length is copied, and a short r is an error.
func WriteFrom(w io.Writer, dt format.DType, shape []int64, r io.Reader) error {
	n, err := byteLength(dt, shape)
	if err != nil {
		return err
	}
	hdr, err := Header(dt, shape)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	copied, err := io.CopyN(w, r, n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: data ended after %d of %d bytes", ErrShape, copied, n)
		}
		return err
	}
	return nil
}

type sliceReader struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// WriteTo lets io.CopyN hand the whole slice to the writer in one call.
func (r *sliceReader) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.b)
	r.b = r.b[n:]
	return int64(n), err
}

// WriteFile writes a .npy file at path through a temporary file in the
// same directory, synced and renamed into place: a failed write leaves
// nothing at path.
func WriteFile(path string, dt format.DType, shape []int64, data []byte) (err error) {
	shape = slices.Clone(shape)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = Write(bw, dt, shape, data); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}
