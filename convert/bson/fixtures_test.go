package bson

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/fixtures"
)

// fixtureDir returns the shared Flux BSON fixtures, or skips the test.
func fixtureDir(t testing.TB) string { return fixtures.Require(t, "flux-bson") }

type manifest struct {
	File string `json:"file"`
	// ParseError is set for a file that is not BSON at all.
	ParseError string `json:"parse_error"`
	Summary    struct {
		HasCode        bool     `json:"has_serialized_code"`
		JuliaVersions  []string `json:"julia_versions_seen"`
		GPUArraysNoDat int      `json:"gpu_arrays_without_data"`
	} `json:"summary"`
	Tensors []manifestTensor `json:"tensors"`
	Code    []struct {
		UsedAt string `json:"used_at"`
	} `json:"code"`
	GPUArrays []struct {
		Name     string `json:"name"`
		BSONPath string `json:"bson_path"`
	} `json:"gpu_arrays"`
	Datatypes map[string]int `json:"datatypes"`
}

type manifestTensor struct {
	Name    string   `json:"name"`
	EltType string   `json:"eltype"`
	DType   *string  `json:"dtype"`
	Shape   []int64  `json:"shape_row_major"`
	SHA256  string   `json:"sha256"`
	Aliases []string `json:"aliases"`
}

// manifestParts splits a manifest name ("model.layers[1].weight",
// `obj["name"]`) into its parts, mapped to the rules of spec/CONVERSION.md
// where the manifest tool names things differently:
//
//   - N5: the tool names the key and value arrays of a Dict stored as
//     [keys, vals] by their field, "dict.keys[3]" and "dict.vals[3]"; N5
//     names key i "key<i>" and value i "entry<i>" (a value with a string or
//     symbol key is named by the key, as the tool does with `d["name"]`).
//   - N3a: the tool uses the stored field names of each Flux version; the
//     table names Dense's legacy W and b weight and bias. Manifests of
//     Dense layers already say weight and bias, so nothing maps here.
func manifestParts(name string) []string {
	var parts []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.', '[', ']', '{', '}':
			flush()
		case '"', '#':
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	for j := 0; j+1 < len(parts); j++ {
		if _, err := strconv.Atoi(parts[j+1]); err != nil {
			continue
		}
		switch parts[j] {
		case "keys":
			parts = slices.Concat(parts[:j], []string{"key" + parts[j+1]}, parts[j+2:])
		case "vals":
			parts = slices.Concat(parts[:j], []string{"entry" + parts[j+1]}, parts[j+2:])
		}
	}
	return parts
}

// zeroSizeVals reports whether a manifest entry is the packed value array
// of a Dict whose values take no bytes (Zygote's IdSet stores an
// IdDict{Any,Nothing}): under N5 its entries are "nothing" nodes of the
// structure, neither tensors nor dropped.
func zeroSizeVals(mt manifestTensor) bool {
	return mt.EltType == "Nothing" && mt.SHA256 == emptySHA256 && strings.HasSuffix(mt.Name, ".vals")
}

func key(parts []string) string { return strings.Join(parts, "\x00") }

func TestFixtures(t *testing.T) {
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.bson"))
	if len(files) == 0 {
		t.Skip("no fixtures")
	}
	// new/ holds real files added later; every one converts as well.
	more, _ := filepath.Glob(filepath.Join(fixtures.Dir("new/flux-bson"), "*.bson"))
	files = append(files, more...)
	for _, f := range files {
		dir := filepath.Dir(f)
		base := strings.TrimSuffix(filepath.Base(f), ".bson")
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := os.ReadFile(filepath.Join(dir, base+".manifest.json"))
			if err != nil {
				t.Skip("no manifest")
			}
			var man manifest
			if err := json.Unmarshal(mb, &man); err != nil {
				t.Fatal(err)
			}
			if man.ParseError != "" {
				checkNotBSON(t, data)
				return
			}
			checkFixture(t, data, &man, false)
			checkFixture(t, data, &man, true)
		})
	}
}

func checkFixture(t *testing.T, data []byte, man *manifest, withOpt bool) {
	var opts []convert.Option
	if withOpt {
		opts = append(opts, convert.WithIncludeOptimizer())
	}
	m, err := Read(data, opts...)
	if len(man.GPUArrays) > 0 {
		if !errors.Is(err, convert.ErrNoWeights) {
			t.Fatalf("GPU-only file: error %v, want ErrNoWeights", err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T", err)
		}
		found := false
		for _, g := range man.GPUArrays {
			found = found || g.BSONPath == e.Path
		}
		if !found {
			t.Errorf("GPU error at %s, not one of the manifest's GPU arrays", e.Path)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	tracker := false
	for dt := range man.Datatypes {
		if strings.HasPrefix(dt, "Tracker.") || strings.HasPrefix(dt, "Flux.Tracker.") {
			tracker = true
		}
	}
	byName := map[string]int{}
	for i, x := range m.Tensors {
		for _, n := range append([]string{x.Name}, x.Aliases...) {
			byName[key(convert.NameSplit(n))] = i
		}
		if !within(x.Data, data) {
			t.Errorf("%s does not alias the input", x.Name)
		}
	}
	dropped := map[string]string{}
	dropCount := map[string]int{}
	for _, d := range m.Report.Dropped {
		dropped[key(convert.NameSplit(d.Path))] = d.Kind
		dropCount[d.Kind]++
	}
	used := map[int]string{}
	optState := 0
	for _, mt := range man.Tensors {
		names := append([]string{mt.Name}, mt.Aliases...)
		switch {
		case strings.Contains(mt.Name, "[@") && matchEntry(m, mt, used):
			// A value of a dictionary keyed by an object, outside
			// optimiser state: named entry<i> below the dictionary (N5).
			continue
		case packedVals(m, mt):
			// The packed values of a dictionary with array keys: each
			// is a scalar of the structure (spec/convert-bson.md rule 7).
			continue
		case strings.Contains(mt.Name, "[@"):
			optState++
			if withOpt {
				// Named by the dictionary position; compare by content.
				found := false
				for i, x := range m.Tensors {
					if strings.HasPrefix(x.Name, "optimizer.") && sameContent(x, mt.DType, mt.Shape, mt.SHA256) && used[i] == "" {
						used[i], found = mt.Name, true
						break
					}
				}
				if !found {
					t.Errorf("optimiser state %s not written", mt.Name)
				}
			}
			continue
		case zeroSizeVals(mt):
			if anyDropped(dropped, names, convert.DropUnsupportedType) {
				t.Errorf("%s: values of a zero-size type reported as dropped", mt.Name)
			}
			continue
		case tracker && (strings.HasSuffix(mt.Name, ".grad")):
			if !anyDropped(dropped, names, convert.DropGradient) {
				t.Errorf("gradient %s not reported", mt.Name)
			}
			continue
		case mt.DType == nil || !parseable(*mt.DType):
			if !anyDropped(dropped, names, convert.DropUnsupportedType) {
				t.Errorf("%s of unsupported type not reported", mt.Name)
			}
			continue
		}
		idx := -1
		for _, n := range names {
			p := manifestParts(n)
			if tracker && p[len(p)-1] == "data" {
				p = p[:len(p)-1]
			}
			if i, ok := byName[key(p)]; ok {
				idx = i
				break
			}
		}
		if idx < 0 {
			t.Errorf("manifest tensor %s not written", mt.Name)
			continue
		}
		if prev, ok := used[idx]; ok {
			t.Errorf("%s and %s both became %s", prev, mt.Name, m.Tensors[idx].Name)
		}
		used[idx] = mt.Name
		if !sameContent(m.Tensors[idx], mt.DType, mt.Shape, mt.SHA256) {
			x := m.Tensors[idx]
			t.Errorf("%s: %v %v differs from the manifest's %v %v", x.Name, x.DType, x.Shape, *mt.DType, mt.Shape)
		}
	}
	if len(used) != len(m.Tensors) {
		for i, x := range m.Tensors {
			if _, ok := used[i]; !ok {
				t.Errorf("tensor %s is not in the manifest", x.Name)
			}
		}
	}
	if !withOpt && dropCount[convert.DropOptimizer] != optState {
		t.Errorf("%d optimiser arrays reported, manifest has %d", dropCount[convert.DropOptimizer], optState)
	}
	if man.Summary.HasCode != m.Report.HasCode || (m.Report.HasCode && dropCount[convert.DropCode] == 0) {
		t.Errorf("has code %v, manifest says %v", m.Report.HasCode, man.Summary.HasCode)
	}
	for _, c := range man.Code {
		if c.UsedAt != "" && dropped[key(manifestParts(c.UsedAt))] != convert.DropCode {
			t.Errorf("code at %s not reported", c.UsedAt)
		}
	}
	if len(man.Summary.JuliaVersions) > 0 && !slices.Contains(man.Summary.JuliaVersions, m.Report.Versions["julia"]) {
		t.Errorf("julia version %q, manifest saw %v", m.Report.Versions["julia"], man.Summary.JuliaVersions)
	}
	if _, err := json.Marshal(m.Structure); err != nil {
		t.Error(err)
	}
	// Every ref names a node of the structure; a file whose backrefs form a
	// cycle records its back-edges as ref nodes.
	backEdges := 0
	walkNodes(m.Structure, func(n *convert.Node) {
		if n.Kind == "ref" {
			backEdges++
		}
		if n.Ref != "" && findNode(m.Structure, convert.NameSplit(n.Ref)) == nil {
			t.Errorf("ref %q names no node", n.Ref)
		}
	})
	if man.cyclic() && backEdges == 0 {
		t.Error("cyclic file without a back-edge in its structure")
	}
}

// cyclic reports whether the manifest's file has a backref cycle, which
// its tool records in the name (the fixture names say so too).
func (m *manifest) cyclic() bool { return strings.Contains(m.File, "cyclic") }

func walkNodes(n *convert.Node, f func(*convert.Node)) {
	if n == nil {
		return
	}
	f(n)
	for _, c := range n.Items {
		walkNodes(c, f)
	}
	for _, fl := range n.Fields {
		walkNodes(fl.Node, f)
	}
}

func parseable(s string) bool { _, ok := format.ParseDType(s); return ok }

func anyDropped(dropped map[string]string, names []string, kind string) bool {
	for _, n := range names {
		if dropped[key(manifestParts(n))] == kind {
			return true
		}
	}
	return false
}

func sameContent(x convert.Tensor, dtype *string, shape []int64, sum string) bool {
	if dtype == nil || x.DType.String() != *dtype || !slices.Equal(x.Shape, shape) {
		return false
	}
	h := sha256.Sum256(x.Data)
	return hex.EncodeToString(h[:]) == sum
}

// emptySHA256 is the SHA-256 of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// checkNotBSON checks that a file the manifest tool could not parse is
// refused as what it is.
func checkNotBSON(t *testing.T, data []byte) {
	t.Helper()
	_, err := Read(data)
	if err == nil {
		t.Fatal("a file that is not BSON converted")
	}
	if bytes.HasPrefix(data, []byte("7JL")) && !errors.Is(err, convert.ErrJuliaSerialization) {
		t.Fatalf("Julia Serialization stream: error %v, want ErrJuliaSerialization", err)
	}
}

// matchEntry finds, by content, the tensor that the manifest entry
// "X[@K]" became: a name below X whose next part is entry<i>. It marks it
// used.
func matchEntry(m *convert.Model, mt manifestTensor, used map[int]string) bool {
	pre := manifestParts(mt.Name[:strings.Index(mt.Name, "[@")])
	for i, x := range m.Tensors {
		p := convert.NameSplit(x.Name)
		if len(p) > len(pre) && slices.Equal(p[:len(pre)], pre) && strings.HasPrefix(p[len(pre)], "entry") &&
			used[i] == "" && sameContent(x, mt.DType, mt.Shape, mt.SHA256) {
			used[i] = mt.Name
			return true
		}
	}
	return false
}

// packedVals reports whether the manifest entry is the packed values
// "X.vals" of a dictionary whose structure node at X holds them, in order,
// as scalars with the same bytes.
func packedVals(m *convert.Model, mt manifestTensor) bool {
	if !strings.HasSuffix(mt.Name, ".vals") || mt.DType == nil || len(mt.Shape) != 1 {
		return false
	}
	dt, ok := format.ParseDType(*mt.DType)
	if !ok {
		return false
	}
	n := findNode(m.Structure, manifestParts(strings.TrimSuffix(mt.Name, ".vals")))
	if n == nil || n.Kind != "dict" || int64(len(n.Items)) != mt.Shape[0] {
		return false
	}
	var b []byte
	for _, it := range n.Items {
		v := it.Items[1]
		if v.Kind != "scalar" || v.DType != dt.String() {
			return false
		}
		switch dt {
		case format.I64:
			x, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return false
			}
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		case format.F64:
			x, err := strconv.ParseFloat(v.Value, 64)
			if err != nil {
				return false
			}
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		default:
			return false
		}
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]) == mt.SHA256
}

// findNode descends the structure by name parts: struct and named tuple
// fields by name, tuple and vector items by 1-based index, dictionary
// values by key or by entry<i>.
func findNode(n *convert.Node, parts []string) *convert.Node {
	for _, p := range parts {
		if n == nil {
			return nil
		}
		var next *convert.Node
		switch n.Kind {
		case "struct", "namedtuple":
			for _, f := range n.Fields {
				if f.Name == p {
					next = f.Node
				}
			}
		case "tuple", "vector":
			if i, err := strconv.Atoi(p); err == nil && i >= 1 && i <= len(n.Items) {
				next = n.Items[i-1]
			}
		case "dict":
			for i, it := range n.Items {
				if it.Items[0].Value == p || p == "entry"+strconv.Itoa(i+1) {
					next = it.Items[1]
				}
			}
		}
		n = next
	}
	return n
}

// TestFixtureStateRole: in Flux 0.14 stacked LSTMs whose Recur holds a live
// batch state (not tied to the cell's state0), that state has the role
// state and every other array is a parameter (spec/CONVERSION.md N12).
func TestFixtureStateRole(t *testing.T) {
	dir := fixtures.Require(t, "new/flux-bson")
	data, err := os.ReadFile(filepath.Join(dir, "flux014_stacked_lstm_batch_state_not_tied.bson"))
	if err != nil {
		t.Skip("fixture absent")
	}
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	states := 0
	for _, x := range m.Tensors {
		p := convert.NameSplit(x.Name)
		want := ""
		if len(p) == 5 && p[1] == "layers" && p[3] == "state" {
			want = convert.RoleState
			states++
		}
		if x.Role != want {
			t.Errorf("%s: role %q, want %q", x.Name, x.Role, want)
		}
	}
	if states != 6 {
		t.Errorf("%d state tensors, want 6", states)
	}
}
