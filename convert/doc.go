// Package convert holds what the converters from foreign checkpoint formats
// share: the Model a reader extracts, the conversion report, the model
// structure recorded as data, the naming rules of spec/CONVERSION.md, and the
// writer that turns a Model into a .swt file.
//
// Readers live in subpackages (convert/bson, convert/jld2,
// convert/safetensors); convert/structure reads a recorded structure back
// from a file's metadata. None of them ever executes code from the source file:
// code objects are reported and dropped.
package convert
