package safetensors

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

func writeFile(t testing.TB, path string, tensors []convert.Tensor, meta map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) *convert.Model {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRoundTrip converts safetensors -> swt -> safetensors and checks that
// names, dtypes, shapes, tensor bytes and metadata come back, and that the
// .swt holds the same tensors.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for seed := uint64(0); seed < 4; seed++ {
		in := allDTypeTensors(seed)
		meta := map[string]string{"format": "pt", "x": "\"quoted\"\n"}
		src := filepath.Join(dir, "in.safetensors")
		swt := filepath.Join(dir, "mid.swt")
		out := filepath.Join(dir, "out.safetensors")
		writeFile(t, src, in, meta)

		rep, err := Convert(context.Background(), src, swt)
		if err != nil {
			t.Fatal(err)
		}
		if rep.SourceFormat != SourceFormat || len(rep.Tensors) != len(in) || len(rep.Dropped) != 0 {
			t.Fatalf("report: %+v", rep)
		}
		f, err := decode.Open(swt, decode.WithVerify(decode.VerifyEager))
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.Provenance(); !ok || p.SourceFormat != SourceFormat {
			t.Errorf("provenance %+v %v", p, ok)
		}
		var mid []convert.Tensor
		for tn := range f.All() {
			b, err := tn.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mid = append(mid, convert.Tensor{Name: tn.Name, DType: tn.DType, Shape: tn.Shape, Data: b})
		}
		compareTensors(t, in, mid)
		if err := Export(context.Background(), f, out); err != nil {
			t.Fatal(err)
		}
		// Export streams its header; it must lay the file out byte for
		// byte as Write does from the same tensors.
		var want bytes.Buffer
		if err := Write(&want, mid, f.Metadata()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("Export wrote %d bytes that differ from Write's %d (%v)", len(got), want.Len(), err)
		}

		m := readFile(t, out)
		compareTensors(t, in, m.Tensors)
		for k, v := range meta {
			if m.Metadata[k] != v {
				t.Errorf("metadata %q = %q, want %q", k, m.Metadata[k], v)
			}
		}
	}
}

// TestExportCompressedAndUnmapped exports a .swt with zstd tensors, both
// mapped and through an io.ReaderAt, and gets the canonical bytes back.
func TestExportCompressedAndUnmapped(t *testing.T) {
	dir := t.TempDir()
	swt := filepath.Join(dir, "c.swt")
	in := allDTypeTensors(9)
	w, err := encode.Create(swt, encode.WithMetadata(map[string]string{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range in {
		var o []encode.TensorOption
		if i%2 == 0 {
			o = append(o, encode.Compress(1))
		}
		if err := w.Add(tn.Name, tn.DType, tn.Shape, tn.Data, o...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "mapped.safetensors")
	if err := ExportFile(context.Background(), swt, out); err != nil {
		t.Fatal(err)
	}
	m := readFile(t, out)
	compareTensors(t, in, m.Tensors)
	if m.Metadata["k"] != "v" {
		t.Errorf("metadata %v", m.Metadata)
	}

	fh, err := os.Open(swt)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	f, err := decode.NewReader(fh, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "reader.safetensors")
	if err := Export(context.Background(), f, out2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Error("mapped and reader exports differ")
	}
}

// TestExportRefusesC128 checks that a tensor safetensors cannot hold fails
// the export and leaves nothing behind.
func TestExportRefusesC128(t *testing.T) {
	dir := t.TempDir()
	swt := filepath.Join(dir, "c128.swt")
	w, err := encode.Create(swt)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("z", format.C128, []int64{1}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	if err := ExportFile(context.Background(), swt, out); !errors.Is(err, ErrExport) || !errors.Is(err, convert.ErrUnsupported) {
		t.Fatalf("got %v, want ErrExport", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

// TestConvertHostileLeavesNothing checks rule C4 for a rejected source.
func TestConvertHostileLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bad.safetensors")
	for _, c := range hostileFiles() {
		if err := os.WriteFile(src, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "out.swt")
		if _, err := Convert(context.Background(), src, dst, WithLimits(c.opts)); !errors.Is(err, c.want) {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.want)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatalf("%s: output left at dst", c.name)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}
