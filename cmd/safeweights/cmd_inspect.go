package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
)

func init() {
	var jsonOut bool
	c := &command{
		name:    "inspect",
		args:    "FILE [--json]",
		summary: "show a .swt file's header: tensors, metadata, digests, signatures",
		help: `Inspect reads the preamble, header and signature block of a .swt file and
prints them. It touches no tensor bytes, so it is instant on any file size;
it checks the header completely, but not the data digests or signatures
(use 'safeweights verify' for those). FILE "-" reads standard input (at most
1 GiB); an http(s) URL or s3://BUCKET/KEY is read with two range requests and no tensor byte.`,
		example: `  safeweights inspect model.swt
  safeweights inspect https://hub.example/acme/model.swt
  safeweights inspect --json model.swt | jq '.tensors[].name'
  cat model.swt | safeweights inspect -`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print JSON")
		},
	}
	c.run = func(e *env, args []string) error {
		jsonOut = false
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		if isShardIndex(pos[0]) { // shards.go
			return inspectIndex(e, pos[0], jsonOut)
		}
		f, err := openSWT(e, pos[0], true)
		if err != nil {
			return err
		}
		defer f.Close()
		info := describe(f, pos[0])
		if jsonOut {
			return writeInfoJSON(e.stdout, info, f)
		}
		printInfo(e.stdout, info, f)
		return nil
	}
	register(c)
}

type fileInfo struct {
	Path            string            `json:"path"`
	Size            int64             `json:"size"`
	Version         string            `json:"version"`
	Producer        string            `json:"producer"`
	DigestAlgorithm string            `json:"digest_algorithm"`
	ChunkSize       int64             `json:"chunk_size"`
	Alignment       int64             `json:"alignment"`
	Provenance      *provenanceInfo   `json:"provenance,omitempty"`
	Metadata        map[string]string `json:"metadata"`
	// TensorBytes is the sum of the tensors' canonical lengths, saturated
	// at the largest int64 (TensorBytesSaturated then says so): declared
	// sizes of a hostile file may overflow.
	TensorBytes          int64           `json:"tensor_bytes"`
	TensorBytesSaturated bool            `json:"tensor_bytes_saturated,omitempty"`
	NumTensors           int             `json:"-"`
	Signatures           []signatureInfo `json:"signatures"`
	// The tensors are not held here: they are written one by one from the
	// decoded header, so memory stays within a small factor of the header.
}

type provenanceInfo struct {
	SourceFormat string            `json:"source_format"`
	SourceSHA256 string            `json:"source_sha256,omitempty"`
	Converter    string            `json:"converter"`
	Notes        map[string]string `json:"notes,omitempty"`
}

type tensorInfo struct {
	Name        string            `json:"name"`
	DType       string            `json:"dtype"`
	Shape       []int64           `json:"shape"`
	Bytes       int64             `json:"bytes"`
	StoredBytes int64             `json:"stored_bytes"`
	Compression string            `json:"compression"`
	Offset      int64             `json:"offset"`
	Chunks      int               `json:"chunks"`
	Attributes  map[string]string `json:"attributes,omitempty"`
}

type signatureInfo struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	// Timestamp is RFC 3339, only when the year is 0 to 9999;
	// TimestampUnix is the stored integer, always.
	Timestamp     string `json:"timestamp,omitempty"`
	TimestampUnix int64  `json:"timestamp_unix"`
	Comment       string `json:"comment,omitempty"`
}

func describe(f *decode.File, path string) *fileInfo {
	p := f.Preamble()
	info := &fileInfo{
		Path:            path,
		Size:            f.Size(),
		Version:         fmt.Sprintf("%d.%d", p.VersionMajor, p.VersionMinor),
		Producer:        f.Producer(),
		DigestAlgorithm: f.DigestAlgorithm().String(),
		ChunkSize:       f.ChunkSize(),
		Alignment:       f.Alignment(),
		Metadata:        f.Metadata(),
		NumTensors:      f.NumTensors(),
		Signatures:      []signatureInfo{},
	}
	if info.Metadata == nil {
		info.Metadata = map[string]string{}
	}
	if pv, ok := f.Provenance(); ok {
		pi := &provenanceInfo{SourceFormat: pv.SourceFormat, Converter: pv.Converter, SourceSHA256: hex.EncodeToString(pv.SourceSHA256)}
		if len(pv.Notes) > 0 {
			pi.Notes = map[string]string{}
			for _, kv := range pv.Notes {
				pi.Notes[kv.Key] = kv.Value
			}
		}
		info.Provenance = pi
	}
	for t := range f.All() {
		if t.Length > math.MaxInt64-info.TensorBytes {
			info.TensorBytes, info.TensorBytesSaturated = math.MaxInt64, true
			break
		}
		info.TensorBytes += t.Length
	}
	if _, entries := f.SignatureBlock(); entries != nil {
		for _, s := range entries {
			alg := fmt.Sprintf("unknown(%d)", s.Algorithm)
			if s.Algorithm == 1 {
				alg = "ed25519"
			}
			info.Signatures = append(info.Signatures, signatureInfo{
				KeyID: sign.KeyID(s.KeyID).String(), Algorithm: alg,
				Timestamp: rfc3339(s.Timestamp), TimestampUnix: s.Timestamp, Comment: s.Comment,
			})
		}
	}
	return info
}

func tensorOf(t *decode.Tensor) tensorInfo {
	shape := t.Shape
	if shape == nil {
		shape = []int64{}
	}
	return tensorInfo{
		Name: t.Name, DType: t.DType.String(), Shape: shape, Bytes: t.Length, StoredBytes: t.StoredLength,
		Compression: t.Compression.String(), Offset: t.Offset, Chunks: t.NumChunks(), Attributes: t.Attributes,
	}
}

// writeInfoJSON writes info with the tensors of f streamed between its
// fields, one tensor encoded at a time: no list of every tensor is built.
func writeInfoJSON(w io.Writer, info *fileInfo, f *decode.File) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	// head is {...}: insert "tensors" before its closing brace.
	bw.Write(head[:len(head)-2])
	bw.WriteString(",\n  \"tensors\": [")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("    ", "  ")
	i := 0
	for t := range f.All() {
		buf.Reset()
		if err := enc.Encode(tensorOf(t)); err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(bytes.TrimRight(buf.Bytes(), "\n"))
		i++
	}
	if i > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}

func printInfo(w io.Writer, info *fileInfo, f *decode.File) {
	fmt.Fprintf(w, "file:        %s (%s)\n", info.Path, humanBytes(info.Size))
	fmt.Fprintf(w, "format:      safeweights %s\n", info.Version)
	fmt.Fprintf(w, "producer:    %s\n", clean(info.Producer))
	fmt.Fprintf(w, "digests:     %s, chunk size %s\n", info.DigestAlgorithm, humanBytes(info.ChunkSize))
	fmt.Fprintf(w, "alignment:   %d\n", info.Alignment)
	if pv := info.Provenance; pv != nil {
		fmt.Fprintf(w, "converted:   from %s by %s\n", clean(pv.SourceFormat), clean(pv.Converter))
		if pv.SourceSHA256 != "" {
			fmt.Fprintf(w, "source:      sha256 %s\n", pv.SourceSHA256)
		}
	}
	if len(info.Metadata) > 0 {
		fmt.Fprintf(w, "metadata:    %d keys\n", len(info.Metadata))
		keys := make([]string, 0, len(info.Metadata))
		for k := range info.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", clean(k), clean(abbreviate(info.Metadata[k], 72)))
		}
	}
	total := humanBytes(info.TensorBytes)
	if info.TensorBytesSaturated {
		total = "over " + total + " (declared sizes overflow)"
	}
	fmt.Fprintf(w, "tensors:     %d, %s\n", info.NumTensors, total)
	for tt := range f.All() {
		t := tensorOf(tt)
		extra := ""
		if t.Compression != "none" && t.Compression != "" {
			extra = fmt.Sprintf("  %s, %s stored", t.Compression, humanBytes(t.StoredBytes))
		}
		fmt.Fprintf(w, "  %-40s %-8s %-16s %10s%s\n", clean(t.Name), t.DType, shapeString(t.Shape), humanBytes(t.Bytes), extra)
	}
	if len(info.Signatures) == 0 {
		fmt.Fprintln(w, "signatures:  none")
		return
	}
	fmt.Fprintf(w, "signatures:  %d (not checked; run 'safeweights verify --trusted KEYS FILE')\n", len(info.Signatures))
	for _, s := range info.Signatures {
		ts := s.Timestamp
		if ts == "" {
			ts = fmt.Sprintf("@%d (outside years 0-9999)", s.TimestampUnix)
		}
		fmt.Fprintf(w, "  %s key %s  %s", s.Algorithm, s.KeyID[:16], ts)
		if s.Comment != "" {
			fmt.Fprintf(w, "  %q", abbreviate(s.Comment, 60))
		}
		fmt.Fprintln(w)
	}
}

// abbreviate shortens long metadata values (the model structure is a JSON
// document) for the terminal; --json prints them whole.
func abbreviate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
}
