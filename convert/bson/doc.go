// Package bson reads Flux checkpoints written by Julia's BSON.jl
// (`BSON.@save "model.bson" model`) as data only, and extracts their
// numeric arrays into a convert.Model without running anything.
//
// Loading such a file in Julia can run code: BSON.jl rebuilds anonymous
// functions from stored lowered code and calls constructors named by the
// file. This reader never does either. It walks the BSON document over the
// caller's bytes (the mapped file), decodes BSON.jl's tagged documents
// (struct, datatype, array, backref, tuple, symbol, svec, ref, unionall,
// jl_bottom_type, jl_anonymous), names every plain-bits array by the model
// structure and returns the array bytes as views of the input: nothing is
// copied. Code, pointers, GPU arrays without data and everything else that
// is not carried over are reported in the Model's report.
//
// The subset of BSON.jl read, its limits and the naming and keep rules are
// specified in spec/convert-bson.md; the naming rules shared with the other
// converters are in spec/CONVERSION.md.
//
// Hostile input gives an *Error that wraps one of convert's sentinel errors
// (convert.ErrMalformed, convert.ErrLimit, ...) and says where in the file
// the problem is. Every length is checked against the input before use,
// nesting depth and the work done are bounded by Limits, and memory use is
// bounded by the input size, never by sizes the file claims.
//
// Element iteration is our own rather than bson.Raw.Elements: Elements
// allocates a slice header per element (an amplification a hostile list of
// nulls turns into gigabytes) and reports no offsets. Each embedded document
// is still checked with bson.Raw.Validate as the walk enters it, and scalar
// values are read with bson.RawValue's non-panicking ...OK accessors.
package bson
