package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen"
)

// ConverterName is how provenance, conversion reports and 'safeweights
// version' name a converter of this module: the package and its version,
// such as "safeweights/convert/bson 1.1". Each converter package declares
// its Version once and its Converter as ConverterName would build it.
func ConverterName(pkg, version string) string {
	return "safeweights/convert/" + pkg + " " + version
}

// Source is a source file mapped read-only. Its SHA-256 is computed in the
// background from the moment it is opened, so that hashing overlaps reading
// and writing instead of adding a pass over the file.
type Source struct {
	Path  string
	Data  []byte
	close func() error
	sum   chan struct{} // closed when sha256 is set
	sha   [32]byte
}

// SHA256 returns the SHA-256 of the source file, waiting for it if needed.
func (s *Source) SHA256() [32]byte {
	<-s.sum
	return s.sha
}

// NewSource wraps bytes already in memory as a Source.
func NewSource(path string, data []byte) *Source {
	s := &Source{Path: path, Data: data, sum: make(chan struct{})}
	go func() {
		s.sha = sha256.Sum256(data)
		close(s.sum)
	}()
	return s
}

// Close releases the mapping. Tensor data taken from Data must not be used
// after Close.
func (s *Source) Close() error {
	<-s.sum // the hashing goroutine reads the mapping
	if s.close == nil {
		return nil
	}
	c := s.close
	s.close = nil
	return c()
}

// OpenSource maps path read-only and hashes it. Files that cannot be mapped
// are read into memory.
func OpenSource(path string) (*Source, error) {
	f, st, err := safeopen.Open(path) // a FIFO is refused, never waited on
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer f.Close()
	data, unmap, err := mapFile(f, st.Size())
	if err != nil || data == nil {
		if data, err = io.ReadAll(f); err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		unmap = nil
	}
	s := NewSource(path, data)
	s.close = unmap
	return s, nil
}

// WriteFile writes m to dst as a safeweights file: the tensors in order, the
// aliases as the attribute "aliases" (rule N8), the structure and a report
// summary as metadata, and the provenance (spec/CONVERSION.md sections 4, 5),
// which names the converter by m.Report.Converter. src may be nil; then no
// source digest is recorded.
//
// Of opts, WriteFile uses WithEncodeOptions and WithProgress. ctx is checked
// before each tensor: once it is done, WriteFile stops and returns its
// error, wrapped. Nothing is left at dst on failure or cancellation.
func WriteFile(ctx context.Context, dst string, m *Model, src *Source, opts ...Option) error {
	s, err := NewSettings(opts...)
	if err != nil {
		return err
	}
	return writeFile(ctx, dst, m, src, s)
}

func writeFile(ctx context.Context, dst string, m *Model, src *Source, s *Settings) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	prov := format.Provenance{
		SourceFormat: m.SourceFormat,
		Converter:    m.Report.Converter,
	}
	for k, v := range m.Report.Versions {
		prov.Notes = append(prov.Notes, format.KeyValue{Key: "version." + k, Value: v})
	}
	w, err := encode.Create(dst, s.Encode...)
	if err != nil {
		return err
	}
	for k, v := range m.Metadata {
		if err := w.SetMetadata(k, v); err != nil {
			w.Abort()
			return err
		}
	}
	if m.Structure != nil {
		js, err := json.Marshal(m.Structure)
		if err != nil {
			w.Abort()
			return fmt.Errorf("convert: structure: %w", err)
		}
		w.SetMetadata(MetaStructure, string(js)) // JSON is UTF-8
	}
	js, err := json.Marshal(reportSummary(&m.Report))
	if err != nil {
		w.Abort()
		return fmt.Errorf("convert: report: %w", err)
	}
	w.SetMetadata(MetaReport, string(js)) // JSON is UTF-8
	var done, total int64
	for i := range m.Tensors {
		total += int64(len(m.Tensors[i].Data))
	}
	progress(s, 0, total)
	for i := range m.Tensors {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return fmt.Errorf("convert: %w", err)
		}
		t := &m.Tensors[i]
		var topts []encode.TensorOption
		if len(t.Aliases) > 0 {
			a, _ := json.Marshal(t.Aliases)
			topts = append(topts, encode.Attribute("aliases", string(a)))
		}
		if t.Role != RoleParameter {
			topts = append(topts, encode.Attribute("role", t.Role))
		}
		if err := w.Add(t.Name, t.DType, t.Shape, t.Data, topts...); err != nil {
			w.Abort()
			return err
		}
		done += int64(len(t.Data))
		progress(s, done, total)
	}
	if src != nil {
		sum := src.SHA256()
		prov.SourceSHA256 = sum[:]
	}
	if err := w.SetProvenance(prov); err != nil {
		w.Abort()
		return err
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return fmt.Errorf("convert: %w", err)
	}
	return w.Close()
}

func progress(s *Settings, done, total int64) {
	if s.Progress != nil {
		s.Progress(done, total)
	}
}

type summary struct {
	Dropped  map[string]int    `json:"dropped"`
	Versions map[string]string `json:"versions,omitempty"`
	HasCode  bool              `json:"has_code"`
	Warnings int               `json:"warnings,omitempty"`
}

func reportSummary(r *Report) summary {
	s := summary{Dropped: map[string]int{}, Versions: r.Versions, HasCode: r.HasCode, Warnings: len(r.Warnings)}
	for _, d := range r.Dropped {
		s.Dropped[d.Kind]++
	}
	return s
}

// Convert runs read over the mapped source file and writes the result to
// dst with WriteFile, returning the completed report (CompleteReport). It
// is what each converter's Convert does with its own reader; read has
// already taken the options it needs. ctx is checked before the source is
// read and between tensors; a cancelled conversion returns ctx's error,
// wrapped, and leaves nothing at dst.
func Convert(ctx context.Context, srcPath, dst string, read func(data []byte) (*Model, error), opts ...Option) (*Report, error) {
	s, err := NewSettings(opts...)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	src, err := OpenSource(srcPath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := read(src.Data)
	if err != nil {
		return nil, err
	}
	if err := writeFile(ctx, dst, m, src, s); err != nil {
		return nil, err
	}
	return CompleteReport(m, srcPath, dst, src), nil
}

// CompleteReport returns m's report with what the writer knows filled in:
// the source and output paths, the source's SHA-256 (src may be nil), the
// tensors written, and the dropped items sorted by path.
func CompleteReport(m *Model, srcPath, dst string, src *Source) *Report {
	r := m.Report
	r.Source = srcPath
	r.Output = dst
	r.SourceFormat = m.SourceFormat
	if src != nil {
		sum := src.SHA256()
		r.SourceSHA256 = hex.EncodeToString(sum[:])
	}
	r.Tensors = make([]ReportTensor, 0, len(m.Tensors))
	for _, t := range m.Tensors {
		r.Tensors = append(r.Tensors, ReportTensor{Name: t.Name, DType: t.DType.String(), Shape: t.Shape, Bytes: int64(len(t.Data)), Aliases: t.Aliases, Role: t.Role})
	}
	r.Dropped = append([]Dropped{}, r.Dropped...)
	sort.SliceStable(r.Dropped, func(i, j int) bool { return r.Dropped[i].Path < r.Dropped[j].Path })
	return &r
}
