package jld2

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"

	"github.com/safeweights/safeweights/internal/fixtures"
)

// fixtureDir returns the shared Flux JLD2 fixtures, or skips the test.
func fixtureDir(t testing.TB) string { return fixtures.Require(t, "flux-jld2") }

type manifest struct {
	Tensors []struct {
		Name      string   `json:"name"`
		Eltype    string   `json:"eltype"`
		HDF5Shape []int64  `json:"hdf5_shape"`
		SHA256    string   `json:"sha256"`
		Aliases   []string `json:"aliases"`
	} `json:"tensors"`
	JuliaTree map[string]any `json:"julia_tree"`
}

var eltypes = map[string]string{
	"Float64": "F64", "Float32": "F32", "Float16": "F16", "Int64": "I64", "Int32": "I32",
	"Int16": "I16", "Int8": "I8", "UInt64": "U64", "UInt32": "U32", "UInt16": "U16",
	"UInt8": "U8", "Bool": "BOOL", "ComplexF32": "C64", "ComplexF64": "C128",
}

// manifestName maps a manifest tensor name to the converter's name.
//
// The two differ only at dictionaries. JLD2 writes a Dict (and an IdDict,
// such as the one inside Zygote's Params) as a vector of Pairs, and the
// manifest tool names what it holds by that stored form: pair i, then
// "first" for the key or "second" for the value (SAD.1.second.R,
// params.dict.3.first). The converter follows CONVERSION.md N5, as the
// BSON converter does, so that a model gets the same names from either
// format: the value of pair i is entry<i> and its key key<i>
// (SAD.entry1.R, params.dict.key3); a string or symbol key would name the
// value by its text instead. The manifest's julia_tree tells which nodes
// are vectors of pairs and what their keys are.
func manifestName(tree map[string]any, name string) string {
	return mapManifest(tree, name).name
}

// mapped is a manifest tensor as the rules of CONVERSION.md see it.
type mapped struct {
	name string
	// drop is the drop kind of an array the converter does not keep by
	// default (gradient, optimizer-state), or "".
	drop string
	// dtype and shape, when set, replace the manifest's: the bytes of an
	// array kept as a byte buffer (N11) have its element type and size.
	dtype string
	shape []int64
}

// mapManifest maps a manifest name to the converter's, by the rules that
// depend on the types along its path: parameter wrappers are transparent
// and their gradients and optimiser state dropped (N7, N9), a byte buffer
// array is the typed array (N11), legacy field names are renamed (N3a),
// and dictionaries are named by N5 (see manifestName).
func mapManifest(tree map[string]any, name string) mapped {
	var r mapped
	parts := strings.Split(name, ".")
	node, _ := tree[parts[0]].(map[string]any)
	out := []string{parts[0]}
	for i := 1; i < len(parts); {
		typ, _ := node["julia_type"].(string)
		base := convert.TypeName(typ)
		if convert.IsOptimiser(base) && r.drop == "" {
			r.drop = convert.DropOptimizer
		}
		if wr, ok := convert.WrapperOf(base); ok {
			fields, _ := node["fields"].(map[string]any)
			next, _ := fields[parts[i]].(map[string]any)
			switch {
			case parts[i] == wr.Value:
			case slices.Contains(wr.Gradient, parts[i]) && r.drop == "":
				r.drop = convert.DropGradient
				out = append(out, parts[i])
			case slices.Contains(wr.Optimizer, parts[i]) && r.drop == "":
				r.drop = convert.DropOptimizer
				out = append(out, parts[i])
			default:
				out = append(out, parts[i])
			}
			node = next
			i++
			continue
		}
		if convert.BufferArray(base) && parts[i] == "ptr" && i+1 < len(parts) && parts[i+1] == "ptr" {
			ps := convert.TypeParams(typ)
			d, _ := convert.ElementType(ps[0])
			r.dtype = d.String()
			fields, _ := node["fields"].(map[string]any)
			dims, _ := fields["dims"].(map[string]any)["fields"].(map[string]any)
			for j := len(dims); j >= 1; j-- {
				v, _ := dims[strconv.Itoa(j)].(map[string]any)["value"].(float64)
				r.shape = append(r.shape, int64(v))
			}
			break
		}
		if fields, ok := node["fields"].(map[string]any); ok && base == "Flux.Dense" {
			switch parts[i] {
			case "W":
				parts[i], fields["weight"] = "weight", fields["W"]
			case "b":
				parts[i], fields["bias"] = "bias", fields["b"]
			}
		}
		elems, _ := node["elements"].([]any)
		if isPairVector(elems) && i+1 < len(parts) && (parts[i+1] == "first" || parts[i+1] == "second") {
			idx, err := strconv.Atoi(parts[i])
			if err != nil || idx < 1 || idx > len(elems) {
				return mapped{name: name}
			}
			fields, _ := elems[idx-1].(map[string]any)["fields"].(map[string]any)
			key, _ := fields["first"].(map[string]any)
			if parts[i+1] == "first" {
				out = append(out, "key"+parts[i])
				node = key
			} else {
				if k := key["kind"]; k == "string" || k == "symbol" {
					out = append(out, fmt.Sprint(key["value"]))
				} else {
					out = append(out, "entry"+parts[i])
				}
				node, _ = fields["second"].(map[string]any)
			}
			i += 2
			continue
		}
		var next map[string]any
		if fields, ok := node["fields"].(map[string]any); ok {
			next, _ = fields[parts[i]].(map[string]any)
		} else if idx, err := strconv.Atoi(parts[i]); err == nil && idx >= 1 && idx <= len(elems) {
			next, _ = elems[idx-1].(map[string]any)
		}
		out = append(out, parts[i])
		node = next
		i++
	}
	r.name = strings.Join(out, ".")
	return r
}

func isPairVector(elems []any) bool {
	for _, e := range elems {
		m, _ := e.(map[string]any)
		if t, _ := m["julia_type"].(string); !strings.HasPrefix(t, "Core.Pair") {
			return false
		}
	}
	return len(elems) > 0
}

// TestFixtures reads every JLD2 fixture: every manifest tensor must come
// out once with its dtype, row-major shape and SHA-256. The manifests list
// weights only (no optimiser state), which is what Read keeps by default.
func TestFixtures(t *testing.T) {
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.jld2"))
	if len(files) == 0 {
		t.Skip("no fixtures")
	}
	// new/ holds real files added later; every one converts as well.
	more, _ := filepath.Glob(filepath.Join(fixtures.Dir("new/flux-jld2"), "*.jld2"))
	files = append(files, more...)
	for _, path := range files {
		dir := filepath.Dir(path)
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
			m, err := Read(data)
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
			dropped := map[string]string{}
			for _, d := range m.Report.Dropped {
				dropped[d.Path] = d.Kind
			}
			kept := 0
			for _, want := range man.Tensors {
				mp := mapManifest(man.JuliaTree, want.Name)
				if mp.drop != "" {
					// Dropped by default: reported at its path or at the
					// optimiser's (N7, N9).
					p := convert.NameSplit(mp.name)
					found := false
					for j := len(p); j > 0 && !found; j-- {
						found = dropped[convert.NameJoin(p[:j]...)] == mp.drop
					}
					if !found {
						t.Errorf("%s (%s) not reported as %s", want.Name, mp.name, mp.drop)
					}
					continue
				}
				kept++
				tt := got[mp.name]
				if tt == nil {
					t.Errorf("missing %s (%s)", want.Name, mp.name)
					continue
				}
				wantDT, wantShape := eltypes[want.Eltype], want.HDF5Shape
				if mp.dtype != "" {
					wantDT, wantShape = mp.dtype, mp.shape
				}
				if tt.DType.String() != wantDT {
					t.Errorf("%s: dtype %v, want %s", want.Name, tt.DType, wantDT)
				}
				if !slices.Equal(tt.Shape, wantShape) {
					t.Errorf("%s: shape %v, want %v", want.Name, tt.Shape, wantShape)
				}
				sum := sha256.Sum256(tt.Data)
				if hex.EncodeToString(sum[:]) != want.SHA256 {
					t.Errorf("%s: sha256 mismatch", want.Name)
				}
				if len(want.Aliases) > 0 {
					a := slices.Clone(tt.Aliases)
					var w []string
					for _, a := range want.Aliases {
						w = append(w, manifestName(man.JuliaTree, a))
					}
					slices.Sort(a)
					slices.Sort(w)
					if !slices.Equal(a, w) {
						t.Errorf("%s: aliases %v, want %v", want.Name, tt.Aliases, want.Aliases)
					}
				}
			}
			for _, want := range tupleFunctions(man.JuliaTree, nil) {
				if dropped[want] != convert.DropFunction {
					t.Errorf("function at %s not reported there", want)
				}
			}
			if len(m.Tensors) != kept {
				var names []string
				for _, tt := range m.Tensors {
					names = append(names, tt.Name)
				}
				t.Errorf("%d tensors, manifest has %d kept by default: %v", len(m.Tensors), kept, names)
			}
			if _, err := json.Marshal(m.Structure); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// tupleFunctions returns the paths of the functions among the elements of
// the tuples in the manifest's tree that the tree has no node for (old
// files store nothing for a function): element i of a Core.Tuple is its
// type parameter i.
func tupleFunctions(tree map[string]any, path []string) []string {
	var out []string
	for k, v := range tree {
		n, ok := v.(map[string]any)
		if !ok {
			continue
		}
		p := append(slices.Clip(path), k)
		typ, _ := n["julia_type"].(string)
		fields, _ := n["fields"].(map[string]any)
		if strings.HasPrefix(typ, "Core.Tuple{") {
			for i, param := range convert.TypeParams(typ) {
				idx := strconv.Itoa(i + 1)
				if _, present := fields[idx]; !present && !strings.Contains(param, "{") && strings.Contains(param, ".#") {
					out = append(out, convert.NameJoin(append(slices.Clip(p), idx)...))
				}
			}
		}
		out = append(out, tupleFunctions(fields, p)...)
		if elems, ok := n["elements"].([]any); ok {
			em := map[string]any{}
			for i, e := range elems {
				em[strconv.Itoa(i+1)] = e
			}
			out = append(out, tupleFunctions(em, p)...)
		}
	}
	return out
}
