// Package tp plans tensor-parallel reads: which slice of each tensor rank r
// of a group of w ranks holds, and reads exactly those slices, verified
// (docs/SLICES.md).
//
// A Layout says, per tensor, along which dimension it is split, or that it
// is replicated on every rank. Rows splits dimension 0 (the output features
// of a row-major [out, in] weight: Megatron's column-parallel linear, whose
// weight rows are the output columns), Columns the last dimension (the input
// features: row-parallel linear). The names follow the stored matrix, not
// the layer: a Rows split cuts the stored rows.
//
// A dimension that w does not divide is split as numpy.array_split does:
// the first d mod w ranks get one index more than the others, so no rank
// holds more than ceil(d/w). Megatron-LM and vLLM refuse such splits for
// their linear layers (their divide() asserts divisibility); Plan does the
// same with WithDivisible. vLLM's vocabulary-parallel embedding instead pads
// the vocabulary to a multiple of w; a caller that wants that pads the
// tensor it builds from the slices, since padding rows are not in the file.
//
// Read uses decode's slice reads, so a rank fetches only the chunks its
// slices touch, and under a verify mode every byte it gets was hashed in the
// buffer it is returned from.
//
// The chunk digests checked are those of spec/SPEC.md section 5.
package tp
