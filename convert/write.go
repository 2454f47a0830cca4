package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"
	"sort"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// Version is the converters' version, recorded in provenance.
const Version = "0.1"

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
// summary as metadata, and the provenance (spec/CONVERSION.md sections 4, 5).
// src may be nil; then no source digest is recorded. Nothing is left at dst
// on failure.
func WriteFile(dst string, m *Model, src *Source, opts ...encode.Option) error {
	prov := format.Provenance{
		SourceFormat: m.SourceFormat,
		Converter:    "safeweights/convert/" + m.SourceFormat + " " + Version,
	}
	for k, v := range m.Report.Versions {
		prov.Notes = append(prov.Notes, format.KeyValue{Key: "version." + k, Value: v})
	}
	w, err := encode.Create(dst, opts...)
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
	for i := range m.Tensors {
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
	}
	if src != nil {
		sum := src.SHA256()
		prov.SourceSHA256 = sum[:]
	}
	if err := w.SetProvenance(prov); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
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
// dst, filling in the report's source, output and tensor list.
func Convert(srcPath, dst string, read func(data []byte) (*Model, error), opts ...encode.Option) (*Report, error) {
	src, err := OpenSource(srcPath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := read(src.Data)
	if err != nil {
		return nil, err
	}
	if err := WriteFile(dst, m, src, opts...); err != nil {
		return nil, err
	}
	r := m.Report
	r.Source = srcPath
	r.Output = dst
	r.SourceFormat = m.SourceFormat
	sum := src.SHA256()
	r.SourceSHA256 = hex.EncodeToString(sum[:])
	r.Converter = "safeweights/convert/" + m.SourceFormat + " " + Version
	r.Tensors = r.Tensors[:0]
	for _, t := range m.Tensors {
		r.Tensors = append(r.Tensors, ReportTensor{Name: t.Name, DType: t.DType.String(), Shape: t.Shape, Bytes: int64(len(t.Data)), Aliases: t.Aliases, Role: t.Role})
	}
	if r.Dropped == nil {
		r.Dropped = []Dropped{}
	}
	sort.SliceStable(r.Dropped, func(i, j int) bool { return r.Dropped[i].Path < r.Dropped[j].Path })
	return &r, nil
}
