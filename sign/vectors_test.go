package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/testvectors"
)

// TestVectors runs the signature vectors (spec/SIGNATURES.md section 10)
// through every way of opening a file that a signature check can follow.
func TestVectors(t *testing.T) {
	cases, err := testvectors.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("%d signature vectors", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var pubs []ed25519.PublicKey
			for _, h := range strings.Fields(c.Keys["trusted"]) {
				k, err := hex.DecodeString(h)
				if err != nil || len(k) != ed25519.PublicKeySize {
					t.Fatalf("bad trusted key %q", h)
				}
				pubs = append(pubs, k)
			}
			for _, h := range strings.Fields(c.Keys["refused"]) {
				k, err := hex.DecodeString(h)
				if err != nil || len(k) != ed25519.PublicKeySize {
					t.Fatalf("bad refused key %q", h)
				}
				if _, err := sign.NewKeyRing(k); !errors.Is(err, sign.ErrWeakKey) {
					t.Fatalf("refused key %s: NewKeyRing gave %v, want sign.ErrWeakKey", h, err)
				}
			}
			kr, err := sign.NewKeyRing(pubs...)
			if err != nil {
				t.Fatal(err)
			}
			requireAll := c.Keys["require"] == "all"
			var opts []sign.VerifyOption
			if requireAll {
				opts = append(opts, sign.WithRequireAll())
			}
			var detached []byte
			if d, ok := c.Keys["detached"]; ok {
				if detached, err = hex.DecodeString(d); err != nil {
					t.Fatal(err)
				}
				opts = append(opts, sign.WithDetachedSignature(detached))
			}
			check := func(how string, err error) {
				t.Helper()
				if c.Kind == nil && err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if c.Kind != nil && !errors.Is(err, c.Kind) {
					t.Fatalf("%s: got %v, want kind %s", how, err, c.Kind.Name())
				}
			}
			// Verify, full.
			f, err := decode.NewReader(bytes.NewReader(c.Data), int64(len(c.Data)))
			if err == nil {
				_, err = sign.Verify(context.Background(), f, kr, opts...)
				f.Close()
			}
			check("Verify", err)

			// Under the policy with lazy digests, reading every tensor.
			p := &sign.Policy{Trusted: kr, Detached: detached, RequireAll: requireAll}
			f, err = decode.NewReader(bytes.NewReader(c.Data), int64(len(c.Data)), decode.WithPolicy(p), decode.WithVerify(decode.VerifyLazy))
			if err == nil {
				for tn := range f.All() {
					if _, err = tn.Bytes(); err != nil {
						break
					}
				}
				f.Close()
			}
			check("policy", err)
		})
	}
}
