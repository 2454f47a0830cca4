package sign_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

func wantKind(t *testing.T, err error, k *format.Kind) {
	t.Helper()
	if !errors.Is(err, k) {
		t.Fatalf("got %v, want kind %s", err, k.Name())
	}
}

func TestSingleSignature(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	unsigned := readFile(t, path)
	signFile(t, path, key(1), "producer", false)
	b := readFile(t, path)
	if !bytes.Equal(b[:len(unsigned)], unsigned) {
		t.Fatal("signing changed bytes before the signature block")
	}
	res, err := verifyBytes(b, ring(t, key(1)))
	if err != nil {
		t.Fatal(err)
	}
	id := sign.KeyIDOf(key(1).Public().(ed25519.PublicKey))
	if !res.HeaderVerified || !res.DataVerified || !slices.Equal(res.Trusted, []sign.KeyID{id}) {
		t.Fatalf("result %+v", res)
	}
	if s := res.Signers[0]; s.Comment != "producer" || !s.Timestamp.Equal(ts0) || !s.Trusted || s.Algorithm != format.Ed25519 {
		t.Fatalf("signer %+v", s)
	}
	res, err = verifyBytes(b, ring(t, key(1)), sign.WithUnsafeSkipDataDigests())
	if err != nil || res.DataVerified || !res.HeaderVerified {
		t.Fatalf("skip data: %+v %v", res, err)
	}
}

func TestMultipleSignatures(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "producer", false)
	signFile(t, path, key(2), "converter", false)
	signFile(t, path, key(3), "auditor", false)
	signFile(t, path, key(2), "converter again", false) // replaces, no duplicate
	b := readFile(t, path)
	_, entries := mustOpen(t, b)
	if len(entries) != 3 || entries[2].Comment != "converter again" {
		t.Fatalf("entries %+v", entries)
	}
	res, err := verifyBytes(b, ring(t, key(2), key(3)), sign.WithRequireAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trusted) != 2 || len(res.Signers) != 3 || res.Signers[0].Trusted {
		t.Fatalf("result %+v", res)
	}
	_, err = verifyBytes(b, ring(t, key(2), key(4)), sign.WithRequireAll())
	wantKind(t, err, format.ErrNoSignature)
	if _, err := verifyBytes(b, ring(t, key(2), key(4))); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, b []byte) (*decode.File, []format.SignatureEntry) {
	t.Helper()
	f, err := decode.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, e := f.SignatureBlock()
	return f, e
}

func TestDetached(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	before := readFile(t, path)
	signFile(t, path, key(1), "", true)
	signFile(t, path, key(2), "", true)
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("detached signing changed the file")
	}
	det, err := sign.ReadDetached(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := verifyBytes(before, ring(t, key(2)), sign.WithDetachedSignature(det))
	if err != nil || !res.Signers[1].Detached || !res.DataVerified {
		t.Fatalf("%+v %v", res, err)
	}
	_, err = verifyBytes(before, ring(t, key(2)))
	wantKind(t, err, format.ErrNoSignature)
	_, err = verifyBytes(before, ring(t, key(2)), sign.WithDetachedSignature(det[:len(det)-1]))
	wantKind(t, err, format.ErrSignatureBlock)
	_, err = verifyBytes(before, ring(t, key(2)), sign.WithDetachedSignature([]byte("garbage")))
	wantKind(t, err, format.ErrSignatureBlock)

	// A detached signature of another file is a bad signature.
	other := smallFile(t, t.TempDir(), format.SHA256)
	_, err = verifyBytes(readFile(t, other), ring(t, key(2)), sign.WithDetachedSignature(det))
	wantKind(t, err, format.ErrSignature)

	// Under a policy.
	f, err := decode.Open(path, decode.WithPolicy(&sign.Policy{Trusted: ring(t, key(1)), Detached: det}), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFailClosed(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "", false)
	b := readFile(t, path)
	for _, kr := range []*sign.KeyRing{nil, {}, ring(t)} {
		_, err := verifyBytes(b, kr)
		wantKind(t, err, format.ErrNoSignature)
	}
	// Untrusted key: seen, reported by the error, never counted.
	_, err := verifyBytes(b, ring(t, key(2)))
	wantKind(t, err, format.ErrNoSignature)
}

// forge replaces the file's block with entries after applying edit to the
// parsed entries.
func reblock(t *testing.T, b []byte, edit func([]format.SignatureEntry) []format.SignatureEntry) []byte {
	t.Helper()
	start := blockStart(t, b)
	entries, err := format.ParseSignatureBlock(b[start:], int64(start), format.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return format.AppendSignatureBlock(slices.Clone(b[:start]), edit(entries))
}

func TestWrongKey(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "", false)
	b := readFile(t, path)
	// An entry that claims the trusted key 2 but was made by key 1.
	id2 := sign.KeyIDOf(key(2).Public().(ed25519.PublicKey))
	forged := reblock(t, b, func(e []format.SignatureEntry) []format.SignatureEntry {
		e[0].KeyID = id2
		return e
	})
	_, err := verifyBytes(forged, ring(t, key(2)))
	wantKind(t, err, format.ErrSignature)
	// A bad entry of a trusted key fails even when another trusted one verifies.
	both := reblock(t, b, func(e []format.SignatureEntry) []format.SignatureEntry {
		bad := e[0]
		bad.KeyID = id2
		return append(e, bad)
	})
	_, err = verifyBytes(both, ring(t, key(1), key(2)))
	wantKind(t, err, format.ErrSignature)
}

func TestUnknownAlgorithm(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "", false)
	b := reblock(t, readFile(t, path), func(e []format.SignatureEntry) []format.SignatureEntry {
		e[0].Algorithm = 2
		return e
	})
	res, err := verifyBytes(b, ring(t, key(1)))
	wantKind(t, err, format.ErrNoSignature)
	if res != nil {
		t.Fatal("result on failure")
	}
}

func TestTamper(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "c", false)
	b := readFile(t, path)
	kr := ring(t, key(1))
	pre, _ := format.ParsePreamble(b, int64(len(b)), format.DefaultLimits())

	t.Run("header", func(t *testing.T) {
		// Change a letter of the producer string and fix up the header
		// digest, as an attacker can: the signature no longer verifies.
		c := slices.Clone(b)
		h := c[pre.HeaderOffset:pre.HeaderEnd()]
		i := bytes.Index(h, []byte("sign-test"))
		if i < 0 {
			t.Fatal("producer not found")
		}
		h[i] = 'S'
		d := pre.DigestAlgorithm.Sum(h)
		copy(c[56:88], d[:])
		_, err := verifyBytes(c, kr, sign.WithUnsafeSkipDataDigests())
		wantKind(t, err, format.ErrSignature)
		// Without fixing the digest, the header fails first.
		c = slices.Clone(b)
		c[pre.HeaderOffset+uint64(i)] = 'S'
		_, err = verifyBytes(c, kr)
		wantKind(t, err, format.ErrHeader)
	})
	t.Run("data", func(t *testing.T) {
		c := slices.Clone(b)
		c[pre.DataOffset+100] ^= 1
		_, err := verifyBytes(c, kr)
		wantKind(t, err, format.ErrDigest)
		if _, err := verifyBytes(c, kr, sign.WithUnsafeSkipDataDigests()); err != nil {
			t.Fatal("header-only check read data", err)
		}
	})
	t.Run("truncated-block", func(t *testing.T) {
		_, err := verifyBytes(b[:len(b)-1], kr)
		wantKind(t, err, format.ErrSignatureBlock)
	})
	t.Run("duplicated-block", func(t *testing.T) {
		blk := b[blockStart(t, b):]
		_, err := verifyBytes(append(slices.Clone(b), blk...), kr)
		wantKind(t, err, format.ErrSignatureBlock)
	})
	t.Run("trailing", func(t *testing.T) {
		_, err := verifyBytes(append(slices.Clone(b), 0), kr)
		wantKind(t, err, format.ErrSignatureBlock)
	})
	t.Run("replay", func(t *testing.T) {
		// The block of b on a file of other tensors, same everything else.
		a := readFile(t, smallFileSeed(t, t.TempDir(), format.BLAKE3, 1))
		moved := append(slices.Clone(a), b[blockStart(t, b):]...)
		_, err := verifyBytes(moved, kr)
		wantKind(t, err, format.ErrSignature)
	})
	t.Run("digest-algorithm", func(t *testing.T) {
		// Flip the algorithm field alone: the header digest breaks.
		c := slices.Clone(b)
		binary.LittleEndian.PutUint32(c[20:], uint32(format.SHA256))
		_, err := verifyBytes(c, kr)
		wantKind(t, err, format.ErrHeader)
		// Fix the header digest too: the signature breaks.
		d := format.SHA256.Sum(c[pre.HeaderOffset:pre.HeaderEnd()])
		copy(c[56:88], d[:])
		_, err = verifyBytes(c, kr, sign.WithUnsafeSkipDataDigests())
		wantKind(t, err, format.ErrSignature)
	})
}

func TestRefusesToSignBadFile(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	b := readFile(t, path)
	pre, _ := format.ParsePreamble(b, int64(len(b)), format.DefaultLimits())
	b[pre.DataOffset+5] ^= 0x80
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err := sign.Sign(context.Background(), path, key(1))
	wantKind(t, err, format.ErrDigest)
	if !bytes.Equal(readFile(t, path), b) {
		t.Fatal("refused signing changed the file")
	}
	if err := sign.Sign(context.Background(), path, key(1), sign.WithDetached()); !errors.Is(err, format.ErrDigest) {
		t.Fatal(err)
	}
	if _, err := os.Stat(sign.DetachedPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("detached signature written for a bad file")
	}
}

type rsaLike struct{ crypto.Signer }

func (rsaLike) Public() crypto.PublicKey { return []byte("not ed25519") }

func TestSignerMustBeEd25519(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	if err := sign.Sign(context.Background(), path, rsaLike{key(1)}); !errors.Is(err, sign.ErrKey) {
		t.Fatal(err)
	}
}

// badSigner returns a signature that does not verify, as a faulty HSM might.
type badSigner struct{ ed25519.PrivateKey }

func (s badSigner) Sign(r io.Reader, m []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := s.PrivateKey.Sign(r, m, o)
	sig[0] ^= 1
	return sig, err
}

func TestSignChecksSignerOutput(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	before := readFile(t, path)
	if err := sign.Sign(context.Background(), path, badSigner{key(1)}); err == nil {
		t.Fatal("bad signer accepted")
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("file changed")
	}
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	path := smallFile(t, dir, format.BLAKE3)
	kr := ring(t, key(1))
	for _, mode := range []decode.VerifyMode{decode.VerifyNone, decode.VerifyLazy, decode.VerifyEager} {
		// Unsigned: stripped signature under a require policy.
		_, err := decode.Open(path, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(mode))
		wantKind(t, err, format.ErrNoSignature)
	}
	signFile(t, path, key(1), "", false)
	var got *sign.Result
	p := sign.Require(kr)
	p.OnVerified = func(r *sign.Result) { got = r }
	f, err := decode.Open(path, decode.WithPolicy(p), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || !got.HeaderVerified {
		t.Fatalf("policy result %+v", got)
	}
	for tn := range f.All() {
		if _, err := tn.Bytes(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	// Tampered data under the policy, in every mode: no unchecked byte is returned.
	b := readFile(t, path)
	pre, _ := format.ParsePreamble(b, int64(len(b)), format.DefaultLimits())
	b[pre.DataOffset+1] ^= 4
	bad := filepath.Join(dir, "bad.swt")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The policy raises VerifyNone to VerifyLazy: the header check passes at
	// Open, and the tampered tensor fails on access; eager fails at Open.
	for _, mode := range []decode.VerifyMode{decode.VerifyNone, decode.VerifyLazy, decode.VerifyEager} {
		f, err := decode.Open(bad, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(mode))
		if mode == decode.VerifyEager {
			wantKind(t, err, format.ErrDigest)
			continue
		}
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if f.VerifyMode() != decode.VerifyLazy {
			t.Fatalf("mode %d raised to %d, want lazy", mode, f.VerifyMode())
		}
		_, err = f.TensorAt(0).Bytes()
		wantKind(t, err, format.ErrDigest)
		f.Close()
	}
	// Untrusted key under the policy.
	_, err = decode.Open(path, decode.WithPolicy(sign.Require(ring(t, key(9)))), decode.WithVerify(decode.VerifyLazy))
	wantKind(t, err, format.ErrNoSignature)
}

func TestRemoveSignatures(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	before := readFile(t, path)
	signFile(t, path, key(1), "", false)
	// Simulate a write cut short: a partial block.
	b := readFile(t, path)
	if err := os.WriteFile(path, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	err := sign.Sign(context.Background(), path, key(1))
	wantKind(t, err, format.ErrSignatureBlock)
	if err := sign.RemoveSignatures(path); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("not restored")
	}
	signFile(t, path, key(1), "", false)
	if !bytes.Equal(readFile(t, path), b) {
		t.Fatal("re-signing is not deterministic")
	}
}

func TestCommentLimit(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	if err := sign.Sign(context.Background(), path, key(1), sign.WithComment(string(make([]byte, format.MaxCommentLength+1)))); err == nil {
		t.Fatal("long comment accepted")
	}
	if err := sign.Sign(context.Background(), path, key(1), sign.WithComment("\xff")); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}

// Require finds FILE.swt.sig beside a file opened by path, as the command
// line does; a broken one fails the policy, and the look-up can be turned off.
func TestRequireFindsDetachedFile(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "", true)
	kr := ring(t, key(1))
	open := func(p *sign.Policy) error {
		f, err := decode.Open(path, decode.WithPolicy(p), decode.WithVerify(decode.VerifyLazy))
		if err == nil {
			f.Close()
		}
		return err
	}
	var got *sign.Result
	p := sign.Require(kr)
	p.OnVerified = func(r *sign.Result) { got = r }
	if err := open(p); err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got.Signers) != 1 || !got.Signers[0].Detached || !got.Signers[0].Trusted {
		t.Fatalf("result %+v", got)
	}
	wantKind(t, open(sign.Require(kr, sign.WithDetachedSignature(nil))), format.ErrNoSignature)
	wantKind(t, open(&sign.Policy{Trusted: kr, NoDetachedFile: true}), format.ErrNoSignature)

	if err := os.WriteFile(sign.DetachedPath(path), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantKind(t, open(sign.Require(kr)), format.ErrSignatureBlock)
	if err := os.Remove(sign.DetachedPath(path)); err != nil {
		t.Fatal(err)
	}
	wantKind(t, open(sign.Require(kr)), format.ErrNoSignature)
}

// Sign reports the progress of its digest check and stops when its context
// is cancelled, leaving the file unsigned.
func TestSignProgressAndCancel(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	var last, total atomic.Int64
	err := sign.Sign(context.Background(), path, key(1), sign.WithProgress(func(d, n int64) {
		last.Store(d)
		total.Store(n)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if total.Load() == 0 || last.Load() != total.Load() {
		t.Fatalf("progress ended at %d of %d", last.Load(), total.Load())
	}

	path = smallFile(t, t.TempDir(), format.BLAKE3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sign.Sign(ctx, path, key(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	_, err = verifyBytes(readFile(t, path), ring(t, key(1)))
	wantKind(t, err, format.ErrNoSignature)
}
