package safetensors

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
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
// Memory stays within a small multiple of f's header, whatever it holds: a
// tensor is described by its index until it is written, names are compared
// in the header itself, and the JSON header is written as it is produced,
// after a first pass that measures it.
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
	n := f.NumTensors()
	var done, total int64
	order := make([]int32, n)
	rank := make([]int8, n)
	for i := range n {
		t := f.TensorAt(i)
		if err := checkEntry(t.Name, t.DType, t.Shape, t.Length); err != nil {
			return err
		}
		order[i], rank[i] = int32(i), int8(alignRank[t.DType])
		total += t.Length
	}
	progress := func() {
		if s.Progress != nil {
			s.Progress(done, total)
		}
	}
	// Names are unique in a valid file (R22), so no duplicate check.
	slices.SortFunc(order, func(a, b int32) int {
		if c := int(rank[b]) - int(rank[a]); c != 0 {
			return c
		}
		return bytes.Compare(f.NameAt(int(a)), f.NameAt(int(b)))
	})
	rank = nil
	meta := f.Metadata()
	if err := checkMetadata(meta); err != nil {
		return err
	}
	entries := func(emit func([]byte) error) error {
		var scratch []byte
		var off int64
		scratch = appendMetadata(scratch[:0], meta, n > 0)
		if err := emit(scratch); err != nil {
			return err
		}
		for k, i := range order {
			t := f.TensorAt(int(i))
			scratch = scratch[:0]
			if k > 0 {
				scratch = append(scratch, ',')
			}
			if off > math.MaxInt64-t.Length {
				return errorf(ErrExport, -1, t.Name, "file larger than 2^63 bytes")
			}
			scratch = appendEntry(scratch, t.Name, t.DType, t.Shape, off, off+t.Length)
			off += t.Length
			if err := emit(scratch); err != nil {
				return err
			}
		}
		return nil
	}
	var jsonLen int64 = 2 // the braces
	if err := entries(func(b []byte) error { jsonLen += int64(len(b)); return nil }); err != nil {
		return err
	}
	pad := (8 - jsonLen%8) % 8
	return writeAtomic(dst, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(jsonLen+pad))
		bw.Write(lenBuf[:])
		bw.WriteByte('{')
		if err := entries(func(b []byte) error { _, err := bw.Write(b); return err }); err != nil {
			return err
		}
		bw.WriteByte('}')
		for range pad {
			bw.WriteByte(' ')
		}
		progress()
		for _, i := range order {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("safetensors: %w", err)
			}
			c, err := f.TensorAt(int(i)).CopyTo(bw)
			if err != nil {
				return err
			}
			done += c
			progress()
		}
		return bw.Flush()
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
