package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/zframe"
)

// Tensor describes one tensor of a File and reads its bytes.
type Tensor struct {
	Name        string
	DType       format.DType
	Shape       []int64 // row-major, outermost first; empty for a scalar
	Compression format.Compression
	// Offset is the absolute file offset of the stored bytes, a multiple
	// of the file's alignment.
	Offset int64
	// StoredLength is the number of bytes stored in the file.
	StoredLength int64
	// Length is the canonical (decoded) byte length: elements x dtype size.
	Length     int64
	Attributes map[string]string

	f       *File
	index   int
	digests []byte
}

// Index is the tensor's position in file order.
func (t *Tensor) Index() int { return t.index }

// NumElements is the number of elements.
func (t *Tensor) NumElements() int64 {
	n, _ := format.NumElements(t.Shape)
	return int64(n)
}

// ChunkSize is the digest chunk size of t's file: every chunk of t's
// stored bytes but the last is this long.
func (t *Tensor) ChunkSize() int64 { return t.f.ChunkSize() }

// NumChunks is the number of digest chunks of the stored bytes.
func (t *Tensor) NumChunks() int {
	return int(format.NumChunks(uint64(t.StoredLength), uint64(t.f.ChunkSize())))
}

// ChunkDigest returns the recorded digest of chunk i, which covers the stored
// bytes [i*ChunkSize, min((i+1)*ChunkSize, StoredLength)).
func (t *Tensor) ChunkDigest(i int) []byte {
	return t.digests[i*format.DigestSize : (i+1)*format.DigestSize]
}

// Stored returns the stored bytes: for a raw tensor, its canonical bytes.
// Where the file allows views (see Bytes) they are a view of the mapping;
// otherwise a new slice, read once and, under a verify mode, hashed where it
// landed before it is returned.
func (t *Tensor) Stored() ([]byte, error) {
	return t.stored()
}

// viewable reports whether t's bytes may be handed out as a view of the
// mapping: the file is mapped, the caller did not ask for checked reads,
// and the bytes are not fed to the decompressor under a verify mode (a
// view can change under the decoder after its check; a checked copy
// cannot).
func (t *Tensor) viewable() bool {
	return t.f.data != nil && !t.f.cfg.checked &&
		(t.Compression == format.None || t.f.cfg.verify == VerifyNone)
}

// stored returns the stored bytes: a view where viewable, checked at first
// access under a verify mode; otherwise a copy from readStored.
func (t *Tensor) stored() ([]byte, error) {
	if t.viewable() {
		if err := t.checkAccess(); err != nil {
			return nil, err
		}
		return t.f.data[t.Offset : t.Offset+t.StoredLength : t.Offset+t.StoredLength], nil
	}
	if t.f.closed.Load() {
		return nil, errClosed
	}
	b := make([]byte, t.StoredLength)
	if err := t.readStored(b); err != nil {
		return nil, err
	}
	return b, nil
}

// readStored reads t's stored bytes into b (len(b) == StoredLength), once,
// and under a verify mode checks t's padding and hashes every chunk of b
// itself against the header before returning: the bytes a caller gets are
// the bytes that were hashed, whatever the source returns on a later read.
func (t *Tensor) readStored(b []byte) error {
	if t.f.closed.Load() {
		return errClosed
	}
	if t.f.cfg.verify == VerifyNone {
		return t.f.readCopy(b, t.Offset)
	}
	if err := t.CheckPadding(); err != nil {
		return err
	}
	return t.f.readHashed(t, b, 0)
}

// checkAccess enforces the verify mode before a view is handed out: the
// first access hashes the tensor's stored bytes and checks its padding; the
// mapping then stays trusted for the life of the File. It guarantees what
// the file held at that check, not what another writer puts there later
// (spec/SPEC.md section 5.1).
func (t *Tensor) checkAccess() error {
	if t.f.closed.Load() {
		return errClosed
	}
	if t.f.verified == nil || t.f.verified[t.index].Load() {
		return nil
	}
	if err := t.CheckPadding(); err != nil {
		return err
	}
	if err := t.f.verifyTensors([]int{t.index}, VerifyOptions{}); err != nil {
		return err
	}
	return nil
}

// Bytes returns the tensor's canonical row-major little-endian bytes.
//
// For a raw tensor of a mapped file opened without WithCheckedReads (and
// without a policy that asks for checked reads, such as sign.Require) they
// are a read-only view of the mapping, valid until Close: zero-copy, and
// under a verify mode checked once, at first access. Otherwise they are a
// new slice read once from the file and, under a verify mode, hashed in
// that very slice before it is returned, on every call. Compressed tensors
// are decoded from such a checked copy, bounded by their declared length
// and the MaxDecompressedSize limit.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.Compression == format.None {
		return t.stored()
	}
	// The limit is checked before the allocation: Length comes from the
	// header and may be anything up to 2^63-1.
	if err := t.checkDecodedSize(); err != nil {
		return nil, err
	}
	src, err := t.stored()
	if err != nil {
		return nil, err
	}
	return t.decodeNew(src)
}

// decodeNew decodes src, t's stored bytes, into a new buffer of t's
// length, after checking that the frame can produce that length.
func (t *Tensor) decodeNew(src []byte) ([]byte, error) {
	if err := t.checkFrame(src); err != nil {
		return nil, err
	}
	dst := make([]byte, t.Length)
	if err := t.decodeFrame(dst, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// ReadInto copies the tensor's canonical bytes into dst, which must be
// exactly Length bytes long. Under a verify mode a raw tensor is read into
// dst once and hashed there; a compressed one is decoded from a checked
// copy of its stored bytes.
func (t *Tensor) ReadInto(dst []byte) error {
	if int64(len(dst)) != t.Length {
		return fmt.Errorf("decode: tensor %q: buffer of %d bytes, want %d", t.Name, len(dst), t.Length)
	}
	if t.Compression == format.None {
		return t.readStored(dst)
	}
	return t.decompress(dst)
}

// CopyTo writes t's canonical bytes to w and checks them on the way,
// whatever the file's verify mode: it is the copy path of exporters. A raw
// tensor is streamed a chunk at a time: each chunk is read once into a
// buffer of one chunk, hashed there and written only if its digest matched,
// so memory stays at one chunk and no byte reaches w unchecked. The
// tensor's padding is checked first. A compressed tensor is decoded, as by
// Bytes, from a checked copy of its stored bytes.
func (t *Tensor) CopyTo(w io.Writer) (int64, error) {
	if t.f.closed.Load() {
		return 0, errClosed
	}
	if err := t.CheckPadding(); err != nil {
		return 0, err
	}
	if t.Compression != format.None {
		dst, err := t.decodeChecked()
		if err != nil {
			return 0, err
		}
		n, err := w.Write(dst)
		return int64(n), err
	}
	cs := t.f.ChunkSize()
	buf := make([]byte, min(cs, t.StoredLength))
	var written int64
	for c := range t.NumChunks() {
		lo := int64(c) * cs
		p := buf[:min(cs, t.StoredLength-lo)]
		if err := t.f.readCopy(p, t.Offset+lo); err != nil {
			return written, err
		}
		sum := t.f.pre.DigestAlgorithm.SumParallel(p, runtime.GOMAXPROCS(0))
		if !bytes.Equal(sum[:], t.ChunkDigest(c)) {
			return written, &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + lo,
				Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
		}
		n, err := w.Write(p)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// decodeChecked decodes a compressed tensor from a copy of its stored
// bytes that was read once and hashed, whatever the file's verify mode.
// The caller has checked the padding.
func (t *Tensor) decodeChecked() ([]byte, error) {
	if err := t.checkDecodedSize(); err != nil {
		return nil, err
	}
	src := make([]byte, t.StoredLength)
	if err := t.f.readHashed(t, src, 1); err != nil {
		return nil, err
	}
	return t.decodeNew(src)
}

// CheckPadding checks that the padding on both sides of t's stored bytes is
// zero (R25): from the end of the previous tensor (or the start of the data
// region) to t, and from t to the next tensor (or the end of the data
// region). The reading paths call it before t's bytes are first handed out
// under a verify mode, so that a file cannot carry bytes between its
// tensors that only a whole-file Verify would see.
func (t *Tensor) CheckPadding() error {
	f := t.f
	if f.closed.Load() {
		return errClosed
	}
	if f.padded != nil && f.padded[t.index].Load() {
		return nil
	}
	lo := int64(f.pre.DataOffset)
	if t.index > 0 {
		e := f.hdr.Tensor(t.index - 1)
		lo = int64(f.pre.DataOffset + e.Offset + e.StoredLength)
	}
	if err := f.checkZero(lo, t.Offset, f.readCopy); err != nil {
		return err
	}
	hi := int64(f.pre.DataEnd())
	if t.index+1 < f.NumTensors() {
		hi = int64(f.pre.DataOffset + f.hdr.Tensor(t.index+1).Offset)
	}
	if err := f.checkZero(t.Offset+t.StoredLength, hi, f.readCopy); err != nil {
		return err
	}
	if f.padded != nil {
		f.padded[t.index].Store(true)
	}
	return nil
}

// checkDecodedSize enforces the MaxDecompressedSize limit (R27).
func (t *Tensor) checkDecodedSize() error {
	if t.Length > t.f.cfg.limits.MaxDecompressedSize {
		return &format.FormatError{Kind: format.ErrLimit, Rule: "R27", Offset: t.Offset,
			Field: fmt.Sprintf("tensor %q", t.Name), Reason: fmt.Sprintf("decoded size %d over the limit of %d", t.Length, t.f.cfg.limits.MaxDecompressedSize)}
	}
	return nil
}

// R27: a compressed tensor is one zstd frame of a restricted form that
// decodes to exactly its declared length (internal/zframe).
func (t *Tensor) decompress(dst []byte) error {
	if err := t.checkDecodedSize(); err != nil {
		return err
	}
	src, err := t.stored()
	if err != nil {
		return err
	}
	return t.decodeFrame(dst, src)
}

func (t *Tensor) decodeFrame(dst, src []byte) error {
	var err error
	if gerr := t.f.guard(func() { err = zframe.Decode(dst, src, t.zlimits()) }); gerr != nil {
		return gerr
	}
	return t.frameError(err)
}

// checkFrame walks the frame's structure without decoding it, so that a
// declared length the stored bytes cannot produce is refused before a
// buffer of that length is made.
func (t *Tensor) checkFrame(src []byte) error {
	var err error
	if gerr := t.f.guard(func() { err = zframe.Check(src, t.Length, t.zlimits()) }); gerr != nil {
		return gerr
	}
	return t.frameError(err)
}

func (t *Tensor) zlimits() zframe.Limits {
	return zframe.Limits{MaxContent: t.f.cfg.limits.MaxDecompressedSize}
}

// frameError maps a zframe refusal to the R27 kinds.
func (t *Tensor) frameError(err error) error {
	var ze *zframe.Error
	if !errors.As(err, &ze) {
		return err
	}
	kind := format.ErrCompression
	if ze.Limit {
		kind = format.ErrLimit
	}
	return &format.FormatError{Kind: kind, Rule: "R27", Offset: t.Offset,
		Field: fmt.Sprintf("tensor %q", t.Name), Reason: ze.Reason, Err: ze.Err}
}
