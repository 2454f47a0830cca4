package bson

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

func i64s(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

// Every Dict follows rule N5 however BSON.jl stored its keys and values:
// as lists (Vector{Any}), as arrays of elements (Vector{Symbol}) or as
// packed plain-bits arrays (Vector{Int64}).
func TestDictNaming(t *testing.T) {
	tDict := dt(path("Base", "Dict"))
	tI64 := dt(path("Core", "Int64"))
	tSym := dt(path("Core", "Symbol"))
	tVec := dt(path("Core", "Array"), tF32, int64(1))
	data := encode(D{
		// Dict{Symbol,Vector{Float32}}: keys an array of symbols.
		{"sym", strct(tDict, arr(tSym, []int{2}, A{sym("a"), sym("b")}), arr(tVec, []int{2}, A{f32arr(1, 2), f32arr(2, 2)}))},
		// Dict{Int64,Vector{Float32}}: packed keys, values named entry<i>.
		{"int", strct(tDict, arr(tI64, []int{2}, i64s(7, 9)), arr(tVec, []int{2}, A{f32arr(3, 2), f32arr(4, 2)}))},
		// Dict{Vector{Float32},Int64}: array keys named key<i>, packed values.
		{"arrkey", strct(dt(path("Base", "IdDict")), A{f32arr(5, 2)}, arr(tI64, []int{1}, i64s(42)))},
		// IdSet's IdDict{Any,Nothing}: values of a zero-size type.
		{"set", strct(dt(path("Base", "IdDict")), A{f32arr(6, 1)}, arr(dt(path("Core", "Nothing")), []int{1}, []byte{}))},
	})
	m := mustRead(t, data)
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	want := []string{"sym.a", "sym.b", "int.entry1", "int.entry2", "arrkey.key1", "set.key1"}
	if !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
	if len(m.Report.Dropped) != 0 {
		t.Errorf("dropped %+v", m.Report.Dropped)
	}
	// The packed key is a scalar of the structure.
	intDict := m.Structure.Items[1].Items[1]
	if k := intDict.Items[1].Items[0]; k.Kind != "scalar" || k.Value != "9" || k.DType != "I64" {
		t.Errorf("key 2 of int: %+v", k)
	}
}

func TestDictHostile(t *testing.T) {
	tDict := dt(path("Base", "Dict"))
	tI64 := dt(path("Core", "Int64"))
	tNothing := dt(path("Core", "Nothing"))
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"packed-keys-short", encode(D{{"d", strct(tDict, arr(tI64, []int{3}, i64s(1, 2)), A{1.0, 2.0, 3.0})}}), convert.ErrMalformed},
		{"keys-values-count", encode(D{{"d", strct(tDict, arr(tI64, []int{2}, i64s(1, 2)), A{1.0})}}), convert.ErrMalformed},
		{"zero-size-huge", encode(D{{"d", strct(tDict, arr(tNothing, []int{1 << 40}, []byte{}), arr(tNothing, []int{1 << 40}, []byte{}))}}), convert.ErrLimit},
		{"zero-size-with-bytes", encode(D{{"d", strct(tDict, A{1.0}, arr(tNothing, []int{1}, []byte{1}))}}), convert.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(c.data)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}
