package auto

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/fixtures"
)

const sample = "../../cmd/safeweights/sample/mlp.bson"

func safetensorsBytes(t testing.TB) []byte {
	t.Helper()
	var b bytesBuffer
	err := safetensors.Write(&b, []convert.Tensor{{Name: "w", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 8)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

func TestDetect(t *testing.T) {
	bsonData, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	jld2Header := make([]byte, 600)
	copy(jld2Header, "HDF5-based Julia Data Format, version 0.2.4\x00")
	copy(jld2Header[512:], hdf5Magic)
	plainHDF5 := append([]byte(nil), hdf5Magic...)
	userBlock := make([]byte, 520)
	copy(userBlock[512:], hdf5Magic)

	plainBSON := make([]byte, 16) // {"a": int32 1}: BSON, but not BSON.jl
	binary.LittleEndian.PutUint32(plainBSON, 12)
	plainBSON = append(plainBSON[:4], 0x10, 'a', 0, 1, 0, 0, 0, 0)

	wrongLen := append([]byte(nil), bsonData...)
	binary.LittleEndian.PutUint32(wrongLen, uint32(len(wrongLen)+1))

	hugeHeader := safetensorsBytes(t)
	binary.LittleEndian.PutUint64(hugeHeader, 1<<40)

	userBlock2048 := make([]byte, 2056)
	copy(userBlock2048[2048:], hdf5Magic)
	damagedJLD2 := append([]byte(nil), jld2Header...)
	copy(damagedJLD2[512:], "\x89HDF\n\x1a\n")
	damagedJLD2 = damagedJLD2[1:] // not at 0 or 512 any more

	for _, tc := range []struct {
		name string
		data []byte
		want Format
		kind error // for Unknown, the kind that names the file
	}{
		{"hdf5-at-2048", userBlock2048, JLD2, nil},
		{"julia-serialization", append([]byte("7JL\x0c\x04\x00\x00\x00"), bsonData...), Unknown, convert.ErrJuliaSerialization},
		{"hdf5-signature-text-mode", damagedJLD2, Unknown, convert.ErrTextMode},
		{"swt-magic", append(format.Magic[:], make([]byte, 120)...), SWT, nil},
		{"safetensors", safetensorsBytes(t), Safetensors, nil},
		{"bson.jl-sample", bsonData, BSON, nil},
		{"jld2-text-header", jld2Header, JLD2, nil},
		{"hdf5-at-0", plainHDF5, JLD2, nil},
		{"hdf5-at-512", userBlock, JLD2, nil},
		{"plain-bson-no-tags", plainBSON, Unknown, nil},
		{"bson-length-not-file-size", wrongLen, Unknown, nil},
		{"safetensors-header-past-eof", hugeHeader, Unknown, nil},
		{"empty", nil, Unknown, nil},
		{"text", []byte("hello, world\n"), Unknown, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(tc.data)
			if got != tc.want {
				t.Fatalf("Detect = %v, want %v", got, tc.want)
			}
			if (tc.want == Unknown) != errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("err = %v", err)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want also %v", err, tc.kind)
			}
		})
	}
}

// TestDetectNewFixtures: the Julia Serialization stream named .bson is
// named as one; the other new files are recognised by their content.
func TestDetectNewFixtures(t *testing.T) {
	root := fixtures.Require(t, "new")
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.*"))
	for _, p := range files {
		ext := filepath.Ext(p)
		if ext != ".bson" && ext != ".jld2" {
			continue
		}
		got, err := DetectFile(p)
		switch {
		case filepath.Base(p) == "julia_serialization_jls_named_bson_mlj.bson":
			if !errors.Is(err, convert.ErrJuliaSerialization) {
				t.Errorf("%s: %v, %v; want ErrJuliaSerialization", filepath.Base(p), got, err)
			}
		case err != nil || got.String() != map[string]string{".bson": "bson.jl", ".jld2": "jld2"}[ext]:
			t.Errorf("%s: %v, %v", filepath.Base(p), got, err)
		}
	}
}

// TestDetectFixtures checks that every real checkpoint is recognised by its
// content.
func TestDetectFixtures(t *testing.T) {
	root := fixtures.Require(t, "")
	for dir, want := range map[string]Format{"flux-bson": BSON, "flux-jld2": JLD2} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*."+map[Format]string{BSON: "bson", JLD2: "jld2"}[want]))
		if len(files) == 0 {
			t.Skip("fixtures not present")
		}
		for _, p := range files {
			got, err := DetectFile(p)
			if err != nil || got != want {
				t.Errorf("%s: %v, %v; want %v", filepath.Base(p), got, err, want)
			}
		}
	}
}

func TestConvertAndDiff(t *testing.T) {
	dir := t.TempDir()
	swt := filepath.Join(dir, "mlp.swt")
	rep, err := Convert(context.Background(), sample, swt)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) != 4 {
		t.Fatalf("%d tensors, want 4", len(rep.Tensors))
	}
	if f, err := DetectFile(swt); err != nil || f != SWT {
		t.Fatalf("DetectFile(out) = %v, %v", f, err)
	}
	st := filepath.Join(dir, "mlp.safetensors")
	if _, err := Convert(context.Background(), swt, st); err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(context.Background(), swt, filepath.Join(dir, "again.swt")); !errors.Is(err, ErrSameFormat) {
		t.Fatalf("swt to swt: %v", err)
	}
	var sums []*Summary
	for _, p := range []string{sample, swt, st} {
		s, err := Summarize(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		sums = append(sums, s)
	}
	for _, s := range sums[1:] {
		if d := Diff(sums[0], s); !d.Equal() || d.Unchanged != 4 {
			t.Errorf("%s differs from the source: %+v", s.Format, d)
		}
	}
	// A changed and a removed tensor.
	b := *sums[1]
	b.Tensors = append([]TensorSummary(nil), b.Tensors[1:]...)
	b.Tensors[0].SHA256 = "00"
	b.Tensors[1].Shape = []int64{1}
	b.Tensors = append(b.Tensors, TensorSummary{Name: "new"})
	d := Diff(sums[1], &b)
	if len(d.Removed) != 1 || len(d.Added) != 1 || len(d.Changed) != 2 || d.Unchanged != 1 {
		t.Fatalf("diff = %+v", d)
	}
}

func TestConvertUnknown(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.bson") // the name says BSON, the bytes do not
	if err := os.WriteFile(p, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(context.Background(), p, filepath.Join(dir, "out.swt")); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.swt")); !os.IsNotExist(err) {
		t.Fatal("output left behind")
	}
}

func FuzzDetect(f *testing.F) {
	if b, err := os.ReadFile(sample); err == nil {
		f.Add(b)
	}
	f.Add(safetensorsBytes(f))
	f.Add(append(format.Magic[:], 0))
	f.Add([]byte("HDF5-based Julia Data Format"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Detect(data)
		if (got == Unknown) != (err != nil) {
			t.Fatalf("Detect = %v, %v", got, err)
		}
		// A prefix never gives another answer than the whole file, when the
		// whole file's size is known.
		if len(data) > 16 {
			if p, _ := DetectPrefix(data[:len(data)/2], int64(len(data))); p != Unknown && p != got {
				t.Fatalf("prefix says %v, file says %v", p, got)
			}
		}
	})
}
