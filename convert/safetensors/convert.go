package safetensors

import (
	"fmt"
	"io"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/atomicfile"
)

// Convert converts the safetensors file src into the safeweights file dst.
// The source is mapped read-only and its tensor bytes are streamed into dst
// without a copy in between; nothing is left at dst on failure.
func Convert(src, dst string, opts Options, encOpts ...encode.Option) (*convert.Report, error) {
	if _, err := opts.withDefaults(); err != nil {
		return nil, err
	}
	return convert.Convert(src, dst, func(data []byte) (*convert.Model, error) {
		return Read(data, opts)
	}, encOpts...)
}

// Export writes the tensors and metadata of the safeweights file f to dst
// as a safetensors file, laid out as the Python writer lays it out (see
// Write). Tensor bytes are exactly the canonical bytes of f: compressed
// tensors are decoded; every tensor's chunk digests are checked before it
// is written. What safetensors has no place for is not carried: tensor
// attributes (such as "aliases"), provenance and signatures. A C128 tensor
// fails the export with ErrExport. The file is written to a temporary file
// in dst's directory, synced and renamed, so nothing is left at dst on
// failure.
func Export(f *decode.File, dst string) error {
	items := make([]item, 0, f.NumTensors())
	for t := range f.All() {
		items = append(items, item{
			name: t.Name, dtype: t.DType, shape: t.Shape, size: t.Length,
			write: func(w io.Writer) error { return copyTensor(w, f, t) },
		})
	}
	return writeAtomic(dst, func(w io.Writer) error {
		return write(w, items, f.Metadata())
	})
}

// ExportFile opens the safeweights file src and exports it to dst.
func ExportFile(src, dst string, opts ...decode.Option) error {
	f, err := decode.Open(src, opts...)
	if err != nil {
		return err
	}
	defer f.Close()
	return Export(f, dst)
}

// copyTensor writes t's canonical bytes after checking its digests.
func copyTensor(w io.Writer, f *decode.File, t *decode.Tensor) error {
	if f.VerifyMode() != decode.VerifyNone {
		// Read once and hashed where it landed: checking first and
		// reading again would write what a source (a remote object, a
		// file rewritten meanwhile) answered the second time.
		b, err := t.Bytes()
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if err := t.VerifyRange(0, t.StoredLength); err != nil {
		return err
	}
	if f.Mapping() == nil && t.Compression == format.None {
		// A raw tensor of an unmapped file: stream it rather than holding
		// the whole tensor in memory.
		_, err := io.Copy(w, io.NewSectionReader(f.ReaderAt(), t.Offset, t.StoredLength))
		return err
	}
	b, err := t.Bytes()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// writeAtomic writes dst through a temporary file in the same directory,
// synced and renamed into place (rule C4), on the same write path as
// encode: large writes start their writeback at once.
func writeAtomic(dst string, fill func(w io.Writer) error) error {
	tmp, err := atomicfile.Create(dst)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := fill(tmp); err != nil {
		tmp.Abort()
		return err
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
