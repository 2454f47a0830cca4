package auto

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/decode"
)

// Converters lists the converters that Convert and Read choose from, by
// their Converter names (convert.ConverterName): what 'safeweights
// version' prints.
func Converters() []string {
	return []string{bson.Converter, jld2.Converter, safetensors.Converter}
}

// ErrSameFormat: the source already is in the output's format.
var ErrSameFormat = errors.New("auto: source is already in the output format")

// OutputFormat is the writer that Convert picks for dst: Safetensors when
// dst ends in ".safetensors", SWT otherwise.
func OutputFormat(dst string) Format {
	if strings.EqualFold(filepath.Ext(dst), ".safetensors") {
		return Safetensors
	}
	return SWT
}

// Convert converts the model file src, whose format is detected from its
// content, to dst with the converter of that format, as that converter's
// Convert does. opts go to the converter chosen, which ignores the options
// of the others (bson.WithLimits, jld2.WithLimits, safetensors.WithLimits);
// a .swt source is opened with the options of convert.WithDecodeOptions.
// ctx is checked between tensors; nothing is left at dst on failure or
// cancellation.
//
// The report is nil when the source is a .swt file exported to safetensors:
// that export drops nothing.
func Convert(ctx context.Context, src, dst string, opts ...convert.Option) (*convert.Report, error) {
	if _, err := convert.NewSettings(opts...); err != nil {
		return nil, err
	}
	in, err := DetectFile(src)
	if err != nil {
		return nil, err
	}
	out := OutputFormat(dst)
	switch {
	case in == SWT && out == SWT, in == Safetensors && out == Safetensors:
		return nil, fmt.Errorf("%w (%s)", ErrSameFormat, in)
	case in == SWT && out == Safetensors:
		return nil, safetensors.ExportFile(ctx, src, dst, opts...)
	case out == Safetensors:
		return nil, fmt.Errorf("auto: %w: writing safetensors from %s; convert to .swt first", convert.ErrUnsupported, in)
	}
	switch in {
	case BSON:
		return bson.Convert(ctx, src, dst, opts...)
	case JLD2:
		return jld2.Convert(ctx, src, dst, opts...)
	case Safetensors:
		return safetensors.Convert(ctx, src, dst, opts...)
	}
	return nil, fmt.Errorf("auto: %w: no reader for %s", convert.ErrUnsupported, in)
}

// Read extracts the model from data, a whole BSON.jl, JLD2 or safetensors
// file whose format is detected from its content, with the reader of that
// format (whose Read documents what the model's data aliases). opts are as
// for Convert. A .swt file gives ErrSameFormat: it needs no conversion.
func Read(data []byte, opts ...convert.Option) (*convert.Model, error) {
	in, err := Detect(data)
	if err != nil {
		return nil, err
	}
	if in == SWT {
		return nil, fmt.Errorf("%w (%s)", ErrSameFormat, in)
	}
	return read(in, data, opts)
}

// read reads a whole source file of format f into a Model.
func read(f Format, data []byte, opts []convert.Option) (*convert.Model, error) {
	switch f {
	case BSON:
		return bson.Read(data, opts...)
	case JLD2:
		return jld2.Read(data, opts...)
	case Safetensors:
		return safetensors.Read(data, opts...)
	}
	return nil, fmt.Errorf("auto: %w: no reader for %s", convert.ErrUnsupported, f)
}

// TensorSummary describes one tensor of a model file for Diff.
type TensorSummary struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Bytes int64   `json:"bytes"`
	// SHA256 is the hex SHA-256 of the canonical row-major little-endian
	// bytes, so files of different formats compare equal when their
	// tensors do.
	SHA256 string `json:"sha256"`
}

// Summary lists the tensors of a model file of any supported format.
type Summary struct {
	Path    string          `json:"path"`
	Format  string          `json:"format"`
	Tensors []TensorSummary `json:"tensors"`
}

// Summarize reads the model file at path, of any supported format, and
// digests every tensor. A .swt file is read with its chunk digests checked,
// and the options of convert.WithDecodeOptions; other formats with the
// options their readers take. ctx is checked between tensors.
func Summarize(ctx context.Context, path string, opts ...convert.Option) (*Summary, error) {
	st, err := convert.NewSettings(opts...)
	if err != nil {
		return nil, err
	}
	in, err := DetectFile(path)
	if err != nil {
		return nil, err
	}
	s := &Summary{Path: path, Format: in.String(), Tensors: []TensorSummary{}}
	if in == SWT {
		f, err := decode.OpenContext(ctx, path, append([]decode.Option{decode.WithVerify(decode.VerifyLazy)}, st.Decode...)...)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return SummarizeFile(ctx, f, path)
	}
	src, err := convert.OpenSource(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := read(in, src.Data, opts)
	if err != nil {
		return nil, err
	}
	for _, t := range m.Tensors {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("auto: %w", err)
		}
		s.Tensors = append(s.Tensors, summarize(t.Name, t.DType.String(), t.Shape, t.Data))
	}
	return s, nil
}

// SummarizeFile digests every tensor of the open .swt file f, named path
// in the Summary: a file opened from any source (a URL through
// source/remote). Open f under a verify mode to have its chunk digests
// checked as it is read.
func SummarizeFile(ctx context.Context, f *decode.File, path string) (*Summary, error) {
	s := &Summary{Path: path, Format: SWT.String(), Tensors: []TensorSummary{}}
	for t := range f.All() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("auto: %w", err)
		}
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		s.Tensors = append(s.Tensors, summarize(t.Name, t.DType.String(), t.Shape, b))
	}
	return s, nil
}

func summarize(name, dt string, shape []int64, data []byte) TensorSummary {
	sum := sha256.Sum256(data)
	if shape == nil {
		shape = []int64{}
	}
	return TensorSummary{Name: name, DType: dt, Shape: shape, Bytes: int64(len(data)), SHA256: fmt.Sprintf("%x", sum)}
}

// Change is a tensor present in both files that differs.
type Change struct {
	Name string `json:"name"`
	// What lists what differs: "dtype", "shape", "data".
	What []string      `json:"what"`
	A    TensorSummary `json:"a"`
	B    TensorSummary `json:"b"`
}

// Difference is what Diff found.
type Difference struct {
	Added     []TensorSummary `json:"added"`
	Removed   []TensorSummary `json:"removed"`
	Changed   []Change        `json:"changed"`
	Unchanged int             `json:"unchanged"`
}

// Equal reports whether the two files hold the same tensors.
func (d *Difference) Equal() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// Diff compares the tensors of a and b by name: removed are in a only,
// added in b only. Each list follows the order of its file.
func Diff(a, b *Summary) *Difference {
	d := &Difference{Added: []TensorSummary{}, Removed: []TensorSummary{}, Changed: []Change{}}
	inB := make(map[string]*TensorSummary, len(b.Tensors))
	for i := range b.Tensors {
		inB[b.Tensors[i].Name] = &b.Tensors[i]
	}
	inA := make(map[string]bool, len(a.Tensors))
	for _, ta := range a.Tensors {
		inA[ta.Name] = true
		tb, ok := inB[ta.Name]
		if !ok {
			d.Removed = append(d.Removed, ta)
			continue
		}
		var what []string
		if ta.DType != tb.DType {
			what = append(what, "dtype")
		}
		if !equalShape(ta.Shape, tb.Shape) {
			what = append(what, "shape")
		}
		if ta.SHA256 != tb.SHA256 {
			what = append(what, "data")
		}
		if what == nil {
			d.Unchanged++
			continue
		}
		d.Changed = append(d.Changed, Change{Name: ta.Name, What: what, A: ta, B: *tb})
	}
	for _, tb := range b.Tensors {
		if !inA[tb.Name] {
			d.Added = append(d.Added, tb)
		}
	}
	return d
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
