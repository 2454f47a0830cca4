package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// key returns a deterministic Ed25519 key for seed byte s.
func key(s byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{s}, ed25519.SeedSize))
}

func ring(t testing.TB, keys ...ed25519.PrivateKey) *sign.KeyRing {
	t.Helper()
	var pubs []ed25519.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public().(ed25519.PublicKey))
	}
	kr, err := sign.NewKeyRing(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var ts0 = time.Unix(1700000000, 0)

// smallFile writes a small file (alignment 64, chunk 1024, a few tensors
// spanning several chunks) to dir and returns its path.
func smallFile(t testing.TB, dir string, digest format.DigestAlgorithm) string {
	t.Helper()
	return smallFileSeed(t, dir, digest, 0)
}

// smallFileSeed is smallFile with tensor bytes varied by seed.
func smallFileSeed(t testing.TB, dir string, digest format.DigestAlgorithm, seed byte) string {
	t.Helper()
	path := filepath.Join(dir, "m.swt")
	w, err := encode.Create(path, encode.WithAlignment(64), encode.WithChunkSize(1024), encode.WithDigest(digest), encode.WithProducer("sign-test"))
	if err != nil {
		t.Fatal(err)
	}
	w.SetMetadata("license", "mit")
	add := func(name string, dt format.DType, shape []int64, s byte) {
		s += seed
		n := int64(dt.Size())
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = s + byte(i*7)
		}
		if err := w.Add(name, dt, shape, b); err != nil {
			t.Fatal(err)
		}
	}
	add("a.bias", format.F32, []int64{3}, 1)
	add("a.weight", format.F32, []int64{20, 20}, 2)
	add("b.scale", format.F16, []int64{5}, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func signFile(t testing.TB, path string, k ed25519.PrivateKey, comment string, detached bool) {
	t.Helper()
	if err := sign.Sign(context.Background(), path, k, signOpts(comment, detached)...); err != nil {
		t.Fatal(err)
	}
}

func signOpts(comment string, detached bool) []sign.SignOption {
	opts := []sign.SignOption{sign.WithComment(comment), sign.WithTimestamp(ts0)}
	if detached {
		opts = append(opts, sign.WithDetached())
	}
	return opts
}

// verifyBytes opens b in memory and runs full verification.
func verifyBytes(b []byte, kr *sign.KeyRing, opts ...sign.VerifyOption) (*sign.Result, error) {
	f, err := decode.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sign.Verify(context.Background(), f, kr, opts...)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blockStart returns the offset of the signature block (the header end).
func blockStart(t testing.TB, b []byte) int {
	t.Helper()
	p, err := format.ParsePreamble(b, int64(len(b)), format.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return int(p.HeaderEnd())
}
