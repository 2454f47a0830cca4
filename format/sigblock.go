package format

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// SignatureMagic starts a signature block (spec section 3.5).
var SignatureMagic = [8]byte{'S', 'W', 'T', 'S', 'I', 'G', '1', '\n'}

// Signature block layout constants.
const (
	sigBlockFixed = 24 // magic, block length, count, reserved
	sigEntryFixed = 52 // entry length, algorithm, reserved, key id, timestamp, two lengths
	// MaxCommentLength bounds a signature's comment in bytes.
	MaxCommentLength = 1024
	// MaxSignatureLength bounds a signature's bytes.
	MaxSignatureLength = 4096
)

// SignatureAlgorithm identifies the algorithm of one signature entry.
type SignatureAlgorithm uint16

// Ed25519 is the one signature algorithm of version 1.0.
const Ed25519 SignatureAlgorithm = 1

// SignatureEntry is one signature of a signature block. Entries with an
// algorithm this reader does not know are parsed, kept, and never trusted.
type SignatureEntry struct {
	Algorithm SignatureAlgorithm
	KeyID     [32]byte
	Timestamp int64 // Unix seconds
	Comment   string
	Signature []byte
}

// ParseSignatureBlock parses b, which must be exactly one signature block
// (rule R28): the magic, a block length equal to len(b), between 1 and
// lim.MaxSignatures entries whose lengths add up exactly, reserved fields zero,
// comments UTF-8. base is b's offset in the file, for errors.
func ParseSignatureBlock(b []byte, base int64, lim Limits) ([]SignatureEntry, error) {
	bad := func(off int, reason string) error {
		return Errorf(ErrSignatureBlock, "R28", base+int64(off), "signature block", reason)
	}
	if len(b) < sigBlockFixed || [8]byte(b[:8]) != SignatureMagic {
		if len(b) >= 8 && [8]byte(b[:8]) == SignatureMagic {
			return nil, bad(0, "truncated")
		}
		return nil, Errorf(ErrTrailing, "R28", base, "trailing bytes", "not a signature block")
	}
	le := binary.LittleEndian
	if bl := le.Uint64(b[8:]); bl != uint64(len(b)) {
		return nil, bad(8, "block length "+itoa(bl)+" differs from the "+itoa(uint64(len(b)))+" bytes after the header")
	}
	count := le.Uint32(b[16:])
	if count == 0 {
		return nil, bad(16, "signature count 0")
	}
	// A count over the reader's limit is a limit, like every other (SPEC.md
	// section 6), though the block may be well-formed.
	if uint64(count) > uint64(lim.MaxSignatures) {
		return nil, Errorf(ErrLimit, "R28", base+16, "signature block", "signature count "+itoa(uint64(count))+" over the limit of "+itoa(uint64(lim.MaxSignatures)))
	}
	if le.Uint32(b[20:]) != 0 {
		return nil, bad(20, "reserved field not zero")
	}
	out := make([]SignatureEntry, 0, count)
	off := sigBlockFixed
	for i := uint32(0); i < count; i++ {
		if len(b)-off < sigEntryFixed {
			return nil, bad(off, "entry truncated")
		}
		e := b[off:]
		n := le.Uint32(e)
		cl, sl := le.Uint16(e[48:]), le.Uint16(e[50:])
		want, c := bits.Add32(sigEntryFixed, uint32(cl)+uint32(sl), 0)
		if c != 0 || n != want || uint64(n) > uint64(len(e)) {
			return nil, bad(off, "entry length disagrees with its contents")
		}
		if le.Uint16(e[6:]) != 0 {
			return nil, bad(off+6, "reserved field not zero")
		}
		if cl > MaxCommentLength || sl > MaxSignatureLength || sl == 0 {
			return nil, bad(off+48, "comment or signature length out of range")
		}
		comment := e[sigEntryFixed : sigEntryFixed+int(cl)]
		if !utf8.Valid(comment) {
			return nil, bad(off+sigEntryFixed, "comment not UTF-8")
		}
		se := SignatureEntry{
			Algorithm: SignatureAlgorithm(le.Uint16(e[4:])),
			Timestamp: int64(le.Uint64(e[40:])),
			Comment:   string(comment),
			Signature: append([]byte(nil), e[sigEntryFixed+int(cl):n]...),
		}
		copy(se.KeyID[:], e[8:40])
		out = append(out, se)
		off += int(n)
	}
	if off != len(b) {
		return nil, bad(off, "bytes after the last entry")
	}
	return out, nil
}

// AppendSignatureBlock appends a signature block holding entries to b.
func AppendSignatureBlock(b []byte, entries []SignatureEntry) []byte {
	le := binary.LittleEndian
	total := sigBlockFixed
	for _, e := range entries {
		total += sigEntryFixed + len(e.Comment) + len(e.Signature)
	}
	b = append(b, SignatureMagic[:]...)
	b = le.AppendUint64(b, uint64(total))
	b = le.AppendUint32(b, uint32(len(entries)))
	b = le.AppendUint32(b, 0)
	for _, e := range entries {
		b = le.AppendUint32(b, uint32(sigEntryFixed+len(e.Comment)+len(e.Signature)))
		b = le.AppendUint16(b, uint16(e.Algorithm))
		b = le.AppendUint16(b, 0)
		b = append(b, e.KeyID[:]...)
		b = le.AppendUint64(b, uint64(e.Timestamp))
		b = le.AppendUint16(b, uint16(len(e.Comment)))
		b = le.AppendUint16(b, uint16(len(e.Signature)))
		b = append(b, e.Comment...)
		b = append(b, e.Signature...)
	}
	return b
}

// SignedMessage is the message a signature entry signs (spec section 8): a
// domain separator, the whole preamble (which holds the header digest, and so
// covers the header, every chunk digest and the digest algorithm), and the
// entry's own signed fields.
func SignedMessage(preamble []byte, e *SignatureEntry) []byte {
	const domain = "safeweights signature v1\x00"
	le := binary.LittleEndian
	m := make([]byte, 0, len(domain)+PreambleSize+48+len(e.Comment))
	m = append(m, domain...)
	m = append(m, preamble[:PreambleSize]...)
	m = le.AppendUint16(m, uint16(e.Algorithm))
	m = append(m, e.KeyID[:]...)
	m = le.AppendUint64(m, uint64(e.Timestamp))
	m = le.AppendUint16(m, uint16(len(e.Comment)))
	m = append(m, e.Comment...)
	return m
}
