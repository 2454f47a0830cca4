// Package convert holds what the converters from foreign checkpoint formats
// share: the Model a reader extracts, the conversion report, the model
// structure recorded as data, the naming rules of spec/CONVERSION.md, the
// writer that turns a Model into a .swt file, and the options every
// converter takes.
//
// It is also the semantic layer both Julia readers apply, so that a model
// saved with BSON.jl and with JLD2 converts to the same tensors: the table
// of known Flux types and their field names (FieldNames), type-name
// normalisation (TypeName), parameter wrappers whose gradients are dropped
// (WrapperOf), optimiser types (IsOptimiser), arrays kept as byte buffers
// (BufferArray), state buffers that are not parameters (IsStateField, the
// tensor's Role), and Diagnose, which names a file that is not what its
// reader expects (a Julia Serialization stream, text-mode damage).
//
// Readers live in subpackages (convert/bson, convert/jld2,
// convert/safetensors; convert/auto picks one by content); convert/structure
// reads a recorded structure back from a file's metadata. None of them ever
// executes code from the source file: code objects are reported and dropped.
// Each has the same entry points:
//
//	Convert(ctx, src, dst string, opts ...convert.Option) (*convert.Report, error)
//	Read(data []byte, opts ...convert.Option) (*convert.Model, error)
//
// and declares its Version and Converter, the name recorded in the
// provenance of what it writes and in its reports. The options of this
// package (WithStrict, WithIncludeOptimizer, WithEncodeOptions,
// WithDecodeOptions, WithProgress) apply to every converter; a converter's
// limits come from its own package's WithLimits, and the other converters
// ignore them.
package convert
