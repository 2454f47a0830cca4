// Package format defines the safeweights file format: its constants, element
// types, limits and the closed list of failure kinds, and it translates
// between Go values and the bytes of the preamble, the FlatBuffers header and
// the signature block.
//
// The normative description is spec/SPEC.md (format version 1.0). Each check
// in this package names the rule of the spec it enforces, as "R12". Generated
// FlatBuffers code lives in format/internal/fbs and never appears in an
// exported signature; this package verifies every header buffer completely
// before a generated accessor touches it, because the FlatBuffers Go runtime
// has no verifier and its accessors panic on bad offsets.
package format

//go:generate flatc --go --go-namespace fbs -o internal ../spec/safeweights.fbs
