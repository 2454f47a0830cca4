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

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
)

// SignOptions configure Sign.
type SignOptions struct {
	// Comment is a signed free-text note (who signs and why), at most
	// format.MaxCommentLength bytes of UTF-8.
	Comment string
	// Timestamp is the signed signing time; the zero value means now.
	Timestamp time.Time
	// Detached writes the signature to path+".sig" (DetachedPath) and
	// leaves the file untouched.
	Detached bool
	// Limits are the limits used to read the file; zero fields keep their
	// defaults.
	Limits format.Limits
}

// DetachedPath is the path of the detached signature of the file at path.
func DetachedPath(path string) string { return path + ".sig" }

// Sign adds a signature by signer to the file at path (spec/SIGNATURES.md
// section 6). The file must pass full verification first (header, every
// chunk digest and all padding): Sign never vouches for bytes it has not
// checked. An existing signature by the same key is replaced; others are
// kept.
//
// signer's public key must be an ed25519.PublicKey; any crypto.Signer works,
// so keys held in a KMS or an HSM can sign. The message is signed with
// crypto.Hash(0) (pure Ed25519), and the signature is checked before it is
// written.
//
// An embedded signature is written in place: the file is truncated to the end
// of its header and the new block written after it, then synced. Tensor data
// and header are never rewritten, so signing costs O(header) after the digest
// check whatever the file's size. A crash during this step can leave the file
// unsigned or with a partial block, never with changed data; signing again
// (after RemoveSignatures for a partial block) repairs it.
func Sign(path string, signer crypto.Signer, opts SignOptions) error {
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signer's public key is %T, want ed25519.PublicKey", ErrKey, signer.Public())
	}
	if len(opts.Comment) > format.MaxCommentLength || !utf8.ValidString(opts.Comment) {
		return fmt.Errorf("sign: comment must be at most %d bytes of UTF-8", format.MaxCommentLength)
	}
	lim := opts.Limits.WithDefaults()
	if err := lim.Validate(); err != nil {
		return err
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}

	// One descriptor serves the check and the write, so the file checked is
	// the file signed even if the path is replaced meanwhile.
	flag := os.O_RDWR
	if opts.Detached {
		flag = os.O_RDONLY
	}
	fh, st, err := safeopen.OpenFile(path, flag)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer fh.Close()
	f, err := decode.NewReader(fh, st.Size(), decode.WithLimits(lim))
	if err != nil {
		return fmt.Errorf("sign: refusing to sign %s: %w", path, err)
	}
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
		return fmt.Errorf("sign: refusing to sign %s: %w", path, err)
	}

	e := format.SignatureEntry{
		Algorithm: format.Ed25519,
		KeyID:     KeyIDOf(pub),
		Timestamp: ts.Unix(),
		Comment:   opts.Comment,
	}
	msg := format.SignedMessage(f.PreambleBytes(), &e)
	e.Signature, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if !ed25519.Verify(pub, msg, e.Signature) {
		return fmt.Errorf("sign: the signer returned a signature that does not verify")
	}

	var old []format.SignatureEntry
	if opts.Detached {
		if b, err := readDetached(DetachedPath(path), lim); err == nil {
			if old, err = format.ParseSignatureBlock(b, 0, lim); err != nil {
				return fmt.Errorf("sign: %s: %w", DetachedPath(path), err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	} else {
		_, old = f.SignatureBlock()
	}
	entries := slices.DeleteFunc(slices.Clone(old), func(o format.SignatureEntry) bool {
		return o.Algorithm == e.Algorithm && o.KeyID == e.KeyID
	})
	entries = append(entries, e)
	if len(entries) > lim.MaxSignatures {
		return fmt.Errorf("sign: the file already holds %d signatures, the limit", len(entries)-1)
	}
	block := format.AppendSignatureBlock(nil, entries)

	if opts.Detached {
		return writeAtomic(DetachedPath(path), block)
	}
	// Truncate first: a crash between the two steps leaves a valid unsigned
	// file, which fails closed under a signature policy.
	pre := f.Preamble()
	end := int64(pre.HeaderEnd())
	if err := fh.Truncate(end); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if _, err := fh.WriteAt(block, end); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return fh.Close()
}

// writeAtomic writes b to path through a synced temporary file and a rename.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// maxBlockSize is the largest signature block the limits allow.
func maxBlockSize(lim format.Limits) int64 {
	return int64(24 + lim.MaxSignatures*(52+format.MaxCommentLength+format.MaxSignatureLength))
}

func readDetached(path string, lim format.Limits) ([]byte, error) {
	// A FIFO named FILE.swt.sig must not block verification.
	fh, st, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sign: detached signature: %w", err)
	}
	defer fh.Close()
	if st.Size() > maxBlockSize(lim) {
		return nil, format.Errorf(format.ErrSignatureBlock, "V3", 0, "detached signature", "larger than the limit allows")
	}
	b := make([]byte, st.Size())
	if _, err := fh.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return b, nil
}

// ReadDetached reads the detached signature of the file at path
// (DetachedPath(path)), bounded by the default limits, for
// VerifyOptions.Detached.
func ReadDetached(path string) ([]byte, error) {
	return readDetached(DetachedPath(path), format.DefaultLimits())
}

// RemoveSignatures removes the signature block of the file at path, which
// must have a valid preamble and header; the block itself may be malformed
// (this is how a signature write cut short by a crash is repaired).
func RemoveSignatures(path string) error {
	fh, st, err := safeopen.OpenFile(path, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer fh.Close()
	lim := format.DefaultLimits()
	var pb [format.PreambleSize]byte
	if _, err := fh.ReadAt(pb[:], 0); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	pre, err := format.ParsePreamble(pb[:], st.Size(), lim)
	if err != nil {
		return err
	}
	hb := make([]byte, pre.HeaderLength)
	if _, err := fh.ReadAt(hb, int64(pre.HeaderOffset)); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if pre.DigestAlgorithm.Sum(hb) != pre.HeaderDigest {
		return format.Errorf(format.ErrHeader, "R10", 56, "header digest", "does not match the header")
	}
	if _, err := format.ParseHeader(hb, &pre, lim); err != nil {
		return err
	}
	if err := fh.Truncate(int64(pre.HeaderEnd())); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return fh.Close()
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Detached is a detached signature block (the bytes of FILE.swt.sig).
	// Its entries are considered together with the file's own.
	Detached []byte
	// RequireAll requires a valid signature by every key of the trusted
	// ring, not just one (a producer and an auditor, say).
	RequireAll bool
	// UnsafeSkipDataDigests skips the check of every chunk digest and all
	// padding. The signature then vouches for the header only; the data is
	// whatever the file holds until someone checks it (decode's lazy mode
	// does, on access).
	UnsafeSkipDataDigests bool
	// Workers is the number of hashing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// Signer describes one signature entry that Verify saw.
type Signer struct {
	KeyID     KeyID
	Algorithm format.SignatureAlgorithm
	Timestamp time.Time
	Comment   string // signed only when Trusted
	Detached  bool   // from the detached block
	// Trusted is true for an Ed25519 entry by a trusted key whose signature
	// verified. Other entries are reported, and never counted.
	Trusted bool
}

// Result is what Verify established.
type Result struct {
	// Signers are every entry, in order: the file's own, then the detached.
	Signers []Signer
	// Trusted holds the key ids of the trusted keys whose signatures
	// verified, in entry order, without repeats.
	Trusted []KeyID
	// HeaderVerified: the preamble, header digest, header rules and at
	// least one trusted signature verified.
	HeaderVerified bool
	// DataVerified: every chunk digest and all padding were checked too,
	// so every byte of the file up to the signature block is authenticated.
	DataVerified bool
}

// Verify checks the signatures of f against the trusted keys, then, unless
// opts.UnsafeSkipDataDigests, every chunk digest and all padding (spec/
// SIGNATURES.md section 8). It succeeds only if at least one (RequireAll:
// every) trusted key signed f. Errors wrap format.ErrNoSignature (no trusted
// key, or no signature by one), format.ErrSignature (an entry of a trusted
// key that does not verify), format.ErrSignatureBlock (a malformed detached
// block), or the data's kinds (format.ErrDigest, format.ErrPadding).
func Verify(f *decode.File, trusted *KeyRing, opts VerifyOptions) (*Result, error) {
	return VerifyContext(context.Background(), f, trusted, opts)
}

// VerifyContext is Verify with a context that can cancel the data check.
func VerifyContext(ctx context.Context, f *decode.File, trusted *KeyRing, opts VerifyOptions) (*Result, error) {
	if trusted.Len() == 0 {
		return nil, format.Errorf(format.ErrNoSignature, "V1", -1, "trusted keys", "none given: nothing can verify")
	}
	_, entries := f.SignatureBlock()
	nOwn := len(entries)
	if opts.Detached != nil {
		if len(opts.Detached) < 8 || [8]byte(opts.Detached[:8]) != format.SignatureMagic {
			return nil, format.Errorf(format.ErrSignatureBlock, "V3", 0, "detached signature", "not a signature block")
		}
		det, err := format.ParseSignatureBlock(opts.Detached, 0, format.DefaultLimits())
		if err != nil {
			return nil, fmt.Errorf("sign: detached signature: %w", err)
		}
		entries = append(slices.Clone(entries), det...)
	}
	if len(entries) == 0 {
		return nil, format.Errorf(format.ErrNoSignature, "V4", -1, "signature block", "the file is not signed")
	}
	pre := f.PreambleBytes()
	res := &Result{}
	for i := range entries {
		e := &entries[i]
		s := Signer{KeyID: e.KeyID, Algorithm: e.Algorithm, Timestamp: time.Unix(e.Timestamp, 0).UTC(),
			Comment: e.Comment, Detached: i >= nOwn}
		pub, ok := trusted.Lookup(e.KeyID)
		if e.Algorithm == format.Ed25519 && ok {
			if !ed25519.Verify(pub, format.SignedMessage(pre, e), e.Signature) {
				where := "signature entry " + fmt.Sprint(i)
				if s.Detached {
					where = "detached signature entry " + fmt.Sprint(i-nOwn)
				}
				return nil, format.Errorf(format.ErrSignature, "V5", -1, where,
					"trusted key "+KeyID(e.KeyID).Short()+" did not sign this file")
			}
			s.Trusted = true
			if !slices.Contains(res.Trusted, s.KeyID) {
				res.Trusted = append(res.Trusted, s.KeyID)
			}
		}
		res.Signers = append(res.Signers, s)
	}
	if len(res.Trusted) == 0 {
		return nil, format.Errorf(format.ErrNoSignature, "V6", -1, "signatures", "no entry is an Ed25519 signature by a trusted key")
	}
	if opts.RequireAll {
		for _, id := range trusted.IDs() {
			if !slices.Contains(res.Trusted, id) {
				return nil, format.Errorf(format.ErrNoSignature, "V6", -1, "signatures", "trusted key "+id.Short()+" did not sign")
			}
		}
	}
	res.HeaderVerified = true
	if opts.UnsafeSkipDataDigests {
		return res, nil
	}
	if err := f.Verify(ctx, decode.VerifyOptions{Workers: opts.Workers}); err != nil {
		return nil, err
	}
	res.DataVerified = true
	return res, nil
}

// A Policy makes decode.Open require a trusted signature before it exposes
// any tensor:
//
//	f, err := decode.Open(path, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(decode.VerifyLazy))
type Policy struct {
	Trusted *KeyRing
	// Detached and RequireAll are as in VerifyOptions.
	Detached   []byte
	RequireAll bool
	// OnVerified, if set, receives what the policy established.
	OnVerified func(*Result)
}

// Require returns a Policy trusting trusted.
func Require(trusted *KeyRing) *Policy { return &Policy{Trusted: trusted} }

// MinVerify implements decode.MinVerifier: a file opened under the policy
// checks each tensor's digests before returning its bytes, at least lazily.
func (p *Policy) MinVerify() decode.VerifyMode { return decode.VerifyLazy }

// Check implements decode.Policy. It verifies the signatures over the header.
// Through decode.WithPolicy the file's verify mode is at least lazy, so no
// unchecked tensor byte can be returned; called directly on a file opened
// with decode.VerifyNone, Check verifies every digest itself.
func (p *Policy) Check(f *decode.File) error {
	res, err := Verify(f, p.Trusted, VerifyOptions{Detached: p.Detached, RequireAll: p.RequireAll, UnsafeSkipDataDigests: true})
	if err != nil {
		return err
	}
	if f.VerifyMode() == decode.VerifyNone {
		if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
			return err
		}
		res.DataVerified = true
	}
	if p.OnVerified != nil {
		p.OnVerified(res)
	}
	return nil
}

var (
	_ decode.Policy      = (*Policy)(nil)
	_ decode.MinVerifier = (*Policy)(nil)
)
