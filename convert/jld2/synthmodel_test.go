package jld2

// A small Flux model described in Go and written both ways, as BSON.jl
// (Flux 0.13 layouts: every field stored by position) and as JLD2 before
// 0.5 (format 0.1.1: fields without data omitted from the compound, their
// types only among the type parameters), so that the two converters'
// structures can be compared and the model rebuilt from each.

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	mbson "go.mongodb.org/mongo-driver/v2/bson"
)

// sLayer is one layer of a synthetic Chain. Arrays are in Julia's
// column-major order with their Julia sizes.
type sLayer struct {
	kind string // "dense", "conv", "maxpool", "meanpool", "batchnorm", "func", "anon"
	act  string // the activation (dense, conv, batchnorm) or the function (func)
	w    []float32
	wsz  []int
	b    []float32 // nil: bias=false

	k, stride, pad, dilation []int
	groups                   int

	beta, gamma, mu, s2 []float32
	eps, momentum       float32
}

// fnModule is the module Flux's functions live in.
func fnModule(name string) string {
	switch name {
	case "tanh", "identity":
		return "Base"
	case "flatten":
		return "Flux"
	}
	return "NNlib"
}

func (l sLayer) fluxType() string {
	switch l.kind {
	case "dense":
		return "Flux.Dense"
	case "conv":
		return "Flux.Conv"
	case "maxpool":
		return "Flux.MaxPool"
	case "meanpool":
		return "Flux.MeanPool"
	case "batchnorm":
		return "Flux.BatchNorm"
	case "anon":
		return "Main.#3#4"
	}
	return fnModule(l.act) + ".#" + l.act
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// ---- BSON.jl ----

func bd(kv ...any) mbson.D {
	d := make(mbson.D, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		d = append(d, mbson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}

func bType(name string, params ...any) mbson.D {
	parts := strings.Split(name, ".")
	n := mbson.A{}
	for _, p := range parts {
		n = append(n, p)
	}
	if params == nil {
		params = []any{}
	}
	return bd("tag", "datatype", "name", n, "params", mbson.A(params))
}

func bStruct(typ mbson.D, fields ...any) mbson.D {
	if fields == nil {
		fields = []any{}
	}
	return bd("tag", "struct", "type", typ, "data", mbson.A(fields))
}

func bArray(v []float32, size []int) mbson.D {
	s := mbson.A{}
	for _, d := range size {
		s = append(s, int64(d))
	}
	return bd("tag", "array", "type", bType("Core.Float32"), "size", s, "data", mbson.Binary{Data: f32bytes(v)})
}

func bF32(x float32) mbson.D {
	return bd("tag", "struct", "type", bType("Core.Float32"), "data", mbson.Binary{Data: f32bytes([]float32{x})})
}

func bInts(v []int) mbson.D {
	a := mbson.A{}
	for _, x := range v {
		a = append(a, int64(x))
	}
	return bd("tag", "tuple", "data", a)
}

func bFunc(name string) mbson.D { return bStruct(bType(fnModule(name) + ".#" + name)) }

func bBias(b []float32) any {
	if b == nil {
		return false
	}
	return bArray(b, []int{len(b)})
}

func (l sLayer) bson() any {
	switch l.kind {
	case "dense":
		return bStruct(bType("Flux.Dense", bType(fnModule(l.act)+".#"+l.act)), bArray(l.w, l.wsz), bBias(l.b), bFunc(l.act))
	case "conv":
		return bStruct(bType("Flux.Conv", int64(2), int64(4), bType(fnModule(l.act)+".#"+l.act)),
			bFunc(l.act), bArray(l.w, l.wsz), bBias(l.b), bInts(l.stride), bInts(l.pad), bInts(l.dilation), int64(l.groups))
	case "maxpool", "meanpool":
		return bStruct(bType(l.fluxType(), int64(2), int64(4)), bInts(l.k), bInts(l.pad), bInts(l.stride))
	case "batchnorm":
		c := len(l.mu)
		return bStruct(bType("Flux.BatchNorm", bType(fnModule(l.act)+".#"+l.act)),
			bFunc(l.act), bArray(l.beta, []int{c}), bArray(l.gamma, []int{c}), bArray(l.mu, []int{c}), bArray(l.s2, []int{c}),
			bF32(l.eps), bF32(l.momentum), true, true, nil, int64(c))
	case "anon":
		// A closure: BSON.jl stores its type's TypeName, whose code the
		// converter drops.
		return bd("tag", "struct", "type", bd("tag", "jl_anonymous", "typename", "#3#4", "params", mbson.A{}), "data", mbson.A{})
	}
	return bFunc(l.act)
}

// chainBSON writes model = Chain(layers...) as BSON.@save does.
func chainBSON(layers []sLayer) []byte {
	items := mbson.A{}
	for _, l := range layers {
		items = append(items, l.bson())
	}
	doc := bd("model", bStruct(bType("Flux.Chain"), bd("tag", "tuple", "data", items)))
	b, err := mbson.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- JLD2 before 0.5 ----

func dtI64() []byte {
	d := []byte{0x10 | classFixed, 0x08, 0, 0}
	d = binary.LittleEndian.AppendUint32(d, 8)
	return append(d, 0, 0, 64, 0)
}

func dtBool() []byte {
	d := []byte{0x10 | classBitfield, 0, 0, 0}
	d = binary.LittleEndian.AppendUint32(d, 1)
	return append(d, 0, 0, 8, 0)
}

func dtVlenRefs() []byte {
	d := []byte{0x10 | classVlen, 0, 0, 0}
	d = binary.LittleEndian.AppendUint32(d, 16)
	return append(d, dtRef()...)
}

// dataTypeDT is the compound JLD2 writes a Core.DataType as.
func dataTypeDT() []byte {
	return dtCompound([]string{"name", "parameters"}, [][]byte{dtVlenString(), dtVlenRefs()}, []uint32{16, 16})
}

// dataTypeValue returns the bytes of a Core.DataType value named name with
// the given parameters (references to objects).
func (b *jw) dataTypeValue(name string, params []uint64) []byte {
	coll := b.heap([]byte(name), u64s(params...))
	v := vlenRef(len(name), coll, 1)
	return append(v, vlenRef(len(params), coll, 2)...)
}

// typeParam writes a type parameter: a Core.DataType value, or an Int64
// for a number.
func (b *jw) typeParam(p any) uint64 {
	switch p := p.(type) {
	case int:
		return b.object(mSpace(), mType(dtI64()), mCompact(u64s(uint64(p))))
	case string:
		return b.object(mSpace(), mType(dataTypeDT()), mCompact(b.dataTypeValue(p, nil)))
	}
	panic("typeParam")
}

// committedP writes a committed datatype whose julia_type has parameters.
func (b *jw) committedP(dt []byte, name string, attrs []hmsg, params ...any) uint64 {
	refs := make([]uint64, len(params))
	for i, p := range params {
		refs[i] = b.typeParam(p)
	}
	msgs := []hmsg{{typ: msgDatatype, data: dt}, mAttr("julia_type", dataTypeDT(), nil, b.dataTypeValue(name, refs))}
	return b.object(append(msgs, attrs...)...)
}

// jw writes JLD2 files: before 0.5 (v05 false), a compound holds only
// the fields with data; from 0.5 on, field_names and field_types list
// every field.
type jw struct {
	*h5
	v05 bool
}

// jMember is one field: its name, HDF5 type and bytes, or for a field
// without data the name of its type.
type jMember struct {
	name  string
	dt    []byte
	val   []byte
	ghost string
}

func ghostField(name, typ string) jMember { return jMember{name: name, ghost: typ} }

func ref(name string, addr uint64) jMember { return jMember{name: name, dt: dtRef(), val: u64s(addr)} }

// jStruct writes a scalar dataset of a committed compound type.
func (b *jw) jStruct(name string, params []any, ms ...jMember) uint64 {
	var names, all []string
	var types [][]byte
	var sizes []uint32
	var val []byte
	var ftypes []uint64
	for _, m := range ms {
		all = append(all, m.name)
		ftypes = append(ftypes, b.typeParam(m.ghost))
		if m.ghost != "" {
			continue
		}
		names, types, sizes = append(names, m.name), append(types, m.dt), append(sizes, uint32(len(m.val)))
		val = append(val, m.val...)
	}
	var extra []hmsg
	if b.v05 {
		var strs [][]byte
		for _, n := range all {
			strs = append(strs, []byte(n))
		}
		coll := b.heap(strs...)
		var refs []byte
		for i, n := range all {
			refs = append(refs, vlenRef(len(n), coll, uint32(i+1))...)
		}
		extra = append(extra,
			mAttr("field_names", dtVlenString(), []uint64{uint64(len(all))}, refs),
			mAttr("field_types", dtRef(), []uint64{uint64(len(all))}, u64s(ftypes...)))
	}
	t := b.committedP(dtCompound(names, types, sizes), name, extra, params...)
	return b.object(mSpace(), mShared(t), mCompact(val))
}

// jArray writes a Float32 array of Julia size sz: HDF5 dimensions are the
// reverse, the bytes the same.
func (b *jw) jArray(v []float32, sz []int) uint64 {
	dims := make([]uint64, len(sz))
	for i, d := range sz {
		dims[len(sz)-1-i] = uint64(d)
	}
	return b.f32Dataset(dims, v)
}

func (b *jw) jInts(v []int) uint64 {
	ms := make([]jMember, len(v))
	for i, x := range v {
		ms[i] = jMember{name: strconv.Itoa(i + 1), dt: dtI64(), val: u64s(uint64(x))}
	}
	return b.jStruct("Core.NTuple", []any{len(v), "Core.Int64"}, ms...)
}

func (b *jw) jBias(v []float32) jMember {
	if v == nil {
		return jMember{name: "bias", dt: dtBool(), val: []byte{0}}
	}
	return ref("bias", b.jArray(v, []int{len(v)}))
}

func f32member(name string, x float32) jMember {
	return jMember{name: name, dt: dtF32(), val: f32bytes([]float32{x})}
}

func boolMember(name string, v bool) jMember {
	if v {
		return jMember{name: name, dt: dtBool(), val: []byte{1}}
	}
	return jMember{name: name, dt: dtBool(), val: []byte{0}}
}

// jNothing writes nothing: a dataset without data of type Core.Nothing.
func (b *jw) jNothing() uint64 {
	t := b.committedP(dtRef(), "Core.Nothing", nil)
	return b.object(hmsg{typ: msgDataspace, data: []byte{2, 0, 0, 2}}, mShared(t), mCompact(nil))
}

// jld2 writes the layer, or returns ok false for a layer without data
// (a function), which JLD2 leaves out of the Chain's tuple.
func (l sLayer) jld2(b *jw) (uint64, bool) {
	fn := fnModule(l.act) + ".#" + l.act
	switch l.kind {
	case "dense":
		return b.jStruct("Flux.Dense", []any{fn, "Core.Array", "Core.Array"},
			ref("weight", b.jArray(l.w, l.wsz)), b.jBias(l.b), ghostField("σ", fn)), true
	case "conv":
		return b.jStruct("Flux.Conv", []any{2, 4, fn, "Core.Array", "Core.Array"},
			ghostField("σ", fn), ref("weight", b.jArray(l.w, l.wsz)), b.jBias(l.b), ref("stride", b.jInts(l.stride)),
			ref("pad", b.jInts(l.pad)), ref("dilation", b.jInts(l.dilation)), jMember{name: "groups", dt: dtI64(), val: u64s(uint64(l.groups))}), true
	case "maxpool", "meanpool":
		return b.jStruct(l.fluxType(), []any{2, 4}, ref("k", b.jInts(l.k)), ref("pad", b.jInts(l.pad)), ref("stride", b.jInts(l.stride))), true
	case "batchnorm":
		c := len(l.mu)
		return b.jStruct("Flux.BatchNorm", []any{fn, "Core.Array", "Core.Float32", "Core.Array"},
			ghostField("λ", fn), ref("β", b.jArray(l.beta, []int{c})), ref("γ", b.jArray(l.gamma, []int{c})),
			ref("μ", b.jArray(l.mu, []int{c})), ref("σ²", b.jArray(l.s2, []int{c})),
			f32member("ϵ", l.eps), f32member("momentum", l.momentum), boolMember("affine", true), boolMember("track_stats", true),
			ref("active", b.jNothing()), jMember{name: "chs", dt: dtI64(), val: u64s(uint64(c))}), true
	}
	return 0, false
}

// chainJLD2 writes model = Chain(layers...) as JLD2 0.4 does.
func chainJLD2(layers []sLayer) []byte { return chainJLD2v(layers, false) }

// chainJLD2v writes model = Chain(layers...) as JLD2 0.4 does, or with
// v05 as JLD2 0.5 and later do.
func chainJLD2v(layers []sLayer, v05 bool) []byte {
	b := &jw{h5: newH5(), v05: v05}
	var ms []jMember
	params := make([]any, len(layers))
	for i, l := range layers {
		params[i] = l.fluxType()
		if a, ok := l.jld2(b); ok {
			ms = append(ms, ref(strconv.Itoa(i+1), a))
		} else {
			ms = append(ms, ghostField(strconv.Itoa(i+1), l.fluxType()))
		}
	}
	tup := b.jStruct("Core.Tuple", params, ms...)
	chain := b.jStruct("Flux.Chain", []any{"Core.Tuple"}, ref("layers", tup))
	return b.finish(b.group([]string{"model"}, []uint64{chain}))
}

// ---- models ----

// ramp returns n values spread over [-1, 1) with a seed, so that the
// layers' outputs are neither all zero nor saturated.
func ramp(n int, seed float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(seed+1.7*float64(i)) * 0.9)
	}
	return v
}

func denseModel() []sLayer {
	return []sLayer{
		{kind: "dense", act: "relu", w: ramp(4*3, 1), wsz: []int{4, 3}, b: ramp(4, 2)},
		{kind: "dense", act: "tanh", w: ramp(5*4, 3), wsz: []int{5, 4}, b: ramp(5, 4)},
		{kind: "dense", act: "σ", w: ramp(2*5, 5), wsz: []int{2, 5}},
		{kind: "func", act: "softmax"},
	}
}

// convModel runs on a 6x5 (W x H) image of 2 channels.
func convModel() []sLayer {
	return []sLayer{
		{kind: "conv", act: "relu", w: ramp(3*2*2*3, 6), wsz: []int{3, 2, 2, 3}, b: ramp(3, 7),
			stride: []int{1, 2}, pad: []int{1, 0, 0, 1}, dilation: []int{1, 1}, groups: 1},
		{kind: "batchnorm", act: "identity", beta: ramp(3, 8), gamma: []float32{1.5, 0.5, 1}, mu: ramp(3, 9), s2: []float32{0.5, 2, 1}, eps: 1e-5, momentum: 0.1},
		{kind: "maxpool", k: []int{2, 1}, pad: []int{0, 0, 0, 0}, stride: []int{2, 1}},
		{kind: "conv", act: "identity", w: ramp(2*2*3*2, 10), wsz: []int{2, 2, 3, 2},
			stride: []int{1, 1}, pad: []int{0, 0, 0, 0}, dilation: []int{1, 1}, groups: 1},
		{kind: "meanpool", k: []int{1, 1}, pad: []int{0, 0, 0, 0}, stride: []int{1, 1}},
		{kind: "func", act: "flatten"},
		{kind: "dense", act: "identity", w: ramp(3*4, 11), wsz: []int{3, 4}, b: ramp(3, 12)},
	}
}
