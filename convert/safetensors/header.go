package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/safeweights/safeweights/format"
)

// DefaultMaxHeaderSize is the default bound on the JSON header: the limit of
// the Rust safetensors loader (100,000,000 bytes).
const DefaultMaxHeaderSize = 100_000_000

// Limits bound what the reader accepts (spec/convert-safetensors.md
// section 2). The zero value of a field means its default; a negative value
// is an error.
type Limits struct {
	// MaxHeaderSize bounds the JSON header in bytes. Default
	// DefaultMaxHeaderSize, as in the Rust loader.
	MaxHeaderSize int64
	// MaxTensors bounds the number of tensors. Default
	// format.DefaultMaxTensors.
	MaxTensors int
	// MaxRank bounds the number of dimensions of a tensor. Default
	// format.DefaultMaxRank, at most format.CeilRank: a .swt reader with
	// default limits must be able to open what this package writes.
	MaxRank int
	// MaxNameLength bounds a tensor name in bytes. Default
	// format.DefaultMaxNameLength.
	MaxNameLength int
	// MaxShards bounds the shards of a sharded checkpoint. Default 4096.
	MaxShards int
}

// DefaultMaxShards is the default of Limits.MaxShards.
const DefaultMaxShards = 4096

func (o Limits) withDefaults() (Limits, error) {
	switch {
	case o.MaxHeaderSize < 0:
		return o, fmt.Errorf("safetensors: MaxHeaderSize %d is negative", o.MaxHeaderSize)
	case o.MaxTensors < 0:
		return o, fmt.Errorf("safetensors: MaxTensors %d is negative", o.MaxTensors)
	case o.MaxRank < 0 || o.MaxRank > format.CeilRank:
		return o, fmt.Errorf("safetensors: MaxRank %d out of range [1, %d]", o.MaxRank, format.CeilRank)
	case o.MaxNameLength < 0:
		return o, fmt.Errorf("safetensors: MaxNameLength %d is negative", o.MaxNameLength)
	case o.MaxShards < 0:
		return o, fmt.Errorf("safetensors: MaxShards %d is negative", o.MaxShards)
	}
	if o.MaxHeaderSize == 0 {
		o.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if o.MaxTensors == 0 {
		o.MaxTensors = format.DefaultMaxTensors
	}
	if o.MaxRank == 0 {
		o.MaxRank = format.DefaultMaxRank
	}
	if o.MaxNameLength == 0 {
		o.MaxNameLength = format.DefaultMaxNameLength
	}
	if o.MaxShards == 0 {
		o.MaxShards = DefaultMaxShards
	}
	return o, nil
}

// dtypes maps safetensors dtype codes to the format's types. The codes are
// case-sensitive, as in the Rust loader.
var dtypes = map[string]format.DType{
	"F64": format.F64, "F32": format.F32, "F16": format.F16, "BF16": format.BF16,
	"F8_E4M3": format.F8E4M3, "F8_E5M2": format.F8E5M2,
	"I64": format.I64, "I32": format.I32, "I16": format.I16, "I8": format.I8,
	"U64": format.U64, "U32": format.U32, "U16": format.U16, "U8": format.U8,
	"BOOL": format.Bool, "C64": format.C64,
}

// unsupported lists the safetensors dtypes with no safeweights type: the
// OCP microscaling formats, which are not whole bytes per element or need a
// scale to mean anything.
var unsupported = map[string]bool{"F8_E8M0": true, "F4": true, "F6_E2M3": true, "F6_E3M2": true}

// DType returns the format type of a safetensors dtype code.
func DType(code string) (format.DType, bool) {
	d, ok := dtypes[code]
	return d, ok
}

// Header is the parsed, validated header of a safetensors file: what a
// caller can inspect before touching any tensor bytes.
type Header struct {
	// Metadata is the __metadata__ object, nil when absent or null.
	Metadata map[string]string
	// Tensors in the order of their data in the file (by data offset; empty
	// tensors at the same offset by name).
	Tensors []TensorInfo
	// DataOffset is where tensor data starts: 8 plus the header length.
	DataOffset int64
	// Size is the size of the file.
	Size int64
}

// TensorInfo is one entry of the header.
type TensorInfo struct {
	Name  string
	DType format.DType
	// Shape is row-major, outermost first, as in the file.
	Shape []int64
	// Begin and End are the data_offsets: relative to Header.DataOffset.
	Begin, End int64
}

// Len is the tensor's byte length.
func (t TensorInfo) Len() int64 { return t.End - t.Begin }

// ReadHeader reads and validates the header of the safetensors file of the
// given size that r reads, without reading tensor data. It allocates no
// more than the header's length, which is checked against size and
// lim.MaxHeaderSize first.
func ReadHeader(r io.ReaderAt, size int64, lim Limits) (*Header, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	var prefix [8]byte
	if size < 8 {
		return nil, errorf(ErrHeaderLength, 0, "", "file shorter than 8 bytes")
	}
	if err := readFull(r, prefix[:], 0); err != nil {
		return nil, err
	}
	n, err := headerLength(prefix[:], size, lim)
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, n)
	if err := readFull(r, hdr, 8); err != nil {
		return nil, err
	}
	return parseHeader(hdr, size, lim)
}

// readFull reads len(p) bytes at off. The io.ReaderAt contract lets a
// reader return io.EOF with a full read at the end of its input.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	switch {
	case n == len(p):
		return nil
	case err == nil || errors.Is(err, io.EOF):
		return errorf(ErrHeaderLength, off+int64(n), "", "file shorter than its size")
	}
	return fmt.Errorf("safetensors: reading header: %w", err)
}

// ParseHeader validates the header of a whole safetensors file held in data.
func ParseHeader(data []byte, lim Limits) (*Header, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(data) < 8 {
		return nil, errorf(ErrHeaderLength, 0, "", "file shorter than 8 bytes")
	}
	n, err := headerLength(data[:8], int64(len(data)), lim)
	if err != nil {
		return nil, err
	}
	return parseHeader(data[8:8+n], int64(len(data)), lim)
}

// headerLength reads the 8-byte little-endian header length and checks it
// against the limit and the file size (S2).
func headerLength(prefix []byte, size int64, lim Limits) (int64, error) {
	n := binary.LittleEndian.Uint64(prefix)
	if n > uint64(lim.MaxHeaderSize) {
		return 0, errorf(ErrHeaderTooLarge, 0, "",
			"header length "+strconv.FormatUint(n, 10)+" over the limit of "+strconv.FormatInt(lim.MaxHeaderSize, 10))
	}
	// n <= MaxHeaderSize <= MaxInt64, and size >= 8.
	if int64(n) > size-8 {
		return 0, errorf(ErrHeaderLength, 0, "",
			"header length "+strconv.FormatUint(n, 10)+" but only "+strconv.FormatInt(size-8, 10)+" bytes follow")
	}
	return int64(n), nil
}

// parseHeader parses the JSON header hdr (the bytes after the length) of a
// file of the given size, and validates the layout of the data (S3-S9).
func parseHeader(hdr []byte, size int64, lim Limits) (*Header, error) {
	// S3: UTF-8, starting with '{'. The Rust loader checks UTF-8 over the
	// whole header before parsing.
	if !utf8.Valid(hdr) {
		return nil, errorf(ErrHeaderJSON, 8, "", "header is not utf-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, errorf(ErrHeaderStart, 8, "", "")
	}
	h := &Header{DataOffset: 8 + int64(len(hdr)), Size: size}
	s := &scanner{b: hdr, base: 8}
	empty, err := s.open('{', '}')
	if err != nil {
		return nil, err
	}
	seen := make(map[string]struct{})
	sawMeta := false
	for !empty {
		keyOff := s.off()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		if key == "__metadata__" {
			if sawMeta {
				return nil, errorf(ErrDuplicateName, keyOff, "", "__metadata__ appears twice")
			}
			sawMeta = true
			if h.Metadata, err = parseMetadata(s); err != nil {
				return nil, err
			}
		} else {
			if err := checkName(key, keyOff, lim); err != nil {
				return nil, err
			}
			if _, dup := seen[key]; dup {
				return nil, errorf(ErrDuplicateName, keyOff, key, "")
			}
			if len(h.Tensors) >= lim.MaxTensors {
				return nil, &Error{Offset: keyOff, Reason: "more than " + strconv.Itoa(lim.MaxTensors) + " tensors", Err: ErrOverLimit}
			}
			seen[key] = struct{}{}
			t, err := parseEntry(s, key, lim)
			if err != nil {
				return nil, err
			}
			h.Tensors = append(h.Tensors, t)
		}
		more, err := s.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	// Trailing whitespace pads the header to a multiple of 8 bytes.
	if err := s.end(); err != nil {
		return nil, err
	}
	if err := validateLayout(h); err != nil {
		return nil, err
	}
	return h, nil
}

func checkName(name string, off int64, lim Limits) error {
	switch {
	case name == "":
		return errorf(ErrName, off, "", "empty name")
	case strings.IndexByte(name, 0) >= 0:
		return errorf(ErrName, off, name, "name holds NUL")
	case len(name) > lim.MaxNameLength:
		return &Error{Offset: off, Reason: "tensor name of " + strconv.Itoa(len(name)) +
			" bytes, over the limit of " + strconv.Itoa(lim.MaxNameLength), Err: ErrOverLimit}
	}
	return nil
}

// parseMetadata reads the value of __metadata__: null or an object of
// strings (S5).
func parseMetadata(s *scanner) (map[string]string, error) {
	switch s.peek() {
	case 'n':
		return nil, s.literal("null")
	case '{':
	default:
		return nil, s.schema("", "__metadata__ is not an object of strings")
	}
	empty, err := s.open('{', '}')
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for !empty {
		keyOff := s.off()
		k, err := s.str()
		if err != nil {
			return nil, err
		}
		if err := s.expect(':'); err != nil {
			return nil, err
		}
		if s.peek() != '"' {
			return nil, s.schema("", "__metadata__ value of "+strconv.Quote(k)+" is not a string")
		}
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errorf(ErrDuplicateName, keyOff, "", "metadata key "+strconv.Quote(k)+" appears twice")
		}
		m[k] = v
		more, err := s.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	return m, nil
}

// parseEntry reads one tensor entry {dtype, shape, data_offsets} (S4, S7).
// Unknown fields are refused: the Rust loader ignores them, but a field it
// ignores is information a conversion would drop silently.
func parseEntry(s *scanner, name string, lim Limits) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	if s.peek() != '{' {
		return t, s.schema(name, "tensor entry is not an object")
	}
	empty, err := s.open('{', '}')
	if err != nil {
		return t, err
	}
	var haveDType, haveShape, haveOffsets bool
	for !empty {
		keyOff := s.off()
		k, err := s.str()
		if err != nil {
			return t, err
		}
		if err := s.expect(':'); err != nil {
			return t, err
		}
		switch k {
		case "dtype":
			if haveDType {
				return t, errorf(ErrDuplicateName, keyOff, name, "field dtype appears twice")
			}
			haveDType = true
			if s.peek() != '"' {
				return t, s.schema(name, "dtype is not a string")
			}
			valOff := s.off()
			code, err := s.str()
			if err != nil {
				return t, err
			}
			d, ok := dtypes[code]
			switch {
			case ok:
				t.DType = d
			case unsupported[code]:
				return t, errorf(ErrUnsupportedDType, valOff, name, "dtype "+strconv.Quote(code))
			default:
				return t, errorf(ErrDType, valOff, name, "dtype "+strconv.Quote(code))
			}
		case "shape":
			if haveShape {
				return t, errorf(ErrDuplicateName, keyOff, name, "field shape appears twice")
			}
			haveShape = true
			if s.peek() != '[' {
				return t, s.schema(name, "shape is not an array")
			}
			empty, err := s.open('[', ']')
			if err != nil {
				return t, err
			}
			t.Shape = []int64{}
			for !empty {
				if len(t.Shape) >= lim.MaxRank {
					return t, &Error{Offset: s.off(), Tensor: name,
						Reason: "rank over the limit of " + strconv.Itoa(lim.MaxRank), Err: ErrOverLimit}
				}
				d, err := s.uint(name, "dimension")
				if err != nil {
					return t, err
				}
				t.Shape = append(t.Shape, d)
				more, err := s.next(']')
				if err != nil {
					return t, err
				}
				if !more {
					break
				}
			}
		case "data_offsets":
			if haveOffsets {
				return t, errorf(ErrDuplicateName, keyOff, name, "field data_offsets appears twice")
			}
			haveOffsets = true
			if s.peek() != '[' {
				return t, s.schema(name, "data_offsets is not an array")
			}
			if err := s.expect('['); err != nil {
				return t, err
			}
			if s.peek() == ']' {
				return t, s.schema(name, "data_offsets is not [begin, end]")
			}
			if t.Begin, err = s.uint(name, "data offset"); err != nil {
				return t, err
			}
			if s.peek() != ',' {
				return t, s.schema(name, "data_offsets is not [begin, end]")
			}
			s.pos++
			if t.End, err = s.uint(name, "data offset"); err != nil {
				return t, err
			}
			if s.peek() != ']' {
				return t, s.schema(name, "data_offsets is not [begin, end]")
			}
			s.pos++
		default:
			return t, errorf(ErrHeaderSchema, keyOff, name, "unknown field "+strconv.Quote(k))
		}
		more, err := s.next('}')
		if err != nil {
			return t, err
		}
		if !more {
			break
		}
	}
	if !haveDType || !haveShape || !haveOffsets {
		return t, s.schema(name, "tensor entry lacks dtype, shape or data_offsets")
	}
	return t, nil
}

// validateLayout checks sizes and the layout of the data region (S8, S9):
// every tensor's byte length matches its shape and dtype, and the tensors,
// sorted by offset, tile the data region from its first byte to the end of
// the file with no overlap, hole or trailing byte.
func validateLayout(h *Header) error {
	for _, t := range h.Tensors {
		numel := uint64(1)
		for _, d := range t.Shape {
			hi, lo := bits.Mul64(numel, uint64(d))
			if hi != 0 || lo > math.MaxInt64 {
				return errorf(ErrOverflow, -1, t.Name, "element count overflows")
			}
			numel = lo
		}
		hi, nbytes := bits.Mul64(numel, uint64(t.DType.Size()))
		if hi != 0 || nbytes > math.MaxInt64 {
			return errorf(ErrOverflow, -1, t.Name, "byte length overflows")
		}
		if t.Begin > t.End {
			return errorf(ErrOffsets, -1, t.Name, "begin "+strconv.FormatInt(t.Begin, 10)+
				" after end "+strconv.FormatInt(t.End, 10))
		}
		if uint64(t.End-t.Begin) != nbytes {
			return errorf(ErrSize, -1, t.Name, "data_offsets span "+strconv.FormatInt(t.End-t.Begin, 10)+
				" bytes, shape and dtype need "+strconv.FormatUint(nbytes, 10))
		}
	}
	slices.SortStableFunc(h.Tensors, func(a, b TensorInfo) int {
		if c := cmpInt(a.Begin, b.Begin); c != 0 {
			return c
		}
		if c := cmpInt(a.End, b.End); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	dataLen := h.Size - h.DataOffset
	var cursor int64
	for _, t := range h.Tensors {
		switch {
		case t.Begin < cursor:
			return errorf(ErrOverlap, h.DataOffset+t.Begin, t.Name,
				"starts at "+strconv.FormatInt(t.Begin, 10)+", inside the previous tensor, which ends at "+strconv.FormatInt(cursor, 10))
		case t.Begin > cursor:
			return errorf(ErrHole, h.DataOffset+cursor, t.Name,
				"bytes "+strconv.FormatInt(cursor, 10)+" to "+strconv.FormatInt(t.Begin, 10)+" belong to no tensor")
		case t.End > dataLen:
			return errorf(ErrOffsets, -1, t.Name, "ends at "+strconv.FormatInt(t.End, 10)+
				", past the data region of "+strconv.FormatInt(dataLen, 10)+" bytes")
		}
		cursor = t.End
	}
	if cursor != dataLen {
		return errorf(ErrTrailing, h.DataOffset+cursor, "",
			strconv.FormatInt(dataLen-cursor, 10)+" bytes after the last tensor")
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Detect reports whether the file of the given size that r reads looks
// like a safetensors file, from its first bytes only: a header length that
// fits in the file and under DefaultMaxHeaderSize, and a header that starts
// with '{' followed by '"' or '}'. It is meant for choosing a reader by
// content; Read and ReadHeader still check everything.
func Detect(r io.ReaderAt, size int64) bool {
	if size < 10 {
		return false
	}
	var b [10]byte
	if err := readFull(r, b[:], 0); err != nil {
		return false
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n < 2 || n > DefaultMaxHeaderSize || int64(n) > size-8 {
		return false
	}
	return b[8] == '{' && (b[9] == '"' || b[9] == '}')
}
