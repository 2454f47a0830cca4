package auto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// Format is a model file format that this package recognises.
type Format int

const (
	Unknown     Format = iota
	SWT                // safeweights (.swt)
	Safetensors        // Hugging Face safetensors
	BSON               // BSON.jl (Flux checkpoints saved with BSON.@save)
	JLD2               // JLD2.jl (HDF5 with a JLD2 user block)
)

// String returns the format's name as provenance records it.
func (f Format) String() string {
	switch f {
	case SWT:
		return "safeweights"
	case Safetensors:
		return "safetensors"
	case BSON:
		return "bson.jl"
	case JLD2:
		return "jld2"
	}
	return "unknown"
}

// ErrUnknownFormat: the content matches none of the supported formats.
var ErrUnknownFormat = errors.New("auto: not a safeweights, safetensors, BSON.jl or JLD2 file")

// PrefixSize is how much of a file DetectFile reads.
const PrefixSize = 64 << 10

var (
	hdf5Magic = []byte("\x89HDF\r\n\x1a\n")
	jld2Text  = []byte("HDF5-based Julia Data Format")
)

// Detect returns the format of a file whose content is data. It may be
// given only a prefix of the file when size is the file's full size; see
// DetectPrefix.
func Detect(data []byte) (Format, error) {
	return DetectPrefix(data, int64(len(data)))
}

// DetectPrefix returns the format of a file of size bytes that starts with
// prefix.
func DetectPrefix(prefix []byte, size int64) (Format, error) {
	switch {
	case bytes.HasPrefix(prefix, format.Magic[:]):
		return SWT, nil
	case bytes.HasPrefix(prefix, jld2Text),
		bytes.HasPrefix(prefix, hdf5Magic),
		len(prefix) >= 512+len(hdf5Magic) && bytes.Equal(prefix[512:512+len(hdf5Magic)], hdf5Magic):
		return JLD2, nil
	case isSafetensors(prefix, size):
		return Safetensors, nil
	case isBSONJL(prefix, size):
		return BSON, nil
	case hdf5UserBlock(prefix):
		return JLD2, nil
	}
	// Say what the file is where that can be told (spec/CONVERSION.md
	// section 6): the error is both ErrUnknownFormat and the kind that
	// names it.
	if err := convert.Diagnose(prefix); err != nil {
		return Unknown, fmt.Errorf("%w: %w", ErrUnknownFormat, err)
	}
	return Unknown, ErrUnknownFormat
}

// hdf5UserBlock reports whether the HDF5 signature is at 1024, 2048, ...
// within prefix: an HDF5 file with a user block larger than JLD2's.
func hdf5UserBlock(p []byte) bool {
	for off := 1024; off+len(hdf5Magic) <= len(p); off *= 2 {
		if bytes.Equal(p[off:off+len(hdf5Magic)], hdf5Magic) {
			return true
		}
	}
	return false
}

// DetectFile reads the start of the file at path and returns its format.
func DetectFile(path string) (Format, error) {
	f, st, err := safeopen.Open(path)
	if err != nil {
		return Unknown, fmt.Errorf("auto: %w", err)
	}
	defer f.Close()
	buf := make([]byte, min(st.Size(), PrefixSize))
	if _, err := io.ReadFull(f, buf); err != nil {
		return Unknown, fmt.Errorf("auto: %w", err)
	}
	return DetectPrefix(buf, st.Size())
}

// isSafetensors: an 8-byte little-endian header length that fits in the
// file, then a JSON object.
func isSafetensors(p []byte, size int64) bool {
	if len(p) < 9 || size < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(p)
	return n >= 2 && n <= uint64(size-8) && p[8] == '{'
}

// isBSONJL: a BSON document whose length prefix is the file size, with
// BSON.jl's structure: a top-level "_backrefs" array, a top-level document
// whose first field is a string "tag", or a top-level array whose first
// item is such a document (a saved vector of arrays).
func isBSONJL(p []byte, size int64) bool {
	if len(p) < 5 || size < 5 || size > 1<<31-1 {
		return false
	}
	if int64(binary.LittleEndian.Uint32(p)) != size {
		return false
	}
	rest := p[4:]
	for range 64 { // top-level elements looked at
		if len(rest) == 0 || rest[0] == 0 {
			return false
		}
		typ := rest[0]
		key, after, ok := cstring(rest[1:])
		if !ok {
			return false
		}
		if typ == 0x04 && key == "_backrefs" {
			return true
		}
		if typ == 0x03 && firstFieldIsTag(after) {
			return true
		}
		if typ == 0x04 && firstItemIsTagged(after) {
			return true
		}
		n, ok := valueLen(typ, after)
		if !ok || n > len(after) {
			return false
		}
		rest = after[n:]
	}
	return false
}

// firstFieldIsTag reports whether the embedded document at the start of b
// starts with the string field "tag", as BSON.jl's tagged documents do.
func firstFieldIsTag(b []byte) bool {
	if len(b) < 5 || b[4] != 0x02 {
		return false
	}
	key, _, ok := cstring(b[5:])
	return ok && key == "tag"
}

// firstItemIsTagged reports whether the array at the start of b has a
// tagged document as its first item.
func firstItemIsTagged(b []byte) bool {
	if len(b) < 5 || b[4] != 0x03 {
		return false
	}
	key, after, ok := cstring(b[5:])
	return ok && key == "0" && firstFieldIsTag(after)
}

func cstring(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// valueLen is the encoded length of a BSON value of type typ at the start
// of b, for the types that BSON.jl writes at the top level.
func valueLen(typ byte, b []byte) (int, bool) {
	switch typ {
	case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
		return 8, true
	case 0x08: // bool
		return 1, true
	case 0x0A: // null
		return 0, true
	case 0x10: // int32
		return 4, true
	case 0x13: // decimal128
		return 16, true
	}
	if len(b) < 4 {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(b))
	switch typ {
	case 0x02: // string: length, bytes
		n += 4
	case 0x03, 0x04: // document, array: length includes itself
	case 0x05: // binary: length, subtype, bytes
		n += 5
	default:
		return 0, false
	}
	if n < 4 || n > int64(len(b)) {
		return 0, false
	}
	return int(n), true
}
