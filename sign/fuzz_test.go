package sign_test

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/testvectors"
)

// seedBlocks returns signature blocks made by signing, plus the blocks of
// the signature test vectors when present.
func seedBlocks(t testing.TB) (unsigned []byte, blocks [][]byte) {
	dir := t.TempDir()
	path := smallFile(t, dir, format.BLAKE3)
	unsigned = readFile(t, path)
	for i, c := range []string{"", "producer", "auditor ✓"} {
		signFile(t, path, key(byte(i+1)), c, false)
		b := readFile(t, path)
		blocks = append(blocks, slices.Clone(b[len(unsigned):]))
	}
	cases, err := testvectors.Sign()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if i := bytes.Index(c.Data, format.SignatureMagic[:]); i >= 0 {
			blocks = append(blocks, c.Data[i:])
		}
		if d, err := hex.DecodeString(c.Keys["detached"]); err == nil && len(d) > 0 {
			blocks = append(blocks, d)
		}
	}
	return unsigned, blocks
}

// FuzzSignatureBlock checks that the block parser never panics, that every
// block it accepts re-encodes to the same bytes, and that verification of a
// file carrying an arbitrary block never panics and never succeeds without
// a genuine signature by the trusted key.
func FuzzSignatureBlock(f *testing.F) {
	unsigned, blocks := seedBlocks(f)
	for _, b := range blocks {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(format.SignatureMagic[:])
	kr := ring(f, key(1))
	lim := format.DefaultLimits()
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := format.ParseSignatureBlock(b, 0, lim)
		if err != nil {
			if format.KindOf(err) == nil {
				t.Fatalf("error without a kind: %v", err)
			}
		} else if re := format.AppendSignatureBlock(nil, entries); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b)
		}
		file := append(slices.Clone(unsigned), b...)
		res, verr := verifyBytes(file, kr)
		if verr == nil {
			if err != nil || !res.DataVerified || len(res.Trusted) != 1 {
				t.Fatalf("verified with block error %v, result %+v", err, res)
			}
		}
		// The same bytes as a detached block.
		if _, derr := verifyBytes(unsigned, kr, sign.WithDetachedSignature(b)); derr == nil && err != nil {
			t.Fatalf("detached block verified though it does not parse: %v", err)
		}
	})
}
