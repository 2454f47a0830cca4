package decode

import (
	"errors"
	"fmt"

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

// NumChunks is the number of digest chunks of the stored bytes.
func (t *Tensor) NumChunks() int {
	return int(format.NumChunks(uint64(t.StoredLength), uint64(t.f.ChunkSize())))
}

// ChunkDigest returns the recorded digest of chunk i, which covers the stored
// bytes [i*ChunkSize, min((i+1)*ChunkSize, StoredLength)).
func (t *Tensor) ChunkDigest(i int) []byte {
	return t.digests[i*format.DigestSize : (i+1)*format.DigestSize]
}

// Stored returns the stored bytes: a view of the mapping for a mapped file,
// else a copy. For a raw tensor they are its canonical bytes.
func (t *Tensor) Stored() ([]byte, error) {
	if err := t.checkAccess(); err != nil {
		return nil, err
	}
	return t.stored()
}

func (t *Tensor) stored() ([]byte, error) {
	if t.f.data != nil {
		return t.f.data[t.Offset : t.Offset+t.StoredLength : t.Offset+t.StoredLength], nil
	}
	b := make([]byte, t.StoredLength)
	if err := t.f.readCopy(b, t.Offset); err != nil {
		return nil, err
	}
	return b, nil
}

// checkAccess enforces the verify mode before bytes are handed out.
func (t *Tensor) checkAccess() error {
	if t.f.closed.Load() {
		return errClosed
	}
	if t.f.verified == nil || t.f.verified[t.index].Load() {
		return nil
	}
	if err := t.f.verifyTensors([]int{t.index}, VerifyOptions{}); err != nil {
		return err
	}
	return nil
}

// Bytes returns the tensor's canonical row-major little-endian bytes. For a
// raw tensor of a mapped file they are a read-only view of the mapping,
// valid until Close; otherwise a new slice. Compressed tensors are decoded,
// bounded by their declared length and the MaxDecompressedSize limit.
func (t *Tensor) Bytes() ([]byte, error) {
	if err := t.checkAccess(); err != nil {
		return nil, err
	}
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
// exactly Length bytes long.
func (t *Tensor) ReadInto(dst []byte) error {
	if int64(len(dst)) != t.Length {
		return fmt.Errorf("decode: tensor %q: buffer of %d bytes, want %d", t.Name, len(dst), t.Length)
	}
	if err := t.checkAccess(); err != nil {
		return err
	}
	if t.Compression == format.None {
		return t.f.readCopy(dst, t.Offset)
	}
	return t.decompress(dst)
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
