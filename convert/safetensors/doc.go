// Package safetensors converts between Hugging Face safetensors files and
// safeweights.
//
// A safetensors file is an 8-byte little-endian header length, a JSON
// header mapping tensor names to {dtype, shape, data_offsets} (plus an
// optional "__metadata__" object of strings), and the tensor bytes. The
// reader here is a hardened parser of that format: it never accepts a file
// the Rust safetensors loader rejects, and it rejects more (duplicate names,
// NUL in names, unknown entry fields, a header that does not start with
// '{'). Each rule it enforces is named in spec/convert-safetensors.md, and
// every rejection is an *Error wrapping one of the Err* kinds of this
// package, each of which wraps convert.ErrMalformed, convert.ErrLimit,
// convert.ErrUnsupported or convert.ErrRefused.
//
// Read gives a convert.Model whose tensor data aliases the input (no copy);
// ReadHeader inspects a file without touching its tensor bytes. Write lays
// out a safetensors file exactly as the Python and Rust writers do.
package safetensors
