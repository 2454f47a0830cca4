package sign

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen"
)

// A SignOption configures Sign.
type SignOption func(*signConfig)

type signConfig struct {
	comment   string
	timestamp time.Time
	detached  bool
	limits    format.Limits
	progress  func(done, total int64)
}

// WithComment adds a signed free-text note (who signs and why), at most
// format.MaxCommentLength bytes of UTF-8.
func WithComment(comment string) SignOption { return func(c *signConfig) { c.comment = comment } }

// WithTimestamp sets the signed signing time; without it, or with the zero
// time, the signing time is now.
func WithTimestamp(t time.Time) SignOption { return func(c *signConfig) { c.timestamp = t } }

// WithDetached writes the signature to path+".sig" (DetachedPath) and leaves
// the file untouched.
func WithDetached() SignOption { return func(c *signConfig) { c.detached = true } }

// WithLimits sets the limits used to read the file; zero fields keep their
// defaults.
func WithLimits(lim format.Limits) SignOption { return func(c *signConfig) { c.limits = lim } }

// WithProgress has fn called with the stored bytes checked so far and the
// total while Sign checks every digest of the file, from any goroutine.
func WithProgress(fn func(done, total int64)) SignOption {
	return func(c *signConfig) { c.progress = fn }
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
//
// Signers of one file take turns: each holds an advisory lock on the file
// (flock, on Unix) from before it reads the file to after it wrote its
// signature, so that every signature ends up in the block; a signer waits
// for the lock until ctx is done. RemoveSignatures takes the same lock.
//
// ctx cancels the digest check, the long part of signing a large file.
func Sign(ctx context.Context, path string, signer crypto.Signer, options ...SignOption) error {
	var opts signConfig
	for _, o := range options {
		o(&opts)
	}
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signer's public key is %T, want ed25519.PublicKey", ErrKey, signer.Public())
	}
	if len(opts.comment) > format.MaxCommentLength || !utf8.ValidString(opts.comment) {
		return fmt.Errorf("sign: comment must be at most %d bytes of UTF-8", format.MaxCommentLength)
	}
	lim := opts.limits.WithDefaults()
	if err := lim.Validate(); err != nil {
		return err
	}
	ts := opts.timestamp
	if ts.IsZero() {
		ts = time.Now()
	}

	// One descriptor serves the check and the write, so the file checked is
	// the file signed even if the path is replaced meanwhile.
	flag := os.O_RDWR
	if opts.detached {
		flag = os.O_RDONLY
	}
	fh, _, err := safeopen.OpenFile(path, flag)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer fh.Close()
	// Signers of one file take turns (an advisory lock, released with the
	// descriptor), so that each reads the block the previous one wrote
	// and none loses another's signature. The size is read under the lock.
	if err := lockFile(ctx, fh); err != nil {
		return fmt.Errorf("sign: locking %s: %w", path, err)
	}
	size, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	f, err := decode.NewReader(fh, size, decode.WithLimits(lim))
	if err != nil {
		return fmt.Errorf("sign: refusing to sign %s: %w", path, err)
	}
	if err := f.Verify(ctx, decode.VerifyOptions{Progress: opts.progress}); err != nil {
		return fmt.Errorf("sign: refusing to sign %s: %w", path, err)
	}

	e := format.SignatureEntry{
		Algorithm: format.Ed25519,
		KeyID:     KeyIDOf(pub),
		Timestamp: ts.Unix(),
		Comment:   opts.comment,
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
	if opts.detached {
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

	if opts.detached {
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
// WithDetachedSignature.
func ReadDetached(path string) ([]byte, error) {
	return readDetached(DetachedPath(path), format.DefaultLimits())
}

// RemoveSignatures removes the signature block of the file at path, which
// must have a valid preamble and header; the block itself may be malformed
// (this is how a signature write cut short by a crash is repaired).
func RemoveSignatures(path string) error {
	fh, _, err := safeopen.OpenFile(path, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer fh.Close()
	if err := lockFile(context.Background(), fh); err != nil { // as Sign does
		return fmt.Errorf("sign: locking %s: %w", path, err)
	}
	size, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	lim := format.DefaultLimits()
	var pb [format.PreambleSize]byte
	if _, err := fh.ReadAt(pb[:], 0); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	pre, err := format.ParsePreamble(pb[:], size, lim)
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

// A VerifyOption configures Verify and Require.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	detached    []byte
	hasDetached bool
	requireAll  bool
	skipData    bool
	workers     int
	progress    func(done, total int64)
}

// WithDetachedSignature has Verify consider the entries of a detached
// signature block (the bytes of FILE.swt.sig, see ReadDetached) together with
// the file's own. Given to Require, it replaces the policy's look-up of the
// detached file beside the opened one; a nil block turns that look-up off.
func WithDetachedSignature(block []byte) VerifyOption {
	return func(c *verifyConfig) { c.detached, c.hasDetached = block, true }
}

// WithRequireAll requires a valid signature by every key of the trusted
// ring, not just one (a producer and an auditor, say).
func WithRequireAll() VerifyOption { return func(c *verifyConfig) { c.requireAll = true } }

// WithUnsafeSkipDataDigests skips the check of every chunk digest and all
// padding. The signature then vouches for the header only; the data is
// whatever the file holds until someone checks it (decode's lazy mode does,
// on access). Require ignores it: the policy leaves the data to decode's
// verify mode.
func WithUnsafeSkipDataDigests() VerifyOption { return func(c *verifyConfig) { c.skipData = true } }

// WithWorkers sets the number of hashing goroutines; 0 means GOMAXPROCS.
func WithWorkers(n int) VerifyOption { return func(c *verifyConfig) { c.workers = n } }

// WithVerifyProgress has fn called with the stored bytes checked so far and
// the total while Verify checks the data digests, from any goroutine.
func WithVerifyProgress(fn func(done, total int64)) VerifyOption {
	return func(c *verifyConfig) { c.progress = fn }
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
// WithUnsafeSkipDataDigests, every chunk digest and all padding (spec/
// SIGNATURES.md section 8). It succeeds only if at least one (RequireAll:
// every) trusted key signed f. ctx cancels the data check. Errors wrap format.ErrNoSignature (no trusted
// key, or no signature by one), format.ErrSignature (an entry of a trusted
// key that does not verify), format.ErrSignatureBlock (a malformed detached
// block), or the data's kinds (format.ErrDigest, format.ErrPadding).
func Verify(ctx context.Context, f *decode.File, trusted *KeyRing, options ...VerifyOption) (*Result, error) {
	var opts verifyConfig
	for _, o := range options {
		o(&opts)
	}
	return verify(ctx, f, trusted, &opts)
}

func verify(ctx context.Context, f *decode.File, trusted *KeyRing, opts *verifyConfig) (*Result, error) {
	if trusted.Len() == 0 {
		return nil, format.Errorf(format.ErrNoSignature, "V1", -1, "trusted keys", "none given: nothing can verify")
	}
	_, entries := f.SignatureBlock()
	nOwn := len(entries)
	if opts.detached != nil {
		if len(opts.detached) < 8 || [8]byte(opts.detached[:8]) != format.SignatureMagic {
			return nil, format.Errorf(format.ErrSignatureBlock, "V3", 0, "detached signature", "not a signature block")
		}
		det, err := format.ParseSignatureBlock(opts.detached, 0, f.Limits())
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
	if opts.requireAll {
		for _, id := range trusted.IDs() {
			if !slices.Contains(res.Trusted, id) {
				return nil, format.Errorf(format.ErrNoSignature, "V6", -1, "signatures", "trusted key "+id.Short()+" did not sign")
			}
		}
	}
	res.HeaderVerified = true
	if opts.skipData {
		return res, nil
	}
	if err := f.Verify(ctx, decode.VerifyOptions{Workers: opts.workers, Progress: opts.progress}); err != nil {
		return nil, err
	}
	res.DataVerified = true
	return res, nil
}

// A Policy makes decode.Open require a trusted signature before it exposes
// any tensor:
//
//	f, err := decode.Open(path, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(decode.VerifyLazy))
//
// Like the command line, the policy considers the detached signature
// FILE.swt.sig beside a file opened by path, when there is one, together
// with the file's own signatures; a detached file that cannot be read or
// parsed fails the policy.
type Policy struct {
	Trusted *KeyRing
	// Detached is a detached signature block to consider instead of the
	// file beside the opened one (see WithDetachedSignature).
	Detached []byte
	// NoDetachedFile turns off the look-up of FILE.swt.sig when Detached
	// is nil: only the file's own signatures count.
	NoDetachedFile bool
	// RequireAll is as WithRequireAll.
	RequireAll bool
	// OnVerified, if set, receives what the policy established.
	OnVerified func(*Result)
}

// Require returns a Policy trusting trusted. WithDetachedSignature and
// WithRequireAll apply to it; the data-check options do not, as decode's
// verify mode governs the data.
func Require(trusted *KeyRing, options ...VerifyOption) *Policy {
	var c verifyConfig
	for _, o := range options {
		o(&c)
	}
	return &Policy{Trusted: trusted, Detached: c.detached, NoDetachedFile: c.hasDetached, RequireAll: c.requireAll}
}

// MinVerify implements decode.MinVerifier: a file opened under the policy
// checks each tensor's digests before returning its bytes, at least lazily.
func (p *Policy) MinVerify() decode.VerifyMode { return decode.VerifyLazy }

// CheckedReads implements decode.CheckedReader: a signed file is read
// through checked copies, never handed out as views of a mapping that
// another writer could change after the check.
func (p *Policy) CheckedReads() bool { return true }

// Check implements decode.Policy. It verifies the signatures over the header.
// Through decode.WithPolicy the file's verify mode is at least lazy, so no
// unchecked tensor byte can be returned; called directly on a file opened
// with decode.VerifyNone, Check verifies every digest itself.
func (p *Policy) Check(f *decode.File) error {
	opts := verifyConfig{detached: p.Detached, requireAll: p.RequireAll, skipData: true}
	if opts.detached == nil && !p.NoDetachedFile && f.Path() != "" {
		b, err := readDetached(DetachedPath(f.Path()), f.Limits())
		switch {
		case err == nil:
			opts.detached = b
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
	}
	res, err := verify(context.Background(), f, p.Trusted, &opts)
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
	_ decode.Policy        = (*Policy)(nil)
	_ decode.MinVerifier   = (*Policy)(nil)
	_ decode.CheckedReader = (*Policy)(nil)
)
