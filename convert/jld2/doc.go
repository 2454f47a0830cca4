// Package jld2 reads Flux.jl checkpoints saved with JLD2.jl and turns them
// into a convert.Model, without running Julia and without a general HDF5
// library.
//
// JLD2 files are HDF5 files with a 512-byte text header as the user block.
// The reader implements only the subset of HDF5 that JLD2 writes (superblock
// version 2 and 3, version 2 object headers, committed datatypes, object
// references, global heaps, compact, contiguous and chunked layouts with the
// deflate and zstd filters) and treats every byte as hostile: each address,
// length and count is checked against the file, the Limits and integer
// overflow before use, every object is visited once, and nesting is bounded.
// It never opens another file: external links, external data storage and
// virtual datasets are refused.
//
// The normative description is spec/convert-jld2.md; the naming rules are
// those of spec/CONVERSION.md.
package jld2
