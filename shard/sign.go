package shard

import (
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// DomainSeparator begins every message an index signature signs
// (spec/SHARDS.md section 4). It differs from the .swt signature's, so a
// signature of one kind is never valid as the other.
const DomainSeparator = "safeweights shard index v1\x00"

const algEd25519 = "ed25519"

// Message returns the bytes that the entry s signs over body.
func Message(s *Signature, body []byte) []byte {
	m := make([]byte, 0, len(DomainSeparator)+32+8+2+len(s.Comment)+len(body))
	m = append(m, DomainSeparator...)
	m = append(m, s.KeyID[:]...)
	m = binary.LittleEndian.AppendUint64(m, uint64(s.Timestamp))
	m = binary.LittleEndian.AppendUint16(m, uint16(len(s.Comment)))
	m = append(m, s.Comment...)
	return append(m, body...)
}

// Sign adds a signature by signer, whose public key must be Ed25519, with
// the given comment and time; an earlier entry of the same key is replaced.
func (f *File) Sign(signer crypto.Signer, comment string, at time.Time) error {
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("shard: signer is not an Ed25519 key")
	}
	if len(comment) > MaxCommentLength {
		return fmt.Errorf("shard: comment of %d bytes over the limit of %d", len(comment), MaxCommentLength)
	}
	s := Signature{Algorithm: algEd25519, KeyID: sign.KeyIDOf(pub), Timestamp: at.Unix(), Comment: comment}
	sig, err := signer.Sign(nil, Message(&s, f.body), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	if !ed25519.Verify(pub, Message(&s, f.body), sig) {
		return fmt.Errorf("shard: the signer made a signature that does not verify")
	}
	s.Sig = sig
	f.Signatures = slices.DeleteFunc(f.Signatures, func(o Signature) bool { return o.Algorithm == s.Algorithm && o.KeyID == s.KeyID })
	f.Signatures = append(f.Signatures, s)
	return nil
}

// Verified is what Verify established: the trusted entries that verified.
type Verified struct {
	ModelID string
	Signers []Signature
}

// Verify checks the signatures against the trusted keys (X7): every Ed25519
// entry naming a trusted key must verify, and at least one must exist.
// With no trusted key nothing verifies.
func (f *File) Verify(trusted *sign.KeyRing) (*Verified, error) {
	v := &Verified{ModelID: f.Index.ModelID}
	for i, s := range f.Signatures {
		if s.Algorithm != algEd25519 {
			continue
		}
		pub, ok := trusted.Lookup(s.KeyID)
		if !ok {
			continue
		}
		if !ed25519.Verify(pub, Message(&f.Signatures[i], f.body), s.Sig) {
			return nil, errf(format.ErrSignature, "X7", fmt.Sprintf("signature %d (key %s)", i, s.KeyID.Short()), "does not verify")
		}
		v.Signers = append(v.Signers, s)
	}
	if len(v.Signers) == 0 {
		return nil, errf(format.ErrNoSignature, "X7", "index", fmt.Sprintf("none of %d signatures is by a trusted key", len(f.Signatures)))
	}
	return v, nil
}
