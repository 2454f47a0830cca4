package jld2

import (
	"strings"

	"github.com/safeweights/safeweights/convert"
)

// typeInfo is what JLD2 records about a committed datatype (rule J2): the
// Julia type name from its julia_type attribute, the committed types of its
// compound members (field_datatypes) and, from JLD2 0.5 on, the names and
// types of all fields, those without data included.
type typeInfo struct {
	dt         *dtype
	loaded     bool
	name       string
	fieldTypes []uint64
	fieldNames []string
	fieldJT    []uint64 // field_types: references to Core.DataType values
	empty      bool
	// funcParams are the function types among the type parameters: the
	// fields without data that old files name nowhere else.
	funcParams []string
	// params are the type names of the type parameters in order, "" for a
	// parameter that is not a type (such as the 2 of Conv{2, ...}).
	params []string
	// funcIdx are the 0-based positions of funcParams among the type
	// parameters.
	funcIdx []int
	// param1 is the type name of the first type parameter, if it is a
	// type (the element type of an array type).
	param1 string
}

// typeInfo reads the attributes of the committed datatype at addr, once.
func (f *file) typeInfo(addr uint64) (*typeInfo, error) {
	if _, err := f.committed(addr, f.lim.MaxDepth); err != nil {
		return nil, err
	}
	ti := f.types[addr]
	if ti.loaded {
		return ti, nil
	}
	ti.loaded = true
	in, err := f.info(addr)
	if err != nil {
		return nil, err
	}
	for _, a := range in.attrs {
		switch a.name {
		case "julia_type":
			if ti.name, err = f.typeNameOf(a.dt, a.data, 0); err != nil {
				return nil, err
			}
			if ti.params, err = f.typeParams(a.dt, a.data); err != nil {
				return nil, err
			}
			for i, p := range ti.params {
				if base := baseName(p); isFunction(base) {
					ti.funcParams = append(ti.funcParams, functionName(base))
					ti.funcIdx = append(ti.funcIdx, i)
				}
			}
			if len(ti.params) > 0 {
				ti.param1 = ti.params[0]
			}
		case "field_datatypes":
			if ti.fieldTypes, err = f.refs(a); err != nil {
				return nil, err
			}
		case "field_types":
			if ti.fieldJT, err = f.refs(a); err != nil {
				return nil, err
			}
		case "field_names":
			if ti.fieldNames, err = f.strings(a); err != nil {
				return nil, err
			}
		case "empty":
			ti.empty = true
		}
	}
	return ti, nil
}

// refs reads an attribute holding object references.
func (f *file) refs(a *attribute) ([]uint64, error) {
	if !a.dt.isObjectRef() {
		return nil, nil
	}
	n := a.space.n
	if n > uint64(len(a.data))/8 {
		return nil, errAt(convert.ErrMalformed, a.off, "attribute %q holds %d references in %d bytes", a.name, n, len(a.data))
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = le64(a.data[8*i:])
	}
	return out, nil
}

// strings reads an attribute holding variable-length strings.
func (f *file) strings(a *attribute) ([]string, error) {
	if !a.dt.isVlenString() || a.dt.size != 16 {
		return nil, nil
	}
	n := a.space.n
	if n > uint64(len(a.data))/16 {
		return nil, errAt(convert.ErrMalformed, a.off, "attribute %q holds %d strings in %d bytes", a.name, n, len(a.data))
	}
	out := make([]string, n)
	for i := range out {
		s, err := f.vlenText(a.data[16*i:])
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// vlenText reads a variable-length string, once per heap object: the same
// type name is referred to from every dataset of its type, and copying it
// for each would cost its length each time. Each string kept is charged
// to the work budget.
func (f *file) vlenText(b []byte) (string, error) {
	key := [2]uint64{le64(b[4:]), uint64(le64u32(b[12:]))<<32 | uint64(le64u32(b))}
	if s, ok := f.texts[key]; ok {
		return s, f.step(1)
	}
	raw, _, err := f.vlen(b, 1)
	if err != nil {
		return "", err
	}
	s := f.text(raw)
	if err := f.step(len(s) + 1); err != nil {
		return "", err
	}
	f.texts[key] = s
	return s, nil
}

func (f *file) text(b []byte) string {
	if len(b) > f.lim.MaxStringBytes {
		b = b[:f.lim.MaxStringBytes]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// typeNameOf reads the "name" member of a Core.DataType value (a compound of
// a name and parameters), or follows a reference to such a value.
func (f *file) typeNameOf(dt *dtype, b []byte, depth int) (string, error) {
	if depth > 8 {
		return "", errAt(convert.ErrLimit, -1, "julia_type reference chain too long")
	}
	if err := f.step(1); err != nil {
		return "", err
	}
	if dt.isObjectRef() && len(b) >= 8 {
		addr := le64(b)
		if addr == 0 {
			return "", nil
		}
		in, err := f.info(addr)
		if err != nil {
			return "", err
		}
		if in.kind == kindType {
			ti, err := f.typeInfo(addr)
			if err != nil {
				return "", err
			}
			return ti.name, nil
		}
		if in.kind != kindDataset || in.space.kind != spaceScalar {
			return "", nil
		}
		data, _, err := f.datasetBytes(in)
		if err != nil {
			return "", err
		}
		return f.typeNameOf(in.dt, data, depth+1)
	}
	if dt.class != classCompound || uint64(len(b)) < uint64(dt.size) {
		return "", nil
	}
	for _, m := range dt.members {
		if m.name == "name" && m.typ.isVlenString() && m.typ.size == 16 {
			return f.vlenText(b[m.offset:])
		}
	}
	return "", nil
}
