// Package encode writes safeweights files (spec/SPEC.md).
//
// A Writer takes tensors one at a time, from memory or from an io.Reader,
// and never holds the model in memory: tensor bytes go to a temporary file
// next to the destination as they arrive, hashed chunk by chunk on all cores.
// Close writes the header and the preamble, syncs the file and renames it
// into place, so the destination holds either the complete file or nothing.
// Output is deterministic: the same tensors, in the same order, with the same
// options give the same bytes.
package encode
