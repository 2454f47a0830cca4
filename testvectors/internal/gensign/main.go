// Command gensign writes the signature test vectors of safeweights (see
// ../../README.md and spec/SIGNATURES.md section 10): one file per case, in
// the format of the core vectors, with the keys "trusted" (space-separated
// hex Ed25519 public keys), "detached" (a hex detached signature block) and
// "require" ("all"). Keys come from fixed seeds and every signature is
// Ed25519, which is deterministic, so the output is the same on every run.
// Every vector is checked with the sign package before it is written.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/edwards25519"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/testvectors"
)

func main() {
	out := flag.String("out", "sign", "directory to write the vectors to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gensign:", err)
		os.Exit(1)
	}
}

type vector struct {
	name     string
	expect   *format.Kind // nil: ok
	rule     string
	comment  string
	data     []byte
	trusted  []ed25519.PrivateKey
	detached []byte
	all      bool
	refused  [][]byte // public keys a reader must refuse to trust (sign.ErrWeakKey)
}

// le32 is the 32-byte little-endian encoding of x.
func le32(x *big.Int) []byte {
	b := make([]byte, 32)
	x.FillBytes(b)
	slices.Reverse(b)
	return b
}

// weakKeys are public keys no signer owns (SIGNATURES.md section 3): the
// identity, the point of order 2, a non-canonical encoding of the identity
// (y = p + 1), and a non-canonical encoding (y >= p) of a point of large order.
func weakKeys() (identity, order2, identityNonCanonical, nonCanonical []byte, err error) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	identity = le32(big.NewInt(1))
	order2 = le32(new(big.Int).Sub(p, big.NewInt(1)))
	identityNonCanonical = le32(new(big.Int).Add(p, big.NewInt(1)))
	for v := int64(2); v < 19; v++ {
		b := le32(new(big.Int).Add(p, big.NewInt(v)))
		var a edwards25519.Point
		if _, err := a.SetBytes(b); err != nil {
			continue
		}
		if new(edwards25519.Point).MultByCofactor(&a).Equal(edwards25519.NewIdentityPoint()) == 0 {
			return identity, order2, identityNonCanonical, b, nil
		}
	}
	return nil, nil, nil, nil, errors.New("no non-canonical encoding of a large-order point below 2^255")
}

// Keys A, B, C, D: seeds of 32 equal bytes 0xA1, 0xB2, ...
func key(s byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{s}, ed25519.SeedSize))
}

var (
	keyA = key(0xa1)
	keyB = key(0xb2)
	keyC = key(0xc3)
	keyD = key(0xd4)
)

var when = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

type builder struct{ dir string }

// file writes a small file (alignment 64, chunk 1024, three tensors, the
// second spanning two chunks) whose tensor bytes depend on variant.
func (b *builder) file(name string, digest format.DigestAlgorithm, variant byte) (string, error) {
	path := filepath.Join(b.dir, name)
	w, err := encode.Create(path, encode.WithAlignment(64), encode.WithChunkSize(1024),
		encode.WithDigest(digest), encode.WithProducer("safeweights test vectors"))
	if err != nil {
		return "", err
	}
	w.SetMetadata("license", "CC0-1.0")
	for i, t := range []struct {
		name  string
		dt    format.DType
		shape []int64
	}{{"decoder.bias", format.F32, []int64{4}}, {"decoder.weight", format.F16, []int64{24, 24}}, {"embed", format.BF16, []int64{3, 5}}} {
		n := int64(t.dt.Size())
		for _, d := range t.shape {
			n *= d
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(j*13+i*7) ^ variant
		}
		if err := w.Add(t.name, t.dt, t.shape, data); err != nil {
			w.Abort()
			return "", err
		}
	}
	return path, w.Close()
}

func signOpts(comment string, detached bool) []sign.SignOption {
	opts := []sign.SignOption{sign.WithComment(comment), sign.WithTimestamp(when)}
	if detached {
		opts = append(opts, sign.WithDetached())
	}
	return opts
}

func signed(path string, detached bool, keys ...ed25519.PrivateKey) error {
	for i, k := range keys {
		c := []string{"producer", "converter", "auditor"}[i%3]
		if err := sign.Sign(context.Background(), path, k, signOpts(c, detached)...); err != nil {
			return err
		}
	}
	return nil
}

func headerEnd(b []byte) int {
	p, err := format.ParsePreamble(b, int64(len(b)), format.DefaultLimits())
	if err != nil {
		panic(err) // the generator only calls this on files it wrote
	}
	return int(p.HeaderEnd())
}

// reblock replaces b's signature block with edit applied to its entries.
func reblock(b []byte, edit func([]format.SignatureEntry) []format.SignatureEntry) ([]byte, error) {
	end := headerEnd(b)
	e, err := format.ParseSignatureBlock(b[end:], int64(end), format.DefaultLimits())
	if err != nil {
		return nil, err
	}
	return format.AppendSignatureBlock(slices.Clone(b[:end]), edit(e)), nil
}

func vectors(dir string) ([]vector, error) {
	b := &builder{dir: dir}
	var errs []error
	must := func(v []byte, err error) []byte {
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	read := func(path string, err error) []byte {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return must(os.ReadFile(path))
	}
	// The base files.
	unsignedPath, err := b.file("unsigned.swt", format.BLAKE3, 0)
	unsigned := read(unsignedPath, err)
	pA, err := b.file("a.swt", format.BLAKE3, 0)
	if err == nil {
		err = signed(pA, false, keyA)
	}
	signedA := read(pA, err)
	pABC, err := b.file("abc.swt", format.BLAKE3, 0)
	if err == nil {
		err = signed(pABC, false, keyA, keyB, keyC)
	}
	signedABC := read(pABC, err)
	pDet, err := b.file("det.swt", format.BLAKE3, 0)
	if err == nil {
		err = signed(pDet, true, keyA)
	}
	detA := read(sign.DetachedPath(pDet), err)
	pOther, err := b.file("other.swt", format.BLAKE3, 1)
	otherUnsigned := read(pOther, err)
	pSHA, err := b.file("sha.swt", format.SHA256, 0)
	shaUnsigned := read(pSHA, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	blockA := signedA[headerEnd(signedA):]
	pre, _ := format.ParsePreamble(signedA, int64(len(signedA)), format.DefaultLimits())
	idB := sign.KeyIDOf(keyB.Public().(ed25519.PublicKey))

	tamperedHeader := slices.Clone(signedA)
	h := tamperedHeader[pre.HeaderOffset:pre.HeaderEnd()]
	if i := bytes.Index(h, []byte("safeweights test vectors")); i >= 0 {
		h[i] = 'S'
	} else {
		return nil, errors.New("producer string not found in the header")
	}
	d := pre.DigestAlgorithm.Sum(h)
	copy(tamperedHeader[56:88], d[:])

	tamperedData := slices.Clone(signedA)
	tamperedData[pre.DataOffset+64+1100] ^= 0x10 // decoder.weight, second chunk

	// decoder.bias is 16 bytes at the start of the data region, aligned to
	// 64: bytes 16 to 63 are padding, covered by no chunk digest.
	paddedData := slices.Clone(signedA)
	copy(paddedData[pre.DataOffset+16:], "#!/bin/sh\n")

	identity, order2, identityNC, nonCanonical, err := weakKeys()
	if err != nil {
		return nil, err
	}
	// The forgery a small-order key A admits: R the identity and S = 0
	// satisfy [S]B = R + [k]A for every message when [k]A is the identity,
	// which [8]A = identity makes true for one k in eight, and always for A
	// the identity.
	forged := func(pub []byte) func([]format.SignatureEntry) []format.SignatureEntry {
		return func(e []format.SignatureEntry) []format.SignatureEntry {
			e[0].KeyID = sign.KeyIDOf(pub)
			e[0].Signature = append(slices.Clone(identity), make([]byte, 32)...)
			return e
		}
	}
	// S + L: the same signature with a non-canonical S, which
	// crypto/ed25519 refuses (S < L is required).
	sPlusL := func(e []format.SignatureEntry) []format.SignatureEntry {
		l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
		sb := slices.Clone(e[0].Signature[32:])
		slices.Reverse(sb)
		sv := new(big.Int).Add(new(big.Int).SetBytes(sb), l)
		e[0].Signature = append(slices.Clone(e[0].Signature[:32]), le32(sv)...)
		return e
	}

	vs := []vector{
		{name: "key-small-order-identity", expect: format.ErrNoSignature, rule: "V1",
			comment: "signed by the identity point as public key (R the identity, S = 0, which verifies every message); the key is refused when trusted, so no key is trusted",
			data:    must(reblock(signedA, forged(identity))), refused: [][]byte{identity}},
		{name: "key-small-order-2", expect: format.ErrNoSignature, rule: "V1",
			comment: "signed by the point of order 2 (y = -1) as public key; the key is refused when trusted",
			data:    must(reblock(signedA, forged(order2))), refused: [][]byte{order2}},
		{name: "key-small-order-non-canonical", expect: format.ErrNoSignature, rule: "V1",
			comment: "signed by a non-canonical encoding of the identity (y = p + 1) as public key; the key is refused when trusted",
			data:    must(reblock(signedA, forged(identityNC))), refused: [][]byte{identityNC}},
		{name: "key-non-canonical", expect: format.ErrNoSignature, rule: "V1",
			comment: "the trusted key is a non-canonical encoding (y >= p) of a point of large order; it is refused when trusted",
			data:    signedA, refused: [][]byte{nonCanonical}},
		{name: "signature-s-not-reduced", expect: format.ErrSignature, rule: "V5",
			comment: "a valid signature by the trusted key with S replaced by S + L: S must be below L",
			data:    must(reblock(signedA, sPlusL)), trusted: []ed25519.PrivateKey{keyA}},
		{name: "ok-single", comment: "one Ed25519 signature by the trusted key",
			data: signedA, trusted: []ed25519.PrivateKey{keyA}},
		{name: "ok-multiple-require-all", comment: "signed by three keys; two are trusted and both must have signed",
			data: signedABC, trusted: []ed25519.PrivateKey{keyB, keyC}, all: true},
		{name: "ok-one-of-several-trusted", comment: "signed by three keys; one of the two trusted keys suffices",
			data: signedABC, trusted: []ed25519.PrivateKey{keyC, keyD}},
		{name: "ok-detached", comment: "an unsigned file and its detached signature FILE.swt.sig",
			data: unsigned, detached: detA, trusted: []ed25519.PrivateKey{keyA}},
		{name: "ok-unknown-algorithm-beside-valid", comment: "an entry of unknown algorithm 2 is kept and ignored beside a valid signature",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				u := e[0]
				u.Algorithm = 2
				return append([]format.SignatureEntry{u}, e...)
			})), trusted: []ed25519.PrivateKey{keyA}},

		{name: "stripped-signature", expect: format.ErrNoSignature, rule: "V4",
			comment: "the signature block was removed; a signature is required",
			data:    unsigned, trusted: []ed25519.PrivateKey{keyA}},
		{name: "untrusted-key", expect: format.ErrNoSignature, rule: "V6",
			comment: "a valid signature by a key that is not trusted",
			data:    signedA, trusted: []ed25519.PrivateKey{keyB}},
		{name: "require-all-missing-key", expect: format.ErrNoSignature, rule: "V6",
			comment: "every trusted key must have signed and key D did not",
			data:    signedABC, trusted: []ed25519.PrivateKey{keyA, keyD}, all: true},
		{name: "unknown-algorithm", expect: format.ErrNoSignature, rule: "V6",
			comment: "the one entry has algorithm 2, which never counts, though its key id is trusted",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				e[0].Algorithm = 2
				return e
			})), trusted: []ed25519.PrivateKey{keyA}},
		{name: "wrong-key", expect: format.ErrSignature, rule: "V5",
			comment: "the entry names trusted key B but was made with key A",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				e[0].KeyID = idB
				return e
			})), trusted: []ed25519.PrivateKey{keyB}},
		{name: "bad-signature-beside-valid", expect: format.ErrSignature, rule: "V5",
			comment: "one trusted key verifies, another trusted key's entry does not: the file is rejected",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				bad := e[0]
				bad.KeyID = idB
				return append(e, bad)
			})), trusted: []ed25519.PrivateKey{keyA, keyB}},
		{name: "signature-short", expect: format.ErrSignature, rule: "V5",
			comment: "a 63-byte Ed25519 signature",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				e[0].Signature = e[0].Signature[:63]
				return e
			})), trusted: []ed25519.PrivateKey{keyA}},
		{name: "comment-changed", expect: format.ErrSignature, rule: "V5",
			comment: "the signed comment was changed",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				e[0].Comment = "auditor"
				return e
			})), trusted: []ed25519.PrivateKey{keyA}},
		{name: "timestamp-changed", expect: format.ErrSignature, rule: "V5",
			comment: "the signed timestamp was changed by one second",
			data: must(reblock(signedA, func(e []format.SignatureEntry) []format.SignatureEntry {
				e[0].Timestamp++
				return e
			})), trusted: []ed25519.PrivateKey{keyA}},
		{name: "header-tampered", expect: format.ErrSignature, rule: "V5",
			comment: "a header byte (the producer) changed and the header digest recomputed: the preamble differs",
			data:    tamperedHeader, trusted: []ed25519.PrivateKey{keyA}},
		{name: "header-tampered-digest-stale", expect: format.ErrHeader, rule: "R10",
			comment: "a header byte changed without recomputing the header digest",
			data: func() []byte {
				c := slices.Clone(signedA)
				c[pre.HeaderEnd()-1] ^= 1
				return c
			}(), trusted: []ed25519.PrivateKey{keyA}},
		{name: "data-tampered", expect: format.ErrDigest, rule: "R26",
			comment: "one bit of a data chunk flipped: the signature verifies, the chunk digest does not",
			data:    tamperedData, trusted: []ed25519.PrivateKey{keyA}},
		{name: "padding-nonzero-signed", expect: format.ErrPadding, rule: "R25",
			comment: "a signed file with bytes hidden in the padding after its first tensor: the signature and every chunk digest verify, the padding does not",
			data:    paddedData, trusted: []ed25519.PrivateKey{keyA}},
		{name: "block-truncated", expect: format.ErrSignatureBlock, rule: "R28",
			comment: "the last byte of the signature block is missing",
			data:    signedA[:len(signedA)-1], trusted: []ed25519.PrivateKey{keyA}},
		{name: "block-duplicated", expect: format.ErrSignatureBlock, rule: "R28",
			comment: "the signature block appears twice",
			data:    append(slices.Clone(signedA), blockA...), trusted: []ed25519.PrivateKey{keyA}},
		{name: "trailing-after-block", expect: format.ErrSignatureBlock, rule: "R28",
			comment: "one zero byte after the signature block",
			data:    append(slices.Clone(signedA), 0), trusted: []ed25519.PrivateKey{keyA}},
		{name: "block-replayed", expect: format.ErrSignature, rule: "V5",
			comment: "the signature block of another file with other tensor bytes",
			data:    append(slices.Clone(otherUnsigned), blockA...), trusted: []ed25519.PrivateKey{keyA}},
		{name: "digest-algorithm-changed", expect: format.ErrSignature, rule: "V5",
			comment: "the same tensors re-encoded with SHA-256 and the BLAKE3 file's signature attached",
			data:    append(slices.Clone(shaUnsigned), blockA...), trusted: []ed25519.PrivateKey{keyA}},
		{name: "digest-algorithm-field-changed", expect: format.ErrHeader, rule: "R10",
			comment: "only the preamble's digest algorithm field changed to SHA-256",
			data: func() []byte {
				c := slices.Clone(signedA)
				binary.LittleEndian.PutUint32(c[20:], uint32(format.SHA256))
				return c
			}(), trusted: []ed25519.PrivateKey{keyA}},
		{name: "detached-other-file", expect: format.ErrSignature, rule: "V5",
			comment: "a detached signature made for another file",
			data:    otherUnsigned, detached: detA, trusted: []ed25519.PrivateKey{keyA}},
		{name: "detached-truncated", expect: format.ErrSignatureBlock, rule: "V3",
			comment: "the detached signature block lacks its last byte",
			data:    unsigned, detached: detA[:len(detA)-1], trusted: []ed25519.PrivateKey{keyA}},
		{name: "detached-not-a-block", expect: format.ErrSignatureBlock, rule: "V3",
			comment: "the detached signature file does not start with the block magic",
			data:    unsigned, detached: []byte("-----BEGIN SIGNATURE-----\n"), trusted: []ed25519.PrivateKey{keyA}},
		{name: "no-trusted-keys", expect: format.ErrNoSignature, rule: "V1",
			comment: "a validly signed file checked with an empty set of trusted keys",
			data:    signedA},
	}
	return vs, nil
}

func render(v vector) []byte {
	var h strings.Builder
	expect := "ok"
	if v.expect != nil {
		expect = v.expect.Name()
	}
	fmt.Fprintf(&h, "expect: %s\n", expect)
	if v.rule != "" {
		fmt.Fprintf(&h, "rule: %s\n", v.rule)
	}
	fmt.Fprintf(&h, "comment: %s\n", v.comment)
	if v.expect == format.ErrDigest {
		h.WriteString("verify: full\n")
	}
	var ks []string
	for _, k := range v.trusted {
		ks = append(ks, hex.EncodeToString(k.Public().(ed25519.PublicKey)))
	}
	fmt.Fprintf(&h, "trusted: %s\n", strings.Join(ks, " "))
	if v.all {
		h.WriteString("require: all\n")
	}
	if v.refused != nil {
		ks = nil
		for _, k := range v.refused {
			ks = append(ks, hex.EncodeToString(k))
		}
		fmt.Fprintf(&h, "refused: %s\n", strings.Join(ks, " "))
	}
	if v.detached != nil {
		fmt.Fprintf(&h, "detached: %s\n", hex.EncodeToString(v.detached))
	}
	h.WriteString("\n")
	return append([]byte(h.String()), v.data...)
}

// check runs the vector the way a reader must: parse it back, open the file,
// then verify signatures and all data.
func check(v vector, file []byte) error {
	c, err := testvectors.Parse(v.name, file)
	if err != nil {
		return err
	}
	err = Run(c)
	if c.Kind == nil {
		return err
	}
	if !errors.Is(err, c.Kind) {
		return fmt.Errorf("got %v, want kind %s", err, c.Kind.Name())
	}
	return nil
}

// Run checks one signature vector. It is copied in sign's tests; the two
// must agree with spec/SIGNATURES.md section 10.
func Run(c testvectors.Case) error {
	var pubs []ed25519.PublicKey
	for _, h := range strings.Fields(c.Keys["trusted"]) {
		k, err := hex.DecodeString(h)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("bad trusted key %q", h)
		}
		pubs = append(pubs, k)
	}
	for _, h := range strings.Fields(c.Keys["refused"]) {
		k, err := hex.DecodeString(h)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("bad refused key %q", h)
		}
		if _, err := sign.NewKeyRing(k); !errors.Is(err, sign.ErrWeakKey) {
			return fmt.Errorf("refused key %s: NewKeyRing gave %v, want sign.ErrWeakKey", h, err)
		}
	}
	kr, err := sign.NewKeyRing(pubs...)
	if err != nil {
		return err
	}
	var opts []sign.VerifyOption
	if c.Keys["require"] == "all" {
		opts = append(opts, sign.WithRequireAll())
	}
	if d, ok := c.Keys["detached"]; ok {
		b, err := hex.DecodeString(d)
		if err != nil {
			return err
		}
		opts = append(opts, sign.WithDetachedSignature(b))
	}
	f, err := decode.NewReader(bytes.NewReader(c.Data), int64(len(c.Data)))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = sign.Verify(context.Background(), f, kr, opts...)
	return err
}

func run(out string) error {
	tmp, err := os.MkdirTemp("", "gensign")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	vs, err := vectors(tmp)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	var errs []error
	for _, v := range vs {
		b := render(v)
		if err := check(v, b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
		name := v.name + testvectors.Suffix
		if _, dup := files[name]; dup {
			return fmt.Errorf("two vectors named %s", v.name)
		}
		files[name] = b
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(out, "*"+testvectors.Suffix))
	for _, p := range old {
		if _, keep := files[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
