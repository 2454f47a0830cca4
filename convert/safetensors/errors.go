package safetensors

import (
	"strconv"

	"github.com/safeweights/safeweights/convert"
)

// A kind is one rule of spec/convert-safetensors.md that a file can break.
// Each kind wraps one of the shared convert errors, so a caller can test
// either errors.Is(err, safetensors.ErrOverlap) or errors.Is(err,
// convert.ErrMalformed).
type kind struct {
	text   string
	parent error
}

func (k *kind) Error() string { return "safetensors: " + k.text }
func (k *kind) Unwrap() error { return k.parent }

// The rules a safetensors file can break (spec/convert-safetensors.md
// section 3). Every error Read returns for a bad file wraps exactly one.
var (
	// ErrHeaderTooLarge: the declared header length is over Limits.MaxHeaderSize (S2).
	ErrHeaderTooLarge error = &kind{"header length over the limit", convert.ErrLimit}
	// ErrOverLimit: more tensors, a higher rank or a longer name than
	// Limits allow (S2).
	ErrOverLimit error = &kind{"over a limit of the reader", convert.ErrLimit}
	// ErrHeaderLength: the file is shorter than 8 bytes, or the declared
	// header runs past the end of the file (S2).
	ErrHeaderLength error = &kind{"header length past the end of the file", convert.ErrMalformed}
	// ErrHeaderStart: the header does not start with '{' (S3).
	ErrHeaderStart error = &kind{"header does not start with '{'", convert.ErrMalformed}
	// ErrHeaderJSON: the header is not UTF-8 or not JSON (S3).
	ErrHeaderJSON error = &kind{"header is not valid json", convert.ErrMalformed}
	// ErrHeaderSchema: valid JSON of the wrong shape: a tensor entry that is
	// not {dtype, shape, data_offsets}, metadata values that are not strings,
	// numbers that are not non-negative integers (S4, S5).
	ErrHeaderSchema error = &kind{"header does not follow the schema", convert.ErrMalformed}
	// ErrDuplicateName: a tensor name, metadata key or entry field appears twice (S6).
	ErrDuplicateName error = &kind{"duplicate name", convert.ErrMalformed}
	// ErrName: an empty tensor name, or one that holds NUL (S6).
	ErrName error = &kind{"invalid tensor name", convert.ErrMalformed}
	// ErrDType: a dtype code that safetensors does not define (S7).
	ErrDType error = &kind{"unknown dtype", convert.ErrMalformed}
	// ErrUnsupportedDType: a safetensors dtype that safeweights has no type
	// for (F8_E8M0, F4, F6_E2M3, F6_E3M2) (S7).
	ErrUnsupportedDType error = &kind{"dtype not supported", convert.ErrUnsupported}
	// ErrOverflow: a dimension, element count or byte length that does not
	// fit in 63 bits (S8).
	ErrOverflow error = &kind{"shape overflows", convert.ErrMalformed}
	// ErrSize: data_offsets span a byte length other than the element count
	// times the dtype size (S8).
	ErrSize error = &kind{"byte length does not match shape and dtype", convert.ErrMalformed}
	// ErrOffsets: begin after end, or data past the end of the file (S9).
	ErrOffsets error = &kind{"data offsets out of range", convert.ErrMalformed}
	// ErrOverlap: two tensors share bytes (S9).
	ErrOverlap error = &kind{"tensors overlap", convert.ErrMalformed}
	// ErrHole: bytes of the data region that no tensor covers, before or
	// between tensors (S9).
	ErrHole error = &kind{"hole in the data region", convert.ErrMalformed}
	// ErrTrailing: bytes after the last tensor (S9).
	ErrTrailing error = &kind{"trailing bytes after the data", convert.ErrMalformed}

	// ErrIndex: a sharded checkpoint's index is malformed or disagrees with
	// its shards (S11).
	ErrIndex error = &kind{"invalid shard index", convert.ErrMalformed}
	// ErrShardName: the index names a shard outside its own directory (S11).
	ErrShardName error = &kind{"shard name is not a plain file name", convert.ErrRefused}

	// ErrExport: the .swt holds something safetensors cannot represent
	// (a C128 tensor) (S12).
	ErrExport error = &kind{"cannot be written as safetensors", convert.ErrUnsupported}
)

// Error is the error Read and the other functions of this package return
// for a bad source: which rule (Err, one of the Err* kinds above), where
// and why.
type Error struct {
	// Offset is the byte offset in the source file, or -1 when unknown.
	Offset int64
	// Tensor names the tensor concerned, if any.
	Tensor string
	// Reason says what is wrong in words.
	Reason string
	// Err is the rule broken; errors.Is(err, Err) holds.
	Err error
}

func (e *Error) Error() string {
	s := e.Err.Error()
	if e.Tensor != "" {
		s += ": tensor " + strconv.Quote(e.Tensor)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Offset >= 0 {
		s += " (at byte " + strconv.FormatInt(e.Offset, 10) + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(kind error, offset int64, tensor, reason string) *Error {
	return &Error{Offset: offset, Tensor: tensor, Reason: reason, Err: kind}
}
