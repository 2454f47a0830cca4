// Package testvectors serves the language-neutral test vectors of the
// safeweights format (spec/SPEC.md) to Go tests.
//
// A vector is one file: a few "key: value" lines, an empty line, then the
// bytes of a .swt file up to the end of the vector file. The first line is
// always "expect: ok" or "expect: KIND", where KIND is a failure kind of the
// spec's closed list (format.Kind.Name). README.md in this directory
// describes the format for readers in other languages; the vectors under
// core/ are written by `go generate` (internal/gen), those under sign/ by
// the signature package's generator.
package testvectors
