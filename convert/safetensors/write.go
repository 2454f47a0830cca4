package safetensors

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// alignRank orders dtypes as the Rust writer does (its Dtype enum, in
// increasing alignment): tensors are written in decreasing rank, then by
// name, so every tensor's data is aligned to its element size when the data
// region is (the header is padded to a multiple of 8 bytes).
var alignRank = map[format.DType]int{
	format.Bool: 0, format.U8: 4, format.I8: 5, format.F8E5M2: 6, format.F8E4M3: 7,
	format.I16: 9, format.U16: 10, format.F16: 11, format.BF16: 12,
	format.I32: 13, format.U32: 14, format.F32: 15, format.C64: 16,
	format.F64: 17, format.I64: 18, format.U64: 19,
}

// item is one tensor to write: its entry and a source of its bytes.
type item struct {
	name  string
	dtype format.DType
	shape []int64
	size  int64
	// write writes exactly size bytes.
	write func(w io.Writer) error
}

// Write writes tensors and metadata to w as a safetensors file laid out as
// the Python and Rust writers lay it out: tensors sorted by decreasing
// dtype alignment, then by name; compact JSON with __metadata__ first (its
// keys sorted, omitted when empty); the header padded with spaces to a
// multiple of 8 bytes. It refuses anything the reader would refuse.
func Write(w io.Writer, tensors []convert.Tensor, metadata map[string]string) error {
	items := make([]item, len(tensors))
	for i, t := range tensors {
		data := t.Data
		items[i] = item{name: t.Name, dtype: t.DType, shape: t.Shape, size: int64(len(data)),
			write: func(w io.Writer) error {
				_, err := w.Write(data)
				return err
			}}
	}
	return write(w, items, metadata)
}

func write(w io.Writer, items []item, metadata map[string]string) error {
	hdr, err := layout(items, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	for _, it := range items {
		cw := &countWriter{w: bw}
		if err := it.write(cw); err != nil {
			return err
		}
		if cw.n != it.size {
			return errorf(ErrExport, -1, it.name, "wrote "+strconv.FormatInt(cw.n, 10)+
				" bytes, want "+strconv.FormatInt(it.size, 10))
		}
	}
	return bw.Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// layout sorts items into file order and returns the 8-byte length and the
// padded JSON header.
func layout(items []item, metadata map[string]string) ([]byte, error) {
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		if err := checkEntry(it.name, it.dtype, it.shape, it.size); err != nil {
			return nil, err
		}
		if _, dup := seen[it.name]; dup {
			return nil, errorf(ErrExport, -1, it.name, "duplicate name")
		}
		seen[it.name] = struct{}{}
	}
	if err := checkMetadata(metadata); err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := alignRank[b.dtype] - alignRank[a.dtype]; c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})

	buf := make([]byte, 8, 64+len(items)*96)
	buf = append(buf, '{')
	buf = appendMetadata(buf, metadata, len(items) > 0)
	var offset int64
	for i, it := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		if offset > math.MaxInt64-it.size {
			return nil, errorf(ErrExport, -1, it.name, "file larger than 2^63 bytes")
		}
		buf = appendEntry(buf, it.name, it.dtype, it.shape, offset, offset+it.size)
		offset += it.size
	}
	buf = append(buf, '}')
	for (len(buf)-8)%8 != 0 {
		buf = append(buf, ' ')
	}
	binary.LittleEndian.PutUint64(buf[:8], uint64(len(buf)-8))
	return buf, nil
}

// checkEntry refuses a tensor safetensors cannot hold or that the reader
// would refuse: a dtype it lacks, a reserved or invalid name, a shape whose
// element count overflows or does not match the byte length.
func checkEntry(name string, dt format.DType, shape []int64, size int64) error {
	if _, ok := alignRank[dt]; !ok {
		return errorf(ErrExport, -1, name, "safetensors has no dtype "+dt.String())
	}
	if name == "" || name == "__metadata__" || strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
		return errorf(ErrExport, -1, name, "name not allowed in safetensors")
	}
	numel := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return errorf(ErrExport, -1, name, "negative dimension")
		}
		hi, lo := bits.Mul64(numel, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return errorf(ErrExport, -1, name, "element count overflows")
		}
		numel = lo
	}
	if hi, n := bits.Mul64(numel, uint64(dt.Size())); hi != 0 || n != uint64(size) {
		return errorf(ErrExport, -1, name, "byte length "+strconv.FormatInt(size, 10)+
			" does not match shape and dtype")
	}
	return nil
}

func checkMetadata(metadata map[string]string) error {
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return errorf(ErrExport, -1, "", "metadata that is not utf-8")
		}
	}
	return nil
}

// appendMetadata appends the __metadata__ entry, its keys sorted, and a
// comma when tensors follow; nothing when metadata is empty.
func appendMetadata(buf []byte, metadata map[string]string, more bool) []byte {
	if len(metadata) == 0 {
		return buf
	}
	buf = appendString(buf, "__metadata__")
	buf = append(buf, ':', '{')
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendString(buf, metadata[k])
	}
	buf = append(buf, '}')
	if more {
		buf = append(buf, ',')
	}
	return buf
}

// appendEntry appends one tensor's entry: "name":{"dtype":...,"shape":[...],"data_offsets":[off,end]}.
func appendEntry(buf []byte, name string, dt format.DType, shape []int64, off, end int64) []byte {
	buf = appendString(buf, name)
	buf = append(buf, `:{"dtype":`...)
	buf = appendString(buf, dt.String())
	buf = append(buf, `,"shape":[`...)
	for j, d := range shape {
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, d, 10)
	}
	buf = append(buf, `],"data_offsets":[`...)
	buf = strconv.AppendInt(buf, off, 10)
	buf = append(buf, ',')
	buf = strconv.AppendInt(buf, end, 10)
	return append(buf, ']', '}')
}

// appendString appends s as a JSON string escaped as serde_json escapes it:
// '"', '\\' and control characters only, short forms where JSON has them,
// \u00xx (lowercase hex) otherwise. Nothing else is escaped.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"':
			buf = append(buf, '\\', '"')
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\b':
			buf = append(buf, '\\', 'b')
		case '\f':
			buf = append(buf, '\\', 'f')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
