package auto

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
)

// Options control Convert and Read.
type Options struct {
	convert.Options
	// Encode are the options of the .swt writer.
	Encode []encode.Option
	// Decode are the options of the .swt reader (a .swt source).
	Decode []decode.Option
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
// content, to dst. Nothing is left at dst on failure.
//
// The report is nil when the source is a .swt file exported to safetensors:
// that export drops nothing.
func Convert(src, dst string, opts Options) (*convert.Report, error) {
	in, err := DetectFile(src)
	if err != nil {
		return nil, err
	}
	out := OutputFormat(dst)
	switch {
	case in == SWT && out == SWT, in == Safetensors && out == Safetensors:
		return nil, fmt.Errorf("%w (%s)", ErrSameFormat, in)
	case in == SWT && out == Safetensors:
		return nil, safetensors.ExportFile(src, dst, opts.Decode...)
	case in == Safetensors:
		return safetensors.Convert(src, dst, safetensors.Options{}, opts.Encode...)
	case out == Safetensors:
		return nil, fmt.Errorf("auto: %w: writing safetensors from %s; convert to .swt first", convert.ErrUnsupported, in)
	}
	read, err := reader(in, opts)
	if err != nil {
		return nil, err
	}
	return convert.Convert(src, dst, read, opts.Encode...)
}

// reader returns the function that reads a whole source file of format f
// into a Model.
func reader(f Format, opts Options) (func([]byte) (*convert.Model, error), error) {
	switch f {
	case JLD2:
		return func(b []byte) (*convert.Model, error) {
			return jld2.Read(b, jld2.Options{Options: opts.Options})
		}, nil
	case Safetensors:
		return func(b []byte) (*convert.Model, error) {
			return safetensors.Read(b, safetensors.Options{})
		}, nil
	case BSON:
		return readBSON(opts), nil
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
// digests every tensor. A .swt file is read with its chunk digests checked.
func Summarize(path string, opts Options) (*Summary, error) {
	in, err := DetectFile(path)
	if err != nil {
		return nil, err
	}
	s := &Summary{Path: path, Format: in.String(), Tensors: []TensorSummary{}}
	if in == SWT {
		f, err := decode.Open(path, append([]decode.Option{decode.WithVerify(decode.VerifyLazy)}, opts.Decode...)...)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return SummarizeFile(f, path)
	}
	read, err := reader(in, opts)
	if err != nil {
		return nil, err
	}
	src, err := convert.OpenSource(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := read(src.Data)
	if err != nil {
		return nil, err
	}
	for _, t := range m.Tensors {
		s.Tensors = append(s.Tensors, summarize(t.Name, t.DType.String(), t.Shape, t.Data))
	}
	return s, nil
}

// SummarizeFile digests every tensor of the open .swt file f, named path
// in the Summary: a file opened from any source (a URL through
// source/remote). Open f under a verify mode to have its chunk digests
// checked as it is read.
func SummarizeFile(f *decode.File, path string) (*Summary, error) {
	s := &Summary{Path: path, Format: SWT.String(), Tensors: []TensorSummary{}}
	for t := range f.All() {
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
