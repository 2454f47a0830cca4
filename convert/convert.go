package convert

import (
	"errors"

	"github.com/safeweights/safeweights/format"
)

// Model is what a reader extracts from a source file.
type Model struct {
	// SourceFormat names the source format: "bson.jl", "jld2", "safetensors".
	SourceFormat string
	// Tensors in the order the reader found them (depth first through the
	// model structure). Names are unique.
	Tensors []Tensor
	// Structure is the model's structure as data, or nil when the source has none.
	Structure *Node
	// Metadata is carried into the model-level metadata of the output.
	Metadata map[string]string
	// Report says what was dropped and what the source declared.
	Report Report
}

// Tensor is one array to be written.
type Tensor struct {
	Name  string
	DType format.DType
	// Shape is row-major (outermost first): a Julia size reversed.
	Shape []int64
	// Data holds the canonical row-major little-endian bytes. It may alias
	// the mapped source file.
	Data []byte
	// Aliases are the other paths by which the source reached the same array.
	Aliases []string
	// Role is RoleParameter (empty) for a trained parameter, or RoleState
	// for a buffer the model keeps beside its parameters: running
	// statistics, a recurrent layer's live state (spec/CONVERSION.md N12).
	// The writer records a role other than a parameter's as the tensor
	// attribute "role".
	Role string
}

// Drop kinds: why something in the source was not carried into the output.
const (
	DropCode            = "code"             // serialized code: closures, CodeInfo, methods
	DropFunction        = "function"         // a reference to a named function, kept only as its name
	DropGPUArray        = "gpu-array"        // a GPU array saved without its data
	DropRawPointer      = "raw-pointer"      // a raw pointer
	DropGlobalRef       = "global-ref"       // a reference to a global binding
	DropGradient        = "gradient"         // the gradient of a tracked array
	DropOptimizer       = "optimizer-state"  // optimiser state (kept with IncludeOptimizer)
	DropUnsupportedType = "unsupported-type" // an array whose element type the format lacks
	DropNonNumeric      = "non-numeric"      // strings, symbols and other non-array data
	DropUndef           = "undef"            // an undefined field or element
	DropOrphan          = "orphan"           // stored data that nothing refers to
)

// Dropped is one item of the source that the output does not carry.
type Dropped struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

// Report is the conversion report, printed for people and written as JSON.
type Report struct {
	Source       string `json:"source,omitempty"`
	SourceFormat string `json:"source_format"`
	SourceSHA256 string `json:"source_sha256,omitempty"`
	Output       string `json:"output,omitempty"`
	// Converter names the reader and its version, as the provenance
	// records it: its package's Converter, such as
	// "safeweights/convert/bson 1.1" (ConverterName).
	Converter string            `json:"converter"`
	Versions  map[string]string `json:"versions,omitempty"` // e.g. "jld2": "0.1.1", "julia": "1.9.0"
	Tensors   []ReportTensor    `json:"tensors"`
	Dropped   []Dropped         `json:"dropped"`
	Warnings  []string          `json:"warnings,omitempty"`
	// HasCode is true when the source contained serialized code.
	HasCode bool `json:"has_code"`
}

// ReportTensor is one tensor written.
type ReportTensor struct {
	Name    string   `json:"name"`
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Bytes   int64    `json:"bytes"`
	Aliases []string `json:"aliases,omitempty"`
	Role    string   `json:"role,omitempty"`
}

// Options are the settings every reader walks with, set by
// WithIncludeOptimizer and WithStrict. The zero value keeps model weights
// only and drops code.
type Options struct {
	// IncludeOptimizer keeps optimiser state under the "optimizer." prefix.
	IncludeOptimizer bool
	// Strict refuses a source that contains serialized code.
	Strict bool
}

// Node is the model structure as data (spec/CONVERSION.md section 4): enough
// for a loader to rebuild a known architecture from an allow-list of types
// without running code.
type Node struct {
	// Kind is one of "struct", "namedtuple", "tuple", "vector", "dict",
	// "array", "function", "scalar", "string", "symbol", "nothing",
	// "dropped", or "ref" for the back-edge of a cycle (see Ref).
	Kind string `json:"kind"`
	// Type is the Julia type name, such as "Flux.Dense" (parameters omitted).
	Type string `json:"type,omitempty"`
	// Fields of a struct or named tuple, in declaration order.
	Fields []Field `json:"fields,omitempty"`
	// Items of a tuple, vector or dict (a dict item is a 2-tuple).
	Items []*Node `json:"items,omitempty"`
	// Tensor names the output tensor an array became.
	Tensor string `json:"tensor,omitempty"`
	// Function is a function's name, such as "relu"; empty for an
	// anonymous function.
	Function string `json:"function,omitempty"`
	// Anonymous marks an anonymous function or closure (Julia's "#3#4"):
	// a consumer cannot rebuild it, only see that a function stood there.
	Anonymous bool `json:"anonymous,omitempty"`
	// Value is a scalar, string or symbol as text; DType is a scalar's type.
	Value string `json:"value,omitempty"`
	DType string `json:"dtype,omitempty"`
	// Dropped says why the value is not in the output (a Drop kind).
	Dropped string `json:"dropped,omitempty"`
	// Ref is the path, as a tensor name (rules N1, N6), where an object
	// reached again was first described: set on a node of kind "ref" (an
	// object reached again while it is still being walked, a cycle) and
	// on the kind-and-type-only node of a shared object reached again
	// (spec/CONVERSION.md section 4).
	Ref string `json:"ref,omitempty"`
}

// Field is a named member of a struct or named tuple.
type Field struct {
	Name string `json:"name"`
	Node *Node  `json:"node"`
}

// Metadata keys that the writer sets (spec/CONVERSION.md section 5).
const (
	MetaStructure = "safeweights.structure" // JSON of the root Node
	MetaReport    = "safeweights.report"    // JSON summary of what was dropped
)

// Errors shared by the converters. Each reader wraps one of these (with
// errors.Is) in an error that says where in the source the problem is.
var (
	// ErrMalformed: the source is not a well-formed file of its format.
	ErrMalformed = errors.New("convert: malformed source")
	// ErrLimit: the source is over a limit of the reader.
	ErrLimit = errors.New("convert: limit exceeded")
	// ErrUnsupported: a valid feature of the source format that the reader
	// does not implement (a compression filter, an element type).
	ErrUnsupported = errors.New("convert: unsupported feature")
	// ErrRefused: the source asks for something the converter never does,
	// such as reading another file (external links, external storage).
	ErrRefused = errors.New("convert: refused")
	// ErrHasCode: strict mode, and the source contains serialized code.
	ErrHasCode = errors.New("convert: source contains code")
	// ErrNoWeights: the source holds GPU arrays saved without their data.
	ErrNoWeights = errors.New("convert: weights not in file (saved from the GPU; save with cpu(model))")
	// ErrNameClash: two different arrays would get the same tensor name (N10).
	ErrNameClash = errors.New("convert: two arrays with the same name")
	// ErrJuliaSerialization: the source is a stream of Julia's Serialization
	// standard library (it starts with "7JL"), whatever its name says.
	// Reading one runs code, so it is never read: re-save the weights with
	// BSON.jl or JLD2.
	ErrJuliaSerialization = errors.New("convert: a Julia Serialization stream, which can run code when read (re-save the model's weights with JLD2 or BSON.jl)")
	// ErrTextMode: the source's bytes were rewritten by a text-mode
	// transfer (line endings converted, or NUL bytes replaced): the
	// original file must be copied again in binary mode.
	ErrTextMode = errors.New("convert: file damaged by a text-mode transfer (copy it again in binary mode)")
)
