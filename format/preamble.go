package format

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/bits"

	"lukechampine.com/blake3"
)

// Layout constants of format version 1.0 (spec section 3).
const (
	// PreambleSize is the size of the fixed preamble at offset 0.
	PreambleSize = 128
	// VersionMajor and VersionMinor are the format version this package writes.
	VersionMajor = 1
	VersionMinor = 0
	// DefaultAlignment is the default alignment of tensor data: a page, so
	// O_DIRECT reads, GPUDirect Storage and typed views of a mapping all work.
	DefaultAlignment = 4096
	// MinAlignment and MaxAlignment bound the alignment a file may record.
	MinAlignment = 64
	MaxAlignment = 1 << 24
	// DefaultChunkSize is the default size of a digest chunk.
	DefaultChunkSize = 4 << 20
	// MinChunkSize and MaxChunkSize bound the chunk size a file may record.
	MinChunkSize = 1 << 10
	MaxChunkSize = 1 << 30
	// DigestSize is the size of every digest the format records.
	DigestSize = 32
	// HeaderAlignment is the alignment of the FlatBuffers header.
	HeaderAlignment = 8
)

// Magic is the first 8 bytes of every file: a non-ASCII byte, the name, and
// the CR LF, EOF and LF bytes that expose text-mode corruption (as in PNG).
var Magic = [8]byte{0x89, 'S', 'W', 'T', '\r', '\n', 0x1a, '\n'}

// DigestAlgorithm identifies the hash used for the header digest and the
// chunk digests (spec section 5).
type DigestAlgorithm uint32

const (
	// BLAKE3 is BLAKE3 with a 256-bit output, the default.
	BLAKE3 DigestAlgorithm = 1
	// SHA256 is SHA-256, for users who need a FIPS 140 approved algorithm.
	SHA256 DigestAlgorithm = 2
)

// Valid reports whether a is an algorithm of the format.
func (a DigestAlgorithm) Valid() bool { return a == BLAKE3 || a == SHA256 }

func (a DigestAlgorithm) String() string {
	switch a {
	case BLAKE3:
		return "blake3-256"
	case SHA256:
		return "sha-256"
	}
	return "DigestAlgorithm(" + itoa(uint64(a)) + ")"
}

// ParseDigestAlgorithm accepts the names String prints, plus "blake3" and "sha256".
func ParseDigestAlgorithm(s string) (DigestAlgorithm, bool) {
	switch s {
	case "blake3-256", "blake3", "BLAKE3":
		return BLAKE3, true
	case "sha-256", "sha256", "SHA256", "SHA-256":
		return SHA256, true
	}
	return 0, false
}

// New returns a new hash of the algorithm. It panics on an invalid algorithm,
// which ParsePreamble never returns.
func (a DigestAlgorithm) New() hash.Hash {
	switch a {
	case BLAKE3:
		return blake3.New(DigestSize, nil)
	case SHA256:
		return sha256.New()
	}
	panic("swt: invalid digest algorithm")
}

// Sum returns the digest of b.
func (a DigestAlgorithm) Sum(b []byte) [DigestSize]byte {
	switch a {
	case BLAKE3:
		return blake3Sum256(b)
	case SHA256:
		return sha256.Sum256(b)
	}
	panic("swt: invalid digest algorithm")
}

// SumParallel returns Sum(b), using up to n goroutines where the algorithm
// allows it. BLAKE3 is a tree and splits; SHA-256 is a chain and does not.
// Hashing one large chunk on every core matters where chunks are few: a
// model of 1 MiB tensors has one digest chunk per tensor.
func (a DigestAlgorithm) SumParallel(b []byte, n int) [DigestSize]byte {
	if a == BLAKE3 && n > 1 {
		return blake3Parallel(b, n)
	}
	return a.Sum(b)
}

// Preamble is the fixed 128-byte start of a file (spec section 3.1).
type Preamble struct {
	VersionMajor    uint16
	VersionMinor    uint16
	Flags           uint32
	Alignment       uint32
	DigestAlgorithm DigestAlgorithm
	DataOffset      uint64
	DataLength      uint64
	HeaderOffset    uint64
	HeaderLength    uint64
	HeaderDigest    [DigestSize]byte
}

// AppendBinary appends the 128 bytes of p to b.
func (p *Preamble) AppendBinary(b []byte) ([]byte, error) {
	var buf [PreambleSize]byte
	copy(buf[0:8], Magic[:])
	le := binary.LittleEndian
	le.PutUint16(buf[8:], p.VersionMajor)
	le.PutUint16(buf[10:], p.VersionMinor)
	le.PutUint32(buf[12:], p.Flags)
	le.PutUint32(buf[16:], p.Alignment)
	le.PutUint32(buf[20:], uint32(p.DigestAlgorithm))
	le.PutUint64(buf[24:], p.DataOffset)
	le.PutUint64(buf[32:], p.DataLength)
	le.PutUint64(buf[40:], p.HeaderOffset)
	le.PutUint64(buf[48:], p.HeaderLength)
	copy(buf[56:88], p.HeaderDigest[:])
	return append(b, buf[:]...), nil
}

// DataEnd is the offset just past the data region.
func (p *Preamble) DataEnd() uint64 { return p.DataOffset + p.DataLength }

// HeaderEnd is the offset just past the header: where a signature block starts.
func (p *Preamble) HeaderEnd() uint64 { return p.HeaderOffset + p.HeaderLength }

// AlignUp rounds v up to a multiple of a, a power of two. ok is false on overflow.
func AlignUp(v, a uint64) (r uint64, ok bool) {
	s, c := bits.Add64(v, a-1, 0)
	if c != 0 {
		return 0, false
	}
	return s &^ (a - 1), true
}

// ParsePreamble decodes and checks the preamble (rules R1 to R8) against the
// size of the file and the limits. It does not read the header.
func ParsePreamble(b []byte, fileSize int64, lim Limits) (Preamble, error) {
	var p Preamble
	if fileSize < PreambleSize || len(b) < PreambleSize {
		if fileSize >= 8 && len(b) >= 8 && [8]byte(b[:8]) != Magic {
			return p, Errorf(ErrMagic, "R1", 0, "magic", "")
		}
		return p, Errorf(ErrTruncated, "R1", 0, "preamble", "file shorter than 128 bytes")
	}
	if [8]byte(b[:8]) != Magic {
		return p, Errorf(ErrMagic, "R1", 0, "magic", "")
	}
	le := binary.LittleEndian
	p.VersionMajor = le.Uint16(b[8:])
	p.VersionMinor = le.Uint16(b[10:])
	p.Flags = le.Uint32(b[12:])
	p.Alignment = le.Uint32(b[16:])
	p.DigestAlgorithm = DigestAlgorithm(le.Uint32(b[20:]))
	p.DataOffset = le.Uint64(b[24:])
	p.DataLength = le.Uint64(b[32:])
	p.HeaderOffset = le.Uint64(b[40:])
	p.HeaderLength = le.Uint64(b[48:])
	copy(p.HeaderDigest[:], b[56:88])

	if p.VersionMajor != VersionMajor {
		return p, Errorf(ErrVersion, "R2", 8, "version", "major version "+itoa(uint64(p.VersionMajor)))
	}
	if p.Flags != 0 {
		return p, Errorf(ErrVersion, "R2", 12, "flags", "unknown flags set")
	}
	for i := 88; i < PreambleSize; i++ {
		if b[i] != 0 {
			return p, Errorf(ErrVersion, "R2", int64(i), "reserved", "reserved byte not zero")
		}
	}
	a := uint64(p.Alignment)
	if a < MinAlignment || a > MaxAlignment || a&(a-1) != 0 {
		return p, Errorf(ErrLayout, "R3", 16, "alignment", "not a power of two in [64, 16 MiB]")
	}
	if !p.DigestAlgorithm.Valid() {
		return p, Errorf(ErrUnsupported, "R4", 20, "digest algorithm", "unknown algorithm "+itoa(uint64(p.DigestAlgorithm)))
	}
	if want, _ := AlignUp(PreambleSize, a); p.DataOffset != want {
		return p, Errorf(ErrLayout, "R5", 24, "data offset", "must be the end of the preamble rounded up to the alignment")
	}
	dataEnd, c := bits.Add64(p.DataOffset, p.DataLength, 0)
	if c != 0 {
		return p, Errorf(ErrLayout, "R5", 32, "data length", "overflows")
	}
	want, ok := AlignUp(dataEnd, HeaderAlignment)
	if !ok || p.HeaderOffset != want {
		return p, Errorf(ErrLayout, "R6", 40, "header offset", "must be the end of the data rounded up to 8")
	}
	if p.HeaderLength > uint64(lim.MaxHeaderSize) {
		return p, Errorf(ErrLimit, "R7", 48, "header length", itoa(p.HeaderLength)+" bytes over the limit of "+itoa(uint64(lim.MaxHeaderSize)))
	}
	if p.HeaderLength < 8 {
		return p, Errorf(ErrHeader, "R7", 48, "header length", "too short for a FlatBuffers root")
	}
	end, c := bits.Add64(p.HeaderOffset, p.HeaderLength, 0)
	if c != 0 || end > uint64(fileSize) {
		return p, Errorf(ErrTruncated, "R8", 48, "header", "extends past the end of the file")
	}
	return p, nil
}
