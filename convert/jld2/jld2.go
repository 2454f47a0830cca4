package jld2

import (
	"fmt"
	"strconv"

	"github.com/safeweights/safeweights/convert"
)

// Limits bound the work and memory a file can ask for. A file over a limit
// fails with an error wrapping convert.ErrLimit. The zero value of a field
// means its default.
type Limits struct {
	// MaxDepth bounds the nesting of datatypes (compound members, arrays,
	// variable-length sequences) and of values (structs in structs and
	// references followed from a value). Default 128.
	MaxDepth int
	// MaxObjects bounds the number of distinct object headers and global
	// heap collections read. Default 1<<20.
	MaxObjects int
	// MaxNodes bounds the number of structure nodes (values visited, array
	// elements of non-numeric arrays included). Default 1<<21.
	MaxNodes int
	// MaxAliases bounds the number of aliases recorded for shared arrays.
	// Default 1<<20.
	MaxAliases int
	// MaxChunks bounds the number of chunks of one chunked dataset.
	// Default 1<<22.
	MaxChunks int
	// MaxDecodedBytes bounds the bytes that decompression of chunked
	// datasets may produce in total; contiguous and compact data alias the
	// input and do not count. Default 8 GiB.
	MaxDecodedBytes int64
	// MaxStringBytes bounds one string or variable-length value kept as
	// text. Default 1 MiB.
	MaxStringBytes int
}

// DefaultLimits returns the limits used for fields left zero.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:        128,
		MaxObjects:      1 << 20,
		MaxNodes:        1 << 21,
		MaxAliases:      1 << 20,
		MaxChunks:       1 << 22,
		MaxDecodedBytes: 8 << 30,
		MaxStringBytes:  1 << 20,
	}
}

func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	if l.MaxDepth < 0 || l.MaxObjects < 0 || l.MaxNodes < 0 || l.MaxAliases < 0 ||
		l.MaxChunks < 0 || l.MaxDecodedBytes < 0 || l.MaxStringBytes < 0 {
		return l, fmt.Errorf("jld2: negative limit in %+v", l)
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxObjects == 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxNodes == 0 {
		l.MaxNodes = d.MaxNodes
	}
	if l.MaxAliases == 0 {
		l.MaxAliases = d.MaxAliases
	}
	if l.MaxChunks == 0 {
		l.MaxChunks = d.MaxChunks
	}
	if l.MaxDecodedBytes == 0 {
		l.MaxDecodedBytes = d.MaxDecodedBytes
	}
	if l.MaxStringBytes == 0 {
		l.MaxStringBytes = d.MaxStringBytes
	}
	return l, nil
}

// options are what a read takes from its convert.Options.
type options struct {
	convert.Options
	Limits Limits
}

// Error is a problem with the source file: where it is and why. It wraps
// one of convert's sentinel errors (ErrMalformed, ErrLimit, ErrUnsupported,
// ErrRefused, ErrHasCode, ErrNoWeights, ErrNameClash).
type Error struct {
	// Offset is the absolute byte offset in the file, or -1 when the problem
	// has no single place.
	Offset int64
	// Path is the tensor-name path of the value being read, if any.
	Path   string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	s := "jld2: " + e.Reason
	if e.Path != "" {
		s += " (at " + e.Path + ")"
	}
	if e.Offset >= 0 {
		s += " at offset " + strconv.FormatInt(e.Offset, 10)
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func errAt(kind error, off int64, format string, args ...any) *Error {
	return &Error{Offset: off, Reason: fmt.Sprintf(format, args...), Err: kind}
}

// Read extracts the model from data, the whole JLD2 file (typically a
// read-only mapping). The Data of tensors stored contiguously or compactly
// aliases data; chunked tensors are decompressed into new memory. Of opts,
// Read uses convert.WithIncludeOptimizer, convert.WithStrict and
// WithLimits.
func Read(data []byte, opts ...convert.Option) (*convert.Model, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	m, _, err := read(data, o)
	return m, err
}

// read is Read that also returns the file's work counters, for tests.
func read(data []byte, opts options) (*convert.Model, *file, error) {
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	f, err := openFile(data, lim)
	if err != nil {
		return nil, nil, err
	}
	w := newWalker(f, opts.Options)
	m, err := w.run()
	return m, f, err
}
