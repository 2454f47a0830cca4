package format

import "strings"

// DType is the element type of a tensor. The numbering is part of the file
// format (spec section 4.2) and never changes.
type DType uint8

// The element types of format version 1.0.
const (
	F64     DType = 1
	F32     DType = 2
	F16     DType = 3
	BF16    DType = 4
	F8E4M3  DType = 5
	F8E5M2  DType = 6
	I64     DType = 7
	I32     DType = 8
	I16     DType = 9
	I8      DType = 10
	U64     DType = 11
	U32     DType = 12
	U16     DType = 13
	U8      DType = 14
	Bool    DType = 15
	C64     DType = 16
	C128    DType = 17
	maxType       = C128
)

var dtypeInfo = [...]struct {
	name string
	size int
}{
	F64: {"F64", 8}, F32: {"F32", 4}, F16: {"F16", 2}, BF16: {"BF16", 2},
	F8E4M3: {"F8_E4M3", 1}, F8E5M2: {"F8_E5M2", 1},
	I64: {"I64", 8}, I32: {"I32", 4}, I16: {"I16", 2}, I8: {"I8", 1},
	U64: {"U64", 8}, U32: {"U32", 4}, U16: {"U16", 2}, U8: {"U8", 1},
	Bool: {"BOOL", 1}, C64: {"C64", 8}, C128: {"C128", 16},
}

// DTypes lists every valid element type in numeric order.
func DTypes() []DType {
	out := make([]DType, 0, maxType)
	for d := F64; d <= maxType; d++ {
		out = append(out, d)
	}
	return out
}

// Valid reports whether d is one of the element types of the format.
func (d DType) Valid() bool { return d >= F64 && d <= maxType }

// Size is the size of one element in bytes, or 0 for an invalid type.
func (d DType) Size() int {
	if !d.Valid() {
		return 0
	}
	return dtypeInfo[d].size
}

// String returns the spec's name of the type, such as "F32" or "F8_E4M3".
// The names match safetensors' dtype codes where safetensors has the type.
func (d DType) String() string {
	if !d.Valid() {
		return "DType(" + itoa(uint64(d)) + ")"
	}
	return dtypeInfo[d].name
}

// ParseDType returns the type named s (case-insensitive), as printed by String.
func ParseDType(s string) (DType, bool) {
	for d := F64; d <= maxType; d++ {
		if strings.EqualFold(dtypeInfo[d].name, s) {
			return d, true
		}
	}
	return 0, false
}

// Compression says how a tensor's bytes are stored (spec section 4.5).
type Compression uint8

const (
	// None stores the canonical bytes as they are; only such tensors can be
	// viewed without a copy.
	None Compression = 0
	// Zstd stores one zstd frame that decodes to the canonical bytes.
	Zstd Compression = 1
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	}
	return "Compression(" + itoa(uint64(c)) + ")"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
