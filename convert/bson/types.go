package bson

import (
	"math"
	"math/bits"
	"strings"

	mbson "go.mongodb.org/mongo-driver/v2/bson"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// typeInfo is a resolved type document.
type typeInfo struct {
	kind     tag    // tagDatatype, tagAnonymous, tagUnionall or tagBottom
	name     string // module path without "Main." and parameters
	params   val    // a list, or an Int64 array (packed parameters)
	nparams  int
	typename val // of a jl_anonymous type
}

// deref follows backrefs until v is not one. It returns the backref index
// of the last one followed (0 if none).
func (w *walker) deref(v val) (val, int, error) {
	br := 0
	for hops := 0; isDoc(v); hops++ {
		if hops > w.lim.MaxDepth {
			return v, 0, w.errAt(v.off, convert.ErrLimit, "backref chain longer than %d", w.lim.MaxDepth)
		}
		td, tagged, err := w.parseTagged(v)
		if err != nil || !tagged || td.tag != tagBackref {
			return v, br, err
		}
		k, target, err := w.backref(td)
		if err != nil {
			return v, 0, err
		}
		if k == br {
			return v, 0, w.errAt(v.off, convert.ErrMalformed, "backref %d refers to itself", k)
		}
		v, br = target, k
	}
	return v, br, nil
}

// resolveType reads the type document v (following backrefs).
func (w *walker) resolveType(v val) (*typeInfo, error) {
	d, br, err := w.deref(v)
	if err != nil {
		return nil, err
	}
	if br != 0 {
		if ti, ok := w.types[br]; ok {
			return ti, nil
		}
	}
	if !isDoc(d) {
		return nil, w.errAt(d.off, convert.ErrMalformed, "type is a %s, not a type document", d.t)
	}
	td, tagged, err := w.parseTagged(d)
	if err != nil {
		return nil, err
	}
	if !tagged {
		return nil, w.errAt(d.off, convert.ErrMalformed, "type is an untagged document")
	}
	ti := &typeInfo{kind: td.tag}
	switch td.tag {
	case tagDatatype:
		name, err := w.typePath(td.f[kName])
		if err != nil {
			return nil, err
		}
		ti.name = convert.TypeName(name)
		ti.params = td.f[kParams]
		if ti.nparams, err = w.countParams(ti.params); err != nil {
			return nil, err
		}
	case tagAnonymous:
		ti.name = "#anonymous"
		ti.typename = td.f[kTypename]
	case tagUnionall:
		ti.name = "UnionAll"
	case tagBottom:
		ti.name = "Union{}"
	default:
		return nil, w.errAt(d.off, convert.ErrMalformed, "%s document where a type belongs", keyNamesOfTag(td.tag))
	}
	if br != 0 {
		w.types[br] = ti
	}
	return ti, nil
}

func keyNamesOfTag(t tag) string {
	for k, v := range tagNames {
		if v == t {
			return k
		}
	}
	return "untagged"
}

// typePath joins a datatype's name, a list of strings (or one string).
func (w *walker) typePath(v val) (string, error) {
	if s, ok := asString(v); ok {
		return s, nil
	}
	var b strings.Builder
	err := w.eachList(v, func(i int, e val) error {
		s, ok := asStringBytes(e)
		if !ok {
			return w.errAt(e.off, convert.ErrMalformed, "type name part is a %s", e.t)
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.Write(s)
		return nil
	})
	return b.String(), err
}

// countParams counts a datatype's parameters: a list, or an array of Int64
// (BSON.jl packs all-integer parameters such as MaxPool{2,4}).
func (w *walker) countParams(v val) (int, error) {
	if v.t == mbson.TypeArray {
		return w.listLen(v)
	}
	if isDoc(v) {
		td, tagged, err := w.parseTagged(v)
		if err != nil {
			return 0, err
		}
		if tagged && td.tag == tagArray {
			dims, err := w.dims(td.f[kSize])
			if err != nil {
				return 0, err
			}
			n, err := w.numel(dims, td.f[kSize].off)
			if err != nil {
				return 0, err
			}
			if n > uint64(len(w.data)) {
				return 0, w.errAt(v.off, convert.ErrMalformed, "%d packed type parameters in a %d-byte file", n, len(w.data))
			}
			return int(n), nil
		}
	}
	return 0, w.errAt(v.off, convert.ErrMalformed, "type parameters are a %s", v.t)
}

// firstParam returns a datatype's first parameter, if it is a list element.
func (w *walker) firstParam(ti *typeInfo) (val, bool) {
	if ti.params.t != mbson.TypeArray || ti.nparams == 0 {
		return val{}, false
	}
	var first val
	found := false
	_ = w.eachList(ti.params, func(_ int, e val) error {
		first, found = e, true
		return errStop
	})
	return first, found
}

// dims reads an array's Julia size: a list of non-negative integers.
func (w *walker) dims(v val) ([]int64, error) {
	var dims []int64
	err := w.eachList(v, func(i int, e val) error {
		if i >= w.lim.MaxDims {
			return w.errAt(e.off, convert.ErrLimit, "array with more than %d dimensions", w.lim.MaxDims)
		}
		d, ok := w.asInt(e)
		if !ok {
			return w.errAt(e.off, convert.ErrMalformed, "array dimension is a %s", e.t)
		}
		if d < 0 {
			return w.errAt(e.off, convert.ErrMalformed, "negative array dimension %d", d)
		}
		dims = append(dims, d)
		return nil
	})
	return dims, err
}

// numel multiplies dims, failing on overflow of int64.
func (w *walker) numel(dims []int64, off int) (uint64, error) {
	n := uint64(1)
	for _, d := range dims {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, w.errAt(off, convert.ErrMalformed, "array size %v overflows", dims)
		}
		n = lo
	}
	return n, nil
}

// plainTypes maps Julia's plain-bits number types to the format's types.
var plainTypes = map[string]format.DType{
	"Core.Float64": format.F64, "Core.Float32": format.F32, "Core.Float16": format.F16,
	"Core.BFloat16": format.BF16, "BFloat16s.BFloat16": format.BF16,
	"Core.Int64": format.I64, "Core.Int32": format.I32, "Core.Int16": format.I16, "Core.Int8": format.I8,
	"Core.UInt64": format.U64, "Core.UInt32": format.U32, "Core.UInt16": format.U16, "Core.UInt8": format.U8,
	"Core.Bool": format.Bool,
}

// zeroSize are element types that take no bytes.
var zeroSize = map[string]bool{"Core.Nothing": true, "Base.Missing": true, "Base.Colon": true}

// dtypeOf maps an element type to the format's type.
func (w *walker) dtypeOf(ti *typeInfo) (format.DType, bool, error) {
	if ti.kind != tagDatatype {
		return 0, false, nil
	}
	if dt, ok := plainTypes[ti.name]; ok {
		return dt, true, nil
	}
	if ti.name == "Base.Complex" && ti.nparams == 1 {
		p, ok := w.firstParam(ti)
		if !ok {
			return 0, false, nil
		}
		pt, err := w.resolveType(p)
		if err != nil {
			return 0, false, err
		}
		switch pt.name {
		case "Core.Float32":
			return format.C64, true, nil
		case "Core.Float64":
			return format.C128, true, nil
		}
	}
	return 0, false, nil
}

func bitsMul(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }
