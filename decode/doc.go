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
// What a check guarantees (spec/SPEC.md section 5.1): every copying read
// (ReadInto, Bytes and Stored without a mapping, compressed tensors, slices)
// reads the stored bytes once into the buffer it returns, hashes that
// buffer, and returns it only if every digest matched, on every call. A
// view of the mapping (Bytes, Stored and View on a mapped file) is checked
// once, at its first access, and shows whatever another writer of the file
// puts there later: use views for files you own, and WithCheckedReads (which
// sign.Require implies) for files others can write. Under a verify mode the
// padding around a tensor is checked before its first read.
//
// The reader given to NewReader may be remote (package source: an HTTP
// server read by range requests): decode passes it the caller's context
// when it implements ReaderAtContext, and keeps as many reads in flight as
// it asks for through ReadParallelism. Its bytes are checked like a local
// file's; this package imports no network code.
//
// A File is safe for concurrent use by multiple goroutines.
package decode
