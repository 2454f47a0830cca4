package bson

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

func mustRead(t *testing.T, data []byte, opts ...convert.Option) *convert.Model {
	t.Helper()
	m, err := Read(data, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func within(b, data []byte) bool {
	if len(b) == 0 {
		return true
	}
	p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&data[0]))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(data))
}

func TestReadDense(t *testing.T) {
	data := synthDense()
	m := mustRead(t, data)
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
		if !within(x.Data, data) {
			t.Errorf("%s: data does not alias the input", x.Name)
		}
	}
	want := []string{"model.layers.1.weight", "model.layers.1.bias", "model.layers.2.weight"}
	if !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
	w := m.Tensors[0]
	if w.DType != format.F32 || !slices.Equal(w.Shape, []int64{2, 3}) || len(w.Data) != 24 {
		t.Errorf("weight %v %v %d bytes", w.DType, w.Shape, len(w.Data))
	}
	if b := m.Tensors[1]; !slices.Equal(b.Aliases, []string{"model.layers.2.bias"}) || !slices.Equal(b.Shape, []int64{3}) {
		t.Errorf("shared bias: aliases %q shape %v", b.Aliases, b.Shape)
	}
	// The structure names the activations.
	layers := m.Structure.Items[0].Items[1].Fields[0].Node
	l1 := layers.Items[0]
	if l1.Type != "Flux.Dense" || l1.Fields[2].Name != "σ" || l1.Fields[2].Node.Function != "relu" || l1.Fields[0].Node.Tensor != "model.layers.1.weight" {
		t.Errorf("structure of layer 1: %+v", l1)
	}
	if len(m.Report.Tensors) != 3 {
		t.Errorf("report lists %d tensors", len(m.Report.Tensors))
	}
}

func TestReadVariants(t *testing.T) {
	// Keys in another order, Main. prefixes, packed type parameters,
	// int32 sizes (32-bit Julia), a Dict{Symbol} document, a named tuple.
	data := encode(D{
		{"m", D{{"data", A{f32arr(1, 2)}}, {"type", dt(path("Main", "Flux", "Embedding"), D{{"tag", "array"}, {"type", dt(path("Core", "Int64"))}, {"size", A{int64(1)}}, {"data", make([]byte, 8)}})}, {"tag", "struct"}}},
		{"d", D{{"w", D{{"tag", "array"}, {"size", A{int32(2), int32(2)}}, {"data", f32s(4, 0)}, {"type", tF32}}}}},
		{"nt", strct(dt(path("Core", "NamedTuple"), tup(sym("a"), sym("b")), dt(path("Core", "Tuple"))), f32arr(3, 1), 1.5)},
		{"v", A{f32arr(0, 1), "text", nil, true}},
		{"u8", []byte{1, 2, 3}},
	})
	m := mustRead(t, data)
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	want := []string{"m.weight", "d.w", "nt.a", "v.1", "u8"}
	if !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
}

func TestKeepRules(t *testing.T) {
	adam := strct(dt(path("Flux", "Optimise", "ADAM")), 0.001, tup(0.9, 0.999),
		strct(dt(path("Base", "IdDict"), dt(path("Core", "Any")), dt(path("Core", "Any"))),
			A{br(1)}, A{tup(f32arr(0, 2), f32arr(0, 2))}))
	tracked := strct(dt(path("Tracker", "TrackedArray")),
		strct(dt(path("Tracker", "Tracked")), prim(dt(path("Core", "UInt32")), []byte{0, 0, 0, 0}), nil, true, br(2)),
		f32arr(5, 2), br(2))
	// The optimiser comes first: the model's array it refers to is still
	// named by the model.
	data := encode(D{
		{"opt", adam},
		{"model", strct(dt(path("Main", "Net")), br(1), tracked)},
		{"_backrefs", A{f32arr(1, 2), f32arr(9, 2)}},
	})
	m := mustRead(t, data)
	if len(m.Tensors) != 2 || m.Tensors[0].Name != "model.field1" || m.Tensors[1].Name != "model.field2" {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	kinds := map[string]int{}
	for _, d := range m.Report.Dropped {
		kinds[d.Kind]++
	}
	if kinds[convert.DropOptimizer] != 2 || kinds[convert.DropGradient] != 1 {
		t.Errorf("dropped %v", kinds)
	}

	m = mustRead(t, data, convert.WithIncludeOptimizer())
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	want := []string{"model.field1", "model.field2", "optimizer.opt.state.entry1.1", "optimizer.opt.state.entry1.2"}
	if !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
	if !slices.Equal(m.Tensors[0].Aliases, []string{"optimizer.opt.state.key1"}) {
		t.Errorf("aliases %q", m.Tensors[0].Aliases)
	}
}

func anonFile() []byte {
	typename := strct(dt(path("Core", "TypeName")), "1.6.0", sym("#3#4"))
	return encode(D{
		{"model", strct(dt(path("Flux", "Chain")), tup(
			dense(f32arr(1, 2, 2), f32arr(2, 2), fn("NNlib", "relu")),
			strct(D{{"tag", "jl_anonymous"}, {"typename", br(1)}, {"params", A{}}}),
			D{{"tag", "ref"}, {"path", A{"Main"}}},
			prim(dt(path("Core", "Ptr"), dt(path("Core", "Nothing"))), make([]byte, 8)),
		))},
		{"_backrefs", A{typename}},
	})
}

func TestCodeAndPointers(t *testing.T) {
	m := mustRead(t, anonFile())
	kinds := map[string]string{}
	for _, d := range m.Report.Dropped {
		kinds[d.Path] = d.Kind
	}
	if kinds["model.layers.2"] != convert.DropCode || kinds["model.layers.3"] != convert.DropGlobalRef || kinds["model.layers.4"] != convert.DropRawPointer || kinds["model.layers.1.σ"] != convert.DropFunction {
		t.Errorf("dropped %v", kinds)
	}
	if !m.Report.HasCode || m.Report.Versions["julia"] != "1.6.0" || len(m.Tensors) != 2 {
		t.Errorf("has code %v, versions %v, %d tensors", m.Report.HasCode, m.Report.Versions, len(m.Tensors))
	}
}

func cuArray() D {
	return strct(dt(path("CUDA", "CuArray"), tF32, int64(1)),
		strct(dt(path("CUDA", "ArrayStorage")), prim(dt(path("CUDA", "CuPtr"), dt(path("Core", "Nothing"))), make([]byte, 8))),
		int64(16), int64(0), tup(int64(4)))
}

// patch returns a copy of b with v written little-endian at off.
func patch(b []byte, off int, v uint32) []byte {
	c := slices.Clone(b)
	binary.LittleEndian.PutUint32(c[off:], v)
	return c
}

// find returns the offset of the first occurrence of s in b.
func find(t *testing.T, b []byte, s string) int {
	t.Helper()
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	t.Fatalf("%q not found", s)
	return -1
}

func TestHostile(t *testing.T) {
	good := synthDense()
	// Offset of the weight's binary length: after the "data\x00" key of
	// the first array.
	dataKey := find(t, good, "\x05data\x00") + 6
	sizeKey := find(t, good, "\x04size\x00") + 6
	typeStr := find(t, good, "\x02tag\x00") + 5

	cases := []struct {
		name string
		data []byte
		opts convert.Option
		want error
	}{
		{"empty", nil, nil, convert.ErrMalformed},
		{"truncated", good[:len(good)/2], nil, convert.ErrMalformed},
		{"truncated-by-one", good[:len(good)-1], nil, convert.ErrMalformed},
		{"trailing-bytes", append(slices.Clone(good), 0, 0), nil, convert.ErrMalformed},
		{"binary-length-past-end", patch(good, dataKey, 1<<20), nil, convert.ErrMalformed},
		{"binary-length-negative", patch(good, dataKey, 0xffffffff), nil, convert.ErrMalformed},
		{"binary-length-int32-max", patch(good, dataKey, 0x7fffffff), nil, convert.ErrMalformed},
		{"document-length-negative", patch(good, sizeKey, 0x80000000), nil, convert.ErrMalformed},
		{"string-length-zero", patch(good, typeStr, 0), nil, convert.ErrMalformed},
		{"string-length-overflow", patch(good, typeStr, 0x7ffffffe), nil, convert.ErrMalformed},
		{"size-product-overflows", encode(D{{"x", arr(tF32, []int{1 << 40, 1 << 40}, f32s(1, 0))}}), nil, convert.ErrMalformed},
		{"size-negative", encode(D{{"x", arr(tF32, []int{-1}, f32s(1, 0))}}), nil, convert.ErrMalformed},
		{"data-length-mismatch", encode(D{{"x", arr(tF32, []int{3}, f32s(2, 0))}}), nil, convert.ErrMalformed},
		{"size-not-integer", encode(D{{"x", D{{"tag", "array"}, {"type", tF32}, {"size", A{"3"}}, {"data", f32s(3, 0)}}}}), nil, convert.ErrMalformed},
		{"backref-out-of-range", encode(D{{"x", br(3)}, {"_backrefs", A{f32arr(0, 1)}}}), nil, convert.ErrMalformed},
		{"backref-zero", encode(D{{"x", br(0)}, {"_backrefs", A{f32arr(0, 1)}}}), nil, convert.ErrMalformed},
		{"backref-without-backrefs", encode(D{{"x", br(1)}}), nil, convert.ErrMalformed},
		{"backref-self-type", encode(D{{"x", strct(br(1))}, {"_backrefs", A{br(1)}}}), nil, convert.ErrMalformed},
		{"unknown-tag", encode(D{{"x", D{{"tag", "eval"}, {"code", "run(`rm -rf /`)"}}}}), nil, convert.ErrUnsupported},
		{"tag-not-string", encode(D{{"x", D{{"tag", int64(3)}}}}), nil, convert.ErrMalformed},
		{"duplicate-tag-key", encode(D{{"x", D{{"tag", "symbol"}, {"name", "a"}, {"name", "b"}}}}), nil, convert.ErrMalformed},
		{"duplicate-top-key", encode(D{{"x", 1.0}, {"x", 2.0}}), nil, convert.ErrMalformed},
		{"duplicate-dict-key", encode(D{{"x", D{{"a", 1.0}, {"a", 2.0}}}}), nil, convert.ErrMalformed},
		{"list-key-out-of-order", encode(D{{"x", rawValue{0x04, encode(D{{"1", 1.0}, {"0", 2.0}})}}}), nil, convert.ErrMalformed},
		{"missing-tag-key", encode(D{{"x", D{{"tag", "array"}, {"type", tF32}, {"data", f32s(1, 0)}}}}), nil, convert.ErrMalformed},
		{"extra-tag-key", encode(D{{"x", D{{"tag", "symbol"}, {"name", "a"}, {"eval", "x"}}}}), nil, convert.ErrMalformed},
		{"objectid", encode(D{{"x", rawValue{0x07, make([]byte, 12)}}}), nil, convert.ErrUnsupported},
		{"bad-boolean", encode(D{{"x", rawValue{0x08, []byte{7}}}}), nil, convert.ErrMalformed},
		{"deep-nesting", deepList(1_000_000), nil, convert.ErrLimit},
		{"deep-backref-chain", encode(D{{"x", br(1)}, {"_backrefs", chain(2000)}}), nil, convert.ErrLimit},
		{"scalar-wrong-size", encode(D{{"x", prim(tF32, []byte{1, 2})}}), nil, convert.ErrMalformed},
		{"name-clash", encode(D{{"x", strct(dt(path("Base", "Dict")), A{"a", "a"}, A{f32arr(0, 1), f32arr(1, 1)})}}), nil, convert.ErrNameClash},
		{"strict-code", anonFile(), convert.WithStrict(), convert.ErrHasCode},
		{"gpu-only", encode(D{{"model", dense(cuArray(), cuArray(), fn("NNlib", "relu"))}}), nil, convert.ErrNoWeights},
		{"gpu-partly", encode(D{{"model", dense(f32arr(0, 4), cuArray(), fn("NNlib", "relu"))}}), nil, convert.ErrNoWeights},
		{"too-many-tensors", good, WithLimits(Limits{MaxTensors: 2}), convert.ErrLimit},
		{"too-many-values", good, WithLimits(Limits{MaxValues: 5}), convert.ErrLimit},
		{"too-many-dims", encode(D{{"x", arr(tF32, []int{1, 1, 1, 1}, f32s(1, 0))}}), WithLimits(Limits{MaxDims: 3}), convert.ErrLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(c.data, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *bson.Error", err)
			}
			if e.Offset < 0 || e.Offset > int64(len(c.data)) {
				t.Errorf("offset %d outside the %d-byte input", e.Offset, len(c.data))
			}
		})
	}
}

// chain is a _backrefs list where entry i refers to entry i+1.
func chain(n int) A {
	a := make(A, n)
	for i := range a {
		a[i] = br(i + 2)
	}
	a[n-1] = f32arr(0, 1)
	return a
}

func TestBadLimits(t *testing.T) {
	if _, err := Read(synthDense(), WithLimits(Limits{MaxDepth: -1})); err == nil {
		t.Fatal("negative limit accepted")
	}
}
