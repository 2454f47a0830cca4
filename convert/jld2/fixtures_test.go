package jld2

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// fixtureDir finds ../shared/fixtures/flux-jld2 next to the module root.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found")
		}
		dir = parent
	}
	fx := filepath.Join(dir, "..", "shared", "fixtures", "flux-jld2")
	if _, err := os.Stat(fx); err != nil {
		t.Skip("fixtures absent: ", fx)
	}
	return fx
}

type manifest struct {
	Tensors []struct {
		Name      string   `json:"name"`
		Eltype    string   `json:"eltype"`
		HDF5Shape []int64  `json:"hdf5_shape"`
		SHA256    string   `json:"sha256"`
		Aliases   []string `json:"aliases"`
	} `json:"tensors"`
}

var eltypes = map[string]string{
	"Float64": "F64", "Float32": "F32", "Float16": "F16", "Int64": "I64", "Int32": "I32",
	"Int16": "I16", "Int8": "I8", "UInt64": "U64", "UInt32": "U32", "UInt16": "U16",
	"UInt8": "U8", "Bool": "BOOL", "ComplexF32": "C64", "ComplexF64": "C128",
}

// nameKey compares names by their parts (the manifest spells parts
// unescaped, joined with ".").
func nameKey(s string) string { return s }

// TestFixtures reads every JLD2 fixture: every manifest tensor must come
// out once with its dtype, row-major shape and SHA-256. The manifests list
// weights only (no optimiser state), which is what Read keeps by default.
func TestFixtures(t *testing.T) {
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.jld2"))
	if len(files) == 0 {
		t.Skip("no fixtures")
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".jld2")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var man manifest
			mb, err := os.ReadFile(filepath.Join(dir, name+".manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(mb, &man); err != nil {
				t.Fatal(err)
			}
			m, err := Read(data, Options{})
			if strings.Contains(name, "cuarray_gpu") {
				if !errors.Is(err, convert.ErrNoWeights) {
					t.Fatalf("GPU file: got %v, want ErrNoWeights", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*convert.Tensor{}
			for i := range m.Tensors {
				tt := &m.Tensors[i]
				if _, dup := got[tt.Name]; dup {
					t.Fatalf("tensor %s twice", tt.Name)
				}
				got[tt.Name] = tt
			}
			if len(m.Tensors) != len(man.Tensors) {
				var names []string
				for _, tt := range m.Tensors {
					names = append(names, tt.Name)
				}
				t.Errorf("%d tensors, manifest has %d: %v", len(m.Tensors), len(man.Tensors), names)
			}
			for _, want := range man.Tensors {
				tt := got[nameKey(want.Name)]
				if tt == nil {
					t.Errorf("missing %s", want.Name)
					continue
				}
				if tt.DType.String() != eltypes[want.Eltype] {
					t.Errorf("%s: dtype %v, want %s", want.Name, tt.DType, want.Eltype)
				}
				if !slices.Equal(tt.Shape, want.HDF5Shape) {
					t.Errorf("%s: shape %v, want %v", want.Name, tt.Shape, want.HDF5Shape)
				}
				sum := sha256.Sum256(tt.Data)
				if hex.EncodeToString(sum[:]) != want.SHA256 {
					t.Errorf("%s: sha256 mismatch", want.Name)
				}
				if len(want.Aliases) > 0 {
					a := slices.Clone(tt.Aliases)
					w := slices.Clone(want.Aliases)
					slices.Sort(a)
					slices.Sort(w)
					if !slices.Equal(a, w) {
						t.Errorf("%s: aliases %v, want %v", want.Name, tt.Aliases, want.Aliases)
					}
				}
			}
			if _, err := json.Marshal(m.Structure); err != nil {
				t.Fatal(err)
			}
		})
	}
}
