package convert

import (
	"strings"

	"github.com/safeweights/safeweights/format"
)

// This file is the part of the semantic layer that both Julia readers
// share beside the table of known types (fluxtypes.go): which types wrap a
// parameter, which arrays are state rather than parameters, which element
// type names are numbers, and which arrays keep their data as bytes
// (spec/CONVERSION.md rules N7, N9, N11, N12).

// Wrapper describes a type that boxes one parameter array (rule N7): the
// array in field Value takes the wrapper's path; arrays in the Gradient
// fields are dropped as gradients, those in the Optimizer fields are
// optimiser state.
type Wrapper struct {
	Value     string
	Gradient  []string
	Optimizer []string
}

var wrappers = map[string]Wrapper{
	"Tracker.TrackedArray":         {Value: "data", Gradient: []string{"tracker", "grad"}},
	"Flux.Tracker.TrackedArray":    {Value: "data", Gradient: []string{"tracker", "grad"}},
	"AutoGrad.Param":               {Value: "value", Optimizer: []string{"opt"}},
	"InvertibleNetworks.Parameter": {Value: "data", Gradient: []string{"grad"}},
}

// knetWrappers are the types Knet's save functions write in place of a
// KnetArray or a Param (by their last name part: their module moved across
// Knet versions): JLD2KnetArray and KnetJLD hold the array copied to the
// CPU, ParamJLD a Param's value and optimiser.
var knetWrappers = map[string]Wrapper{
	"JLD2KnetArray": {Value: "array"},
	"KnetJLD":       {Value: "a"},
	"ParamJLD":      {Value: "value", Optimizer: []string{"opt"}},
}

// WrapperOf returns how the parameter wrapper typeName is read, if it is one.
func WrapperOf(typeName string) (Wrapper, bool) {
	n := TypeName(typeName)
	if w, ok := wrappers[n]; ok {
		return w, true
	}
	if i := strings.LastIndexByte(n, '.'); i > 0 && strings.HasPrefix(n, "Knet.") {
		w, ok := knetWrappers[n[i+1:]]
		return w, ok
	}
	return Wrapper{}, false
}

// Role of a tensor (rule N12): a parameter, or a buffer of state that the
// model keeps beside its parameters.
const (
	RoleParameter = ""      // a trained parameter (the default; not recorded)
	RoleState     = "state" // running statistics, a recurrent layer's live state
)

// stateFields are, by type, the fields that hold buffers rather than
// parameters: BatchNorm's running mean and variance, the live state of a
// recurrent layer (Flux.Recur's state; the cells' state0 is the trained or
// chosen initial state and stays a parameter).
var stateFields = map[string][]string{
	"Flux.BatchNorm":    {"μ", "σ²"},
	"Flux.InstanceNorm": {"μ", "σ²"},
	"Flux.GroupNorm":    {"μ", "σ²"},
	"Flux.Recur":        {"state"},
}

// IsStateField reports whether field of the type typeName holds state
// buffers: every array below it has the role RoleState.
func IsStateField(typeName, field string) bool {
	for _, f := range stateFields[TypeName(typeName)] {
		if f == field {
			return true
		}
	}
	return false
}

// elementTypes maps Julia's number types to the format's (the element
// types of arrays).
var elementTypes = map[string]format.DType{
	"Core.Float64": format.F64, "Core.Float32": format.F32, "Core.Float16": format.F16,
	"Core.BFloat16": format.BF16, "BFloat16s.BFloat16": format.BF16,
	"Core.Int64": format.I64, "Core.Int32": format.I32, "Core.Int16": format.I16, "Core.Int8": format.I8,
	"Core.UInt64": format.U64, "Core.UInt32": format.U32, "Core.UInt16": format.U16, "Core.UInt8": format.U8,
	"Core.Bool": format.Bool,
}

// ElementType returns the format's type for the Julia number type name
// ("Float32", "Core.Float32", "Core.Core.Float32").
func ElementType(name string) (format.DType, bool) {
	n := TypeName(strings.TrimSpace(name))
	if !strings.Contains(n, ".") {
		n = "Core." + n
	}
	d, ok := elementTypes[n]
	return d, ok
}

// BufferArray reports whether typeName is an array type that keeps its data
// as a byte buffer beside its dimensions (rule N11): Knet's KnetArray{T,N},
// whose KnetPtr holds the bytes when saved.
func BufferArray(typeName string) bool {
	switch TypeName(typeName) {
	case "Knet.KnetArrays.KnetArray", "Knet.KnetArray":
		return true
	}
	return false
}

// TypeParams splits the parameters of a type name: "A{Float32, 2}" gives
// ["Float32", "2"]; nested braces stay whole.
func TypeParams(name string) []string {
	i := strings.IndexByte(name, '{')
	if i < 0 || !strings.HasSuffix(name, "}") {
		return nil
	}
	body := name[i+1 : len(name)-1]
	var out []string
	depth, start := 0, 0
	for j := 0; j < len(body); j++ {
		switch body[j] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(body[start:j]))
				start = j + 1
			}
		}
	}
	return append(out, strings.TrimSpace(body[start:]))
}
