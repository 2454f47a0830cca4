// Package sign signs safeweights files with Ed25519 and verifies them
// against explicitly trusted keys (spec/SIGNATURES.md).
//
// A signature covers the file's preamble, which holds the header digest; the
// header holds the digest algorithm and every chunk digest. So one Ed25519
// check of a few hundred bytes authenticates the header at once, and the
// chunk digests, checked in parallel by decode, authenticate every data
// byte. Verify does both by default; skipping the data digests takes an
// option named Unsafe. Signatures live in a signature block appended after
// the header, so signing never rewrites tensor data, or in a detached
// FILE.swt.sig file holding the same block.
//
// Verification fails closed: with no trusted key nothing verifies, entries
// of unknown algorithms and untrusted keys never count, and a trusted key
// whose signature does not verify is an error even when another one does.
package sign
