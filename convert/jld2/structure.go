package jld2

import (
	"slices"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/convert"
)

// maxParams bounds the type parameters read from one julia_type: a Chain's
// tuple has one per layer.
const maxParams = 4096

// typeParams returns the type names of the parameters of a Core.DataType
// value, in order; a parameter that is not a type (an integer, a tuple of
// symbols) gives "".
func (f *file) typeParams(dt *dtype, b []byte) ([]string, error) {
	if dt.class != classCompound || uint64(len(b)) < uint64(dt.size) {
		return nil, nil
	}
	var out []string
	for _, m := range dt.members {
		if m.name != "parameters" || m.typ.class != classVlen || m.typ.size != 16 || !m.typ.base.isObjectRef() {
			continue
		}
		s, n, err := f.vlen(b[m.offset:], 8)
		if err != nil {
			return nil, err
		}
		ref := &dtype{class: classRef, size: 8, version: 1}
		for i := uint64(0); i < n && i < maxParams; i++ {
			name, err := f.typeNameOf(ref, s[8*i:], 1)
			if err != nil {
				return nil, err
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// slot is one field of a struct or item of a tuple in declaration order:
// a compound member, or a field without data whose type is ghost.
type slot struct {
	name   string
	member int // index in the compound's members, or -1
	ghost  string
}

// ghostSlots restores, for a file written before JLD2 0.5 (no field_names),
// the fields that the compound omits because they hold no data: functions
// such as a Dense's σ, and function layers such as flatten in a Chain's
// tuple (spec/convert-jld2.md J5). A tuple's items are its type parameters,
// one each, so a missing member k is parameter k. A struct of a known type
// gets its fields from the table of known types (N3): the missing fields,
// in order, are the function types among its parameters, in order. ok is
// false when the file does not tell; the compound's members are then all
// there is.
func ghostSlots(kind, base string, dt *dtype, ti *typeInfo) ([]slot, bool) {
	if ti == nil || len(ti.params) == 0 {
		return nil, false
	}
	switch kind {
	case "tuple":
		n := len(ti.params)
		if n <= len(dt.members) || n >= maxParams {
			return nil, false
		}
		slots := make([]slot, n)
		for i := range slots {
			slots[i] = slot{name: strconv.Itoa(i + 1), member: -1, ghost: ti.params[i]}
		}
		for i, m := range dt.members {
			k, err := strconv.Atoi(m.name)
			if err != nil || k < 1 || k > n || slots[k-1].member >= 0 {
				return nil, false
			}
			slots[k-1].member = i
		}
		for _, s := range slots {
			if s.member < 0 && s.ghost == "" {
				return nil, false
			}
		}
		return slots, true
	case "struct":
		var funcs []string
		for _, p := range ti.params {
			if isFunction(baseName(p)) {
				funcs = append(funcs, p)
			}
		}
		if len(funcs) == 0 {
			return nil, false
		}
		names, ok := convert.FieldNamesParams(base, len(dt.members)+len(funcs), len(ti.params))
		if !ok {
			return nil, false
		}
		slots := make([]slot, len(names))
		for i, fn := range names {
			slots[i] = slot{name: fn, member: -1}
		}
		for i, m := range dt.members {
			k := slices.Index(names, fieldName(base, m.name))
			if k < 0 || slots[k].member >= 0 {
				return nil, false
			}
			slots[k].member = i
		}
		j := 0
		for i := range slots {
			if slots[i].member < 0 {
				slots[i].ghost = funcs[j]
				j++
			}
		}
		return slots, true
	}
	return nil, false
}

// restorable returns ghostSlots for a compound without field_names.
func restorable(names []string, kind, base string, dt *dtype, ti *typeInfo) ([]slot, bool) {
	if names != nil {
		return nil, false
	}
	return ghostSlots(kind, base, dt, ti)
}

// isAnonymous reports whether a function type name (its last part, after
// the module path) is that of an anonymous function or closure: Julia
// names those "#1", "#3#4" or "#f#5", a named function's type "#relu".
func isAnonymous(base string) bool {
	if s, ok := strings.CutPrefix(base, "typeof("); ok {
		base = strings.TrimSuffix(s, ")")
	}
	i := strings.Index(base, "#")
	if i < 0 {
		return false
	}
	rest := strings.Trim(base[i:], "#\"")
	return rest == "" || strings.Contains(rest, "#") || rest[0] >= '0' && rest[0] <= '9'
}
