package bson

// Test helpers that write BSON.jl-style files: a minimal BSON encoder and
// builders for BSON.jl's tagged documents.

import (
	"encoding/binary"
	"math"
	"strconv"
)

// D is a BSON document with its keys in order.
type D []E

// E is one element of a D.
type E struct {
	K string
	V any
}

// A is a BSON list.
type A []any

// rawValue is a value whose encoding is given as it is, with its BSON type.
type rawValue struct {
	t byte
	b []byte
}

func encode(doc D) []byte { return appendDoc(nil, doc) }

func appendDoc(dst []byte, doc D) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, e := range doc {
		dst = appendElem(dst, e.K, e.V)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

func appendElem(dst []byte, k string, v any) []byte {
	typ := func(t byte) { dst = append(dst, t); dst = append(dst, k...); dst = append(dst, 0) }
	switch v := v.(type) {
	case float64:
		typ(0x01)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	case string:
		typ(0x02)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)+1))
		dst = append(append(dst, v...), 0)
	case D:
		typ(0x03)
		dst = appendDoc(dst, v)
	case A:
		typ(0x04)
		d := make(D, len(v))
		for i, x := range v {
			d[i] = E{strconv.Itoa(i), x}
		}
		dst = appendDoc(dst, d)
	case []byte:
		typ(0x05)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(append(dst, 0), v...)
	case bool:
		typ(0x08)
		if v {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	case nil:
		typ(0x0A)
	case int32:
		typ(0x10)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
	case int64:
		typ(0x12)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	case int:
		typ(0x12)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	case rawValue:
		typ(v.t)
		dst = append(dst, v.b...)
	default:
		panic("synth: unsupported value")
	}
	return dst
}

// dt is a datatype document: dt("Core", "Float32"), with params.
func dt(name []string, params ...any) D {
	n := make(A, len(name))
	for i, s := range name {
		n[i] = s
	}
	if params == nil {
		params = A{}
	}
	var p any = A(params)
	if len(params) == 1 {
		if d, ok := params[0].(D); ok && len(d) > 0 && d[0].V == "array" {
			p = d // packed parameters
		}
	}
	return D{{"tag", "datatype"}, {"name", n}, {"params", p}}
}

func path(s ...string) []string { return s }

var (
	tF32 = dt(path("Core", "Float32"))
	tF64 = dt(path("Core", "Float64"))
)

func arr(eltype any, size []int, data any) D {
	s := make(A, len(size))
	for i, d := range size {
		s[i] = int64(d)
	}
	return D{{"tag", "array"}, {"type", eltype}, {"size", s}, {"data", data}}
}

func f32s(n int, seed float32) []byte {
	b := make([]byte, 0, 4*n)
	for i := 0; i < n; i++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(seed+float32(i)))
	}
	return b
}

func f32arr(seed float32, size ...int) D {
	n := 1
	for _, d := range size {
		n *= d
	}
	return arr(tF32, size, f32s(n, seed))
}

func strct(typ any, fields ...any) D {
	if fields == nil {
		fields = A{}
	}
	return D{{"tag", "struct"}, {"type", typ}, {"data", A(fields)}}
}

func fn(mod, name string) D { return strct(dt(path(mod, "#"+name))) }

func br(i int) D { return D{{"tag", "backref"}, {"ref", int64(i)}} }

func tup(items ...any) D {
	if items == nil {
		items = A{}
	}
	return D{{"tag", "tuple"}, {"data", A(items)}}
}

func sym(s string) D { return D{{"tag", "symbol"}, {"name", s}} }

func dense(w, b any, act D) D {
	return strct(dt(path("Flux", "Dense"), dt(path("NNlib", "#relu")), dt(path("Core", "Array"), tF32, int64(2)), dt(path("Core", "Array"), tF32, int64(1))), w, b, act)
}

// synthDense is a Chain of two Dense layers, the second sharing the first's
// bias through a backref, plus an orphan _backrefs entry.
func synthDense() []byte {
	return encode(D{
		{"model", strct(dt(path("Flux", "Chain")), tup(
			dense(f32arr(1, 3, 2), br(2), fn("NNlib", "relu")),
			dense(f32arr(10, 2, 3), br(2), fn("Base", "identity")),
		))},
		{"_backrefs", A{f32arr(100, 7), f32arr(50, 3)}},
	})
}

// deepList is n nested BSON lists, written without recursion.
func deepList(n int) []byte {
	out := make([]byte, 0, 8*n+16)
	// outer document {"x": [[[...]]]}
	total := 4 + 3 + (8*n + 5) + 1
	out = binary.LittleEndian.AppendUint32(out, uint32(total))
	out = append(out, 0x04, 'x', 0)
	for i := 0; i < n; i++ {
		out = binary.LittleEndian.AppendUint32(out, uint32(8*(n-i)+5))
		out = append(out, 0x04, '0', 0)
	}
	out = append(out, 5, 0, 0, 0, 0)
	for i := 0; i < n; i++ {
		out = append(out, 0)
	}
	return append(out, 0)
}

// prim is a primitive value such as a Float32 scalar: a struct whose data
// is its bytes.
func prim(typ D, b []byte) D { return D{{"tag", "struct"}, {"type", typ}, {"data", b}} }
