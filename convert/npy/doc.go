// Package npy writes tensors as NumPy .npy files (format versions 1.0 and
// 2.0) and turns tensor names into safe file names.
//
// The header is written byte for byte as numpy.save writes it: the dict
// literal with sorted keys, the spare space numpy leaves for growing the
// first axis, and padding to a multiple of 64 bytes. Version 1.0 is used
// whenever the header fits its 16-bit length, 2.0 otherwise.
//
// NumPy has no type for BF16, F8_E4M3 and F8_E5M2. Their elements are
// written as unsigned integers of the same width ('<u2', '|u1'), which keep
// every bit and which any NumPy can load; view them as the real type with
// ml_dtypes (a.view(ml_dtypes.bfloat16)). Descr reports such a mapping as
// not exact, so a caller can tell its user. The rules are S13 and S14 of
// spec/convert-safetensors.md.
package npy
