package decode

import (
	"bytes"
	"context"
	"fmt"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/zframe"
)

// verifyFrame checks a compressed tensor during verification: each chunk is
// read once, its digest checked (R26), and the same bytes, in order, fed to
// a streaming frame check (R27), which decodes to a counter and never holds
// the decoded tensor. add reports the stored bytes done.
func (f *File) verifyFrame(ctx context.Context, t *Tensor, add func(int64)) error {
	v := zframe.NewVerifier(t.Length, t.zlimits())
	cs := f.ChunkSize()
	buf := make([]byte, min(cs, t.StoredLength, maxWholeChunk))
	for c := range t.NumChunks() {
		if err := ctx.Err(); err != nil {
			v.Close()
			return err
		}
		lo := int64(c) * cs
		n := min(cs, t.StoredLength-lo)
		h := f.pre.DigestAlgorithm.New()
		var ferr error
		for off := int64(0); off < n; {
			p := buf[:min(int64(len(buf)), n-off)]
			if err := f.readCopyContext(ctx, p, t.Offset+lo+off); err != nil {
				v.Close()
				return err
			}
			h.Write(p)
			if ferr == nil {
				_, ferr = v.Write(p)
			}
			off += int64(len(p))
		}
		// The digest is reported first: a frame that fails to decode
		// because its bytes were changed is a digest failure.
		var sum [format.DigestSize]byte
		if !bytes.Equal(h.Sum(sum[:0]), t.ChunkDigest(c)) {
			v.Close()
			return &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + lo,
				Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
		}
		if ferr != nil {
			// Later chunks could still fail R26; R26 covers the stored bytes
			// that no decoder should see, so check them before reporting R27.
			for c2 := c + 1; c2 < t.NumChunks(); c2++ {
				if err := f.checkChunk(ctx, t, c2, buf); err != nil {
					return err
				}
			}
			return t.frameError(ferr)
		}
		add(n)
	}
	return t.frameError(v.Close())
}

// CheckFrame walks a compressed tensor's zstd frame without decoding it
// (R27: the decompression limit, the frame's structure and the expansion
// bound) and returns nil for a raw tensor. A loader that sizes buffers from
// Length calls it first, so that a frame that cannot produce Length bytes
// reserves nothing.
func (t *Tensor) CheckFrame() error {
	if t.Compression == format.None {
		return nil
	}
	if t.f.closed.Load() {
		return errClosed
	}
	if err := t.checkDecodedSize(); err != nil {
		return err
	}
	src, err := t.stored()
	if err != nil {
		return err
	}
	return t.checkFrame(src)
}
