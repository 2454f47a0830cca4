package decode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"
	"iter"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/safeweights/safeweights/format"
)

// File is an open safeweights file.
type File struct {
	cfg      config
	path     string
	size     int64
	data     []byte      // the read-only mapping, or nil
	ra       io.ReaderAt // always set
	closer   io.Closer
	preBytes [format.PreambleSize]byte
	pre      format.Preamble
	hdr      *format.Header
	sigBlock []byte // the signature block, or nil
	sigs     []format.SignatureEntry

	verified []atomic.Bool // per tensor: its mapping was checked (views only)
	padded   []atomic.Bool // per tensor: its padding was checked (R25)

	aliasOnce sync.Once
	aliases   map[string]int
	closed    atomic.Bool
	mu        sync.Mutex // serializes Close
}

// Open opens the file at path, maps it read-only and verifies its header.
func Open(path string, opts ...Option) (*File, error) {
	return OpenContext(context.Background(), path, opts...)
}

// OpenContext is Open with a context, which bounds the eager verification
// of VerifyEager.
func OpenContext(ctx context.Context, path string, opts ...Option) (*File, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	// Opened without blocking and checked on the descriptor: a FIFO or a
	// device is refused (format.ErrNotRegular) before anything reads it.
	fh, st, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	f := &File{cfg: cfg, path: path, size: st.Size(), ra: fh, closer: fh}
	if canMap && !cfg.noMap {
		f.data, err = mapFile(fh, f.size)
		if err != nil {
			fh.Close()
			return nil, fmt.Errorf("decode: mmap %s: %w", path, err)
		}
	}
	if err := f.init(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// NewReader reads a file of size bytes from r. Tensor bytes are copied on
// access. The caller keeps r open until it is done with the File.
func NewReader(r io.ReaderAt, size int64, opts ...Option) (*File, error) {
	return NewReaderContext(context.Background(), r, size, opts...)
}

// NewReaderContext is NewReader with a context, which bounds the eager
// verification of VerifyEager.
func NewReaderContext(ctx context.Context, r io.ReaderAt, size int64, opts ...Option) (*File, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("decode: negative size %d", size)
	}
	f := &File{cfg: cfg, size: size, ra: r, closer: cfg.closer}
	if err := f.init(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Inspect opens path and reads only its preamble, header and signature
// block: no tensor byte is read. The File can still read tensors on demand.
func Inspect(path string, opts ...Option) (*File, error) {
	return Open(path, append(opts, WithoutMmap())...)
}

// readCopy reads exactly len(b) bytes at off into b through f.ra: pread on
// the file that Open opened, or the ReaderAt given to NewReader. Every
// byte this package copies out of a file is read this way, never copied from
// the mapping: a read is one system call instead of a page fault per page,
// which in some VMs costs more than the read itself (docs/BENCHMARKS.md),
// and a file that shrinks gives a short read (ErrIO), not a fault.
func (f *File) readCopy(b []byte, off int64) error {
	return f.readCopyContext(context.Background(), b, off)
}

// ReaderAtContext is an io.ReaderAt whose reads a context can bound, such
// as a remote source (package source): decode passes the caller's context
// to it where it has one (OpenContext, NewReaderContext, Verify).
type ReaderAtContext interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// readCopyContext is readCopy bounded by ctx when the reader takes one.
func (f *File) readCopyContext(ctx context.Context, b []byte, off int64) error {
	var n int
	var err error
	if rc, ok := f.ra.(ReaderAtContext); ok {
		n, err = rc.ReadAtContext(ctx, b, off)
	} else {
		n, err = f.ra.ReadAt(b, off)
	}
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &format.FormatError{Kind: format.ErrIO, Offset: off, Field: "read", Err: err}
}

// guard runs fn, which reads the mapping in place (the zstd decoder reads a
// compressed tensor's stored bytes there), and reports a memory fault (the
// file was truncated under the mapping) as ErrIO. fn must not start
// goroutines that touch the mapping: a fault there cannot be caught. This is
// the one place a panic is recovered, and only the runtime's fault panic: it
// validates no input, it survives a file changed by another process.
func (f *File) guard(fn func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if _, isFault := r.(interface{ Addr() uintptr }); isFault {
					err = &format.FormatError{Kind: format.ErrIO, Offset: -1, Field: "mapping", Reason: "the file changed while mapped", Err: re}
					return
				}
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

func (f *File) init(ctx context.Context) error {
	lim := f.cfg.limits
	read := func(b []byte, off int64) error { return f.readCopyContext(ctx, b, off) }
	// One read takes the preamble and, with the default alignment, all of
	// the padding before the data region; another takes the padding after
	// the data region with the header. Reads rather than the mapping: a
	// page fault per page costs more than a read in some VMs, and these
	// bytes are copied anyway.
	head := make([]byte, min(f.size, format.DefaultAlignment))
	if err := f.readCopyContext(ctx, head, 0); err != nil {
		return err
	}
	n := copy(f.preBytes[:], head)
	pre, err := format.ParsePreamble(f.preBytes[:n], f.size, lim)
	if err != nil {
		return err
	}
	f.pre = pre

	// The header is copied out of the file: it is small, and a copy keeps
	// every accessor safe whatever happens to the file later.
	tail := make([]byte, pre.HeaderOffset-pre.DataEnd()+pre.HeaderLength)
	if err := f.readCopyContext(ctx, tail, int64(pre.DataEnd())); err != nil {
		return err
	}
	hb := tail[pre.HeaderOffset-pre.DataEnd():]
	if pre.DigestAlgorithm.Sum(hb) != pre.HeaderDigest { // R10
		return format.Errorf(format.ErrHeader, "R10", 56, "header digest", "does not match the header")
	}
	f.hdr, err = format.ParseHeader(hb, &f.pre, lim)
	if err != nil {
		return err
	}

	// R25: the padding before and after the data region.
	front := min(int64(pre.DataOffset), int64(len(head)))
	if i := nonZero(head[format.PreambleSize:front]); i >= 0 {
		return format.Errorf(format.ErrPadding, "R25", format.PreambleSize+int64(i), "padding", "byte not zero")
	}
	if err := f.checkZero(front, int64(pre.DataOffset), read); err != nil {
		return err
	}
	if i := nonZero(tail[:len(tail)-len(hb)]); i >= 0 {
		return format.Errorf(format.ErrPadding, "R25", int64(pre.DataEnd())+int64(i), "padding", "byte not zero")
	}

	// R28: what follows the header is a signature block or nothing.
	if end := int64(pre.HeaderEnd()); end < f.size {
		rest := f.size - end
		max := int64(24 + lim.MaxSignatures*(52+format.MaxCommentLength+format.MaxSignatureLength))
		if rest > max {
			var magic [8]byte
			if err := f.readCopyContext(ctx, magic[:min(8, int(rest))], end); err != nil {
				return err
			}
			if magic == format.SignatureMagic {
				return format.Errorf(format.ErrSignatureBlock, "R28", end, "signature block", "larger than the limit allows")
			}
			return format.Errorf(format.ErrTrailing, "R28", end, "trailing bytes", "not a signature block")
		}
		f.sigBlock = make([]byte, rest)
		if err := f.readCopyContext(ctx, f.sigBlock, end); err != nil {
			return err
		}
		if f.sigs, err = format.ParseSignatureBlock(f.sigBlock, end, lim); err != nil {
			return err
		}
	}

	if f.cfg.verify != VerifyNone {
		f.verified = make([]atomic.Bool, f.hdr.NumTensors())
		f.padded = make([]atomic.Bool, f.hdr.NumTensors())
	}
	for _, p := range f.cfg.policies {
		if err := p.Check(f); err != nil {
			return err
		}
	}
	if f.cfg.verify == VerifyEager {
		if err := f.Verify(ctx, VerifyOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// checkZero checks that the file bytes in [lo, hi) are zero (R25).
func (f *File) checkZero(lo, hi int64, read func([]byte, int64) error) error {
	if lo >= hi {
		return nil
	}
	// The buffer escapes (through io.ReaderAt), so it is sized to the gap:
	// Verify calls this once per tensor, mostly for empty gaps.
	buf := make([]byte, min(4096, hi-lo))
	for off := lo; off < hi; {
		b := buf[:min(int64(len(buf)), hi-off)]
		if err := read(b, off); err != nil {
			return err
		}
		if i := nonZero(b); i >= 0 {
			return format.Errorf(format.ErrPadding, "R25", off+int64(i), "padding", "byte not zero")
		}
		off += int64(len(b))
	}
	return nil
}

// nonZero returns the index of the first non-zero byte of b, or -1.
func nonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// Close unmaps and closes the file. Slices obtained from Bytes or View on a
// mapped file must not be used after Close.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Swap(true) {
		return nil
	}
	var err error
	if f.data != nil {
		err = unmap(f.data)
		f.data = nil
	}
	if f.closer != nil {
		if cerr := f.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Path is the path given to Open, or "" for NewReader.
func (f *File) Path() string { return f.path }

// Size is the file's size in bytes.
func (f *File) Size() int64 { return f.size }

// Mapping returns the read-only mapping of the whole file, or nil.
func (f *File) Mapping() []byte { return f.data }

// ReaderAt reads the file with pread (the *os.File for Open, the reader
// given to NewReader), never through the mapping.
func (f *File) ReaderAt() io.ReaderAt { return f.ra }

// Preamble returns the decoded preamble.
func (f *File) Preamble() format.Preamble { return f.pre }

// PreambleBytes returns the 128 bytes of the preamble.
func (f *File) PreambleBytes() []byte { return f.preBytes[:] }

// SignatureBlock returns the raw signature block and its parsed entries, or
// nil when the file has none.
func (f *File) SignatureBlock() ([]byte, []format.SignatureEntry) { return f.sigBlock, f.sigs }

// ChunkSize is the digest chunk size.
func (f *File) ChunkSize() int64 { return int64(f.hdr.ChunkSize()) }

// Alignment is the alignment of tensor data.
func (f *File) Alignment() int64 { return int64(f.pre.Alignment) }

// DigestAlgorithm is the algorithm of the header and chunk digests.
func (f *File) DigestAlgorithm() format.DigestAlgorithm { return f.pre.DigestAlgorithm }

// Producer names the software that wrote the file.
func (f *File) Producer() string { return f.hdr.Producer() }

// Provenance returns the provenance of a converted file.
func (f *File) Provenance() (format.Provenance, bool) { return f.hdr.Provenance() }

// Metadata returns the model-level metadata.
func (f *File) Metadata() map[string]string {
	kvs := f.hdr.Metadata()
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// NumTensors is the number of tensors.
func (f *File) NumTensors() int { return f.hdr.NumTensors() }

// TensorAt returns the i-th tensor in file order.
func (f *File) TensorAt(i int) *Tensor {
	e := f.hdr.Tensor(i)
	length, _ := e.Length()
	t := &Tensor{
		Name:         e.Name,
		DType:        e.DType,
		Shape:        e.Shape,
		Compression:  e.Compression,
		Offset:       int64(f.pre.DataOffset + e.Offset),
		StoredLength: int64(e.StoredLength),
		Length:       int64(length),
		f:            f,
		index:        i,
		digests:      e.Digests,
	}
	if len(e.Attributes) > 0 {
		t.Attributes = make(map[string]string, len(e.Attributes))
		for _, kv := range e.Attributes {
			t.Attributes[kv.Key] = kv.Value
		}
	}
	return t
}

// NameAt returns the name of tensor i (in file order) without copying it:
// the bytes alias the header, valid until Close, and must not be modified.
// It lets a caller that walks a million tensors sort or compare them by
// name without a string for each.
func (f *File) NameAt(i int) []byte { return f.hdr.TensorName(i) }

// Tensor returns the tensor named name, found by binary search. A name
// that no tensor has is looked up among the aliases a converter recorded
// for tied weights (the tensor attribute "aliases", spec/CONVERSION.md N8):
// the tensor stored once under its first path is returned for every other
// path that shares it.
func (f *File) Tensor(name string) (*Tensor, error) {
	i := f.hdr.Lookup(name)
	if i < 0 {
		var ok bool
		if i, ok = f.aliasIndex()[name]; !ok {
			return nil, &format.FormatError{Kind: format.ErrNotFound, Offset: -1, Field: fmt.Sprintf("tensor %q", name)}
		}
	}
	return f.TensorAt(i), nil
}

// aliasIndex maps every recorded alias to its tensor, built on the first
// lookup that misses. Its size is bounded by the header's. An alias that is
// also a tensor's name, or is claimed by two tensors, is left out: the
// attribute is data from the file, and must not shadow or pick between
// tensors.
func (f *File) aliasIndex() map[string]int {
	f.aliasOnce.Do(func() {
		m := map[string]int{}
		dup := map[string]bool{}
		for i := range f.hdr.NumTensors() {
			for _, kv := range f.hdr.Tensor(i).Attributes {
				if kv.Key != "aliases" {
					continue
				}
				var names []string
				if json.Unmarshal([]byte(kv.Value), &names) != nil {
					continue
				}
				for _, a := range names {
					if _, seen := m[a]; seen || f.hdr.Lookup(a) >= 0 {
						dup[a] = true
					}
					m[a] = i
				}
			}
		}
		for a := range dup {
			delete(m, a)
		}
		f.aliases = m
	})
	return f.aliases
}

// All iterates over the tensors in file order.
func (f *File) All() iter.Seq[*Tensor] {
	return func(yield func(*Tensor) bool) {
		for i := range f.hdr.NumTensors() {
			if !yield(f.TensorAt(i)) {
				return
			}
		}
	}
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	out := make([]string, f.hdr.NumTensors())
	for i := range out {
		out[i] = string(f.hdr.TensorName(f.hdr.SortedIndex(i)))
	}
	return out
}

var errClosed = errors.New("decode: file closed")
