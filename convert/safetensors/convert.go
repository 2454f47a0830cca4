package safetensors

import (
	"context"
	"fmt"
	"io"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/atomicfile"
)

// Version is this converter's version: that of spec/convert-safetensors.md,
// the rules it implements. It is recorded, as part of Converter, in the
// provenance of every file it writes and in its reports.
const Version = "1.0"

// Converter names this converter and its version in provenance, reports
// and 'safeweights version' (convert.ConverterName).
const Converter = "safeweights/convert/safetensors " + Version

var limitsKey = convert.NewKey[Limits]("safetensors.Limits")

// WithLimits sets the limits of a safetensors read (zero fields: defaults).
// A limit out of range is an error when the read or conversion starts.
// Other converters ignore this option.
func WithLimits(l Limits) convert.Option {
	return limitsKey.Option(l, func(l Limits) error { _, err := l.withDefaults(); return err })
}

func resolve(opts []convert.Option) (Limits, error) {
	s, err := convert.NewSettings(opts...)
	if err != nil {
		return Limits{}, err
	}
	lim, _ := limitsKey.Get(s)
	return lim, nil
}

// Convert converts the safetensors file src into the safeweights file dst.
// The source is mapped read-only and its tensor bytes are streamed into dst
// without a copy in between. opts are Read's and those of
// convert.WriteFile (encoder options, progress). ctx is checked between
// tensors; nothing is left at dst on failure or cancellation.
func Convert(ctx context.Context, src, dst string, opts ...convert.Option) (*convert.Report, error) {
	lim, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return convert.Convert(ctx, src, dst, func(data []byte) (*convert.Model, error) {
		return read(data, lim)
	}, opts...)
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
//
// Of opts, Export uses convert.WithProgress (canonical bytes copied). ctx
// is checked before each tensor; a cancelled export returns ctx's error,
// wrapped, and leaves nothing at dst.
func Export(ctx context.Context, f *decode.File, dst string, opts ...convert.Option) error {
	s, err := convert.NewSettings(opts...)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	var done, total int64
	for t := range f.All() {
		total += t.Length
	}
	progress := func() {
		if s.Progress != nil {
			s.Progress(done, total)
		}
	}
	items := make([]item, 0, f.NumTensors())
	for t := range f.All() {
		items = append(items, item{
			name: t.Name, dtype: t.DType, shape: t.Shape, size: t.Length,
			write: func(w io.Writer) error {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("safetensors: %w", err)
				}
				if err := copyTensor(w, f, t); err != nil {
					return err
				}
				done += t.Length
				progress()
				return nil
			},
		})
	}
	progress()
	return writeAtomic(dst, func(w io.Writer) error {
		return write(w, items, f.Metadata())
	})
}

// ExportFile opens the safeweights file src, with the decode options given
// by convert.WithDecodeOptions, and exports it to dst as Export does.
func ExportFile(ctx context.Context, src, dst string, opts ...convert.Option) error {
	s, err := convert.NewSettings(opts...)
	if err != nil {
		return err
	}
	f, err := decode.OpenContext(ctx, src, s.Decode...)
	if err != nil {
		return err
	}
	defer f.Close()
	return Export(ctx, f, dst, opts...)
}

// copyTensor writes t's canonical bytes after checking its digests.
func copyTensor(w io.Writer, f *decode.File, t *decode.Tensor) error {
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
