package convert

import "bytes"

// This file says what a file is when it is not what its reader expects
// (spec/CONVERSION.md section 6): a reader calls Diagnose once its own
// format's framing has failed, so that a valid file is never second-guessed.

// SniffSize is how much of the start of a file Diagnose looks at.
const SniffSize = 64 << 10

// juliaSerializationMagic starts every stream of Julia's Serialization
// standard library (Serialization.writeheader: 0x37 'J' 'L', then the
// format version, a byte of endianness and word size, and three reserved
// bytes).
var juliaSerializationMagic = []byte{0x37, 'J', 'L'}

// HDF5's signature, and what text-mode transfers make of it. The signature
// holds "\r\n", "\x1a" and "\n" so that such damage shows.
var (
	hdf5Signature = []byte("\x89HDF\r\n\x1a\n")
	hdf5Damaged   = [][]byte{
		[]byte("HDF\n\x1a\n"),         // CRLF turned into LF
		[]byte("HDF\r\r\n\x1a\r\n"),   // LF turned into CRLF
		[]byte("\xef\xbf\xbdHDF\r\n"), // 0x89 replaced by U+FFFD (decoded as UTF-8)
		[]byte("\xef\xbf\xbdHDF\n"),
	}
	juliaTextHeaders = [][]byte{[]byte("HDF5-based Julia Data Format"), []byte("Julia data file (HDF5)")}
	// BSON.jl's keys with the element type byte before them: a string
	// "tag", a list "_backrefs" or "data" (control bytes that text lacks).
	bsonKeys = [][]byte{[]byte("\x02tag"), []byte("\x04_backrefs"), []byte("\x04data")}
)

// IsJuliaSerialization reports whether data starts like a stream of Julia's
// Serialization standard library.
func IsJuliaSerialization(data []byte) bool {
	return len(data) >= 8 && bytes.HasPrefix(data, juliaSerializationMagic)
}

// Diagnose returns ErrJuliaSerialization for a Julia Serialization stream,
// ErrTextMode for a BSON.jl or JLD2 file damaged by a text-mode transfer,
// or nil when it cannot tell. It looks at the first SniffSize bytes only.
func Diagnose(data []byte) error {
	if IsJuliaSerialization(data) {
		return ErrJuliaSerialization
	}
	p := data[:min(len(data), SniffSize)]
	if len(p) == 0 {
		return nil
	}
	// HDF5: the signature with its line endings or its first byte
	// rewritten, where the intact one is missing.
	if !bytes.Contains(p, hdf5Signature) {
		for _, d := range hdf5Damaged {
			if bytes.Contains(p, d) {
				return ErrTextMode
			}
		}
	}
	// Files of both formats hold many NUL bytes from their first bytes on:
	// JLD2 pads its text header with them up to the superblock at 512, and
	// every BSON key ends with one. A prefix without any, that still reads
	// as one of them, had its NUL bytes replaced (or removed).
	head := p[:min(len(p), 4096)]
	if bytes.IndexByte(head, 0) >= 0 {
		return nil
	}
	for _, h := range juliaTextHeaders {
		if bytes.HasPrefix(head, h) {
			return ErrTextMode
		}
	}
	for _, k := range bsonKeys {
		if bytes.Contains(head, k) {
			return ErrTextMode
		}
	}
	return nil
}
