package format

import (
	"errors"
	"strconv"
)

// Kind is one failure kind of the spec's closed list (spec section 7). Every
// error returned for a bad file wraps exactly one Kind, so callers test with
// errors.Is(err, format.ErrLayout) and test vectors name the kind by its Name.
type Kind struct {
	name string
	text string
}

func (k *Kind) Error() string { return "swt: " + k.text }

// Name is the kind's identifier in the spec and in test vectors.
func (k *Kind) Name() string { return k.name }

func newKind(name, text string) *Kind {
	k := &Kind{name, text}
	kinds = append(kinds, k)
	return k
}

var kinds []*Kind

// The failure kinds. The list is closed: a reader reports every rejected file
// with one of these.
var (
	// ErrMagic: the file does not start with the safeweights magic.
	ErrMagic = newKind("magic", "not a safeweights file")
	// ErrVersion: a major version, flag or reserved field this reader does not know.
	ErrVersion = newKind("version", "unsupported format version")
	// ErrTruncated: the file is shorter than its preamble says.
	ErrTruncated = newKind("truncated", "file truncated")
	// ErrHeader: the FlatBuffers header is malformed (offsets, vtables,
	// vectors, strings, identifier, missing required fields, header digest).
	ErrHeader = newKind("header", "malformed header")
	// ErrLimit: a size or count is over a limit of the reader.
	ErrLimit = newKind("limit", "limit exceeded")
	// ErrName: a tensor name is empty, too long, not UTF-8 or holds NUL.
	ErrName = newKind("name", "invalid tensor name")
	// ErrDuplicate: two tensors share a name, or a key appears twice.
	ErrDuplicate = newKind("duplicate", "duplicate name")
	// ErrDType: an element type outside the enum.
	ErrDType = newKind("dtype", "unknown dtype")
	// ErrShape: rank over the limit, element count or byte length overflow,
	// or a byte length that disagrees with the shape.
	ErrShape = newKind("shape", "invalid shape")
	// ErrLayout: misplaced data: misaligned, overlapping, a hole, out of the
	// data region, or a preamble whose regions disagree.
	ErrLayout = newKind("layout", "invalid layout")
	// ErrPadding: a padding byte that is not zero.
	ErrPadding = newKind("padding", "non-zero padding")
	// ErrTrailing: bytes after the header that are not a signature block.
	ErrTrailing = newKind("trailing", "trailing bytes")
	// ErrChunking: a chunk size out of range or a digest list of the wrong length.
	ErrChunking = newKind("chunking", "invalid chunk digests")
	// ErrDigest: stored bytes whose digest does not match the header.
	ErrDigest = newKind("digest", "digest mismatch")
	// ErrCompression: an unknown compression, or a compressed tensor that does
	// not decode to exactly its declared length.
	ErrCompression = newKind("compression", "invalid compressed data")
	// ErrMetadata: metadata, attributes or provenance that break the rules
	// (unsorted keys, empty keys, invalid UTF-8).
	ErrMetadata = newKind("metadata", "invalid metadata")
	// ErrSignatureBlock: a malformed signature block.
	ErrSignatureBlock = newKind("signature-block", "malformed signature block")
	// ErrNoSignature: a policy requires a signature and none is trusted.
	ErrNoSignature = newKind("no-signature", "no trusted signature")
	// ErrSignature: a signature that does not verify.
	ErrSignature = newKind("bad-signature", "signature does not verify")
	// ErrUnsupported: a valid feature this reader does not implement.
	ErrUnsupported = newKind("unsupported", "unsupported feature")
	// ErrIO: the file could not be read (an I/O error, or the mapped file
	// shrank under the reader).
	ErrIO = newKind("io", "read error")
	// ErrNotRegular: the path names a FIFO, a device, a socket or a
	// directory, refused before anything reads (or blocks on) it.
	ErrNotRegular = newKind("not-regular", "not a regular file")
	// ErrNotFound: no tensor of that name.
	ErrNotFound = newKind("not-found", "no such tensor")
)

// Kinds returns every failure kind, in the order of the spec.
func Kinds() []*Kind { return append([]*Kind(nil), kinds...) }

// KindByName returns the kind whose Name is name.
func KindByName(name string) (*Kind, bool) {
	for _, k := range kinds {
		if k.name == name {
			return k, true
		}
	}
	return nil, false
}

// KindOf returns the kind that err wraps, or nil.
func KindOf(err error) *Kind {
	var k *Kind
	if errors.As(err, &k) {
		return k
	}
	return nil
}

// A FormatError describes a rejected file: which rule, where and why.
type FormatError struct {
	Kind   *Kind  // the failure kind; errors.Is(err, Kind) holds
	Rule   string // the spec rule, such as "R14"
	Offset int64  // byte offset in the file, or -1 when unknown
	Field  string // the field or object, such as `tensor "w" offset`
	Reason string
	Err    error // an underlying cause, if any
}

func (e *FormatError) Error() string {
	s := e.Kind.Error()
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Offset >= 0 {
		s += " (at byte " + strconv.FormatInt(e.Offset, 10) + ")"
	}
	if e.Rule != "" {
		s += " [" + e.Rule + "]"
	}
	return s
}

// Unwrap returns the kind and the underlying cause, so errors.Is works with both.
func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Errorf returns a *FormatError; offset is -1 when unknown.
func Errorf(kind *Kind, rule string, offset int64, field, reason string) *FormatError {
	return &FormatError{Kind: kind, Rule: rule, Offset: offset, Field: field, Reason: reason}
}
