// Package decode reads safeweights files (spec/SPEC.md) that may come from
// anyone.
//
// Open maps a file read-only and verifies its preamble and header completely
// (every rule the header decides, and the header digest) before it returns;
// tensor bytes are then viewed in place, without a copy. NewReader does the
// same over an io.ReaderAt, copying tensor bytes on access. No input can make
// these functions panic, hang, or allocate more than a small multiple of the
// header's size: every offset and length is checked against the file before
// use.
//
// Chunk digests are checked by Verify, or automatically with WithVerify: lazily
// per tensor on first access, or eagerly at Open. A mapped file that is
// truncated while in use gives ErrIO from this package's functions instead of
// crashing the program; slices returned by Bytes and View alias the mapping
// and must not be used after Close (doing so faults).
//
// A File is safe for concurrent use by multiple goroutines.
package decode
