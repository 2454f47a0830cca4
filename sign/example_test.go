package sign_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

func exampleFile(dir string) string {
	path := filepath.Join(dir, "model.swt")
	w, err := encode.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Add("w", format.F32, []int64{2}, make([]byte, 8)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return path
}

// Sign a file, then verify it against the trusted key: the signature and
// every data digest.
func ExampleSign() {
	dir, _ := os.MkdirTemp("", "sign-example")
	defer os.RemoveAll(dir)
	path := exampleFile(dir)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	err = sign.Sign(ctx, path, priv,
		sign.WithComment("release 1.0"),
		sign.WithTimestamp(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	if err != nil {
		log.Fatal(err)
	}

	trusted, err := sign.NewKeyRing(pub)
	if err != nil {
		log.Fatal(err)
	}
	f, err := decode.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := sign.Verify(ctx, f, trusted)
	if err != nil {
		log.Fatal(err)
	}
	s := res.Signers[0]
	fmt.Println(res.HeaderVerified, res.DataVerified, s.Trusted, s.Comment, s.Timestamp)
	// Output: true true true release 1.0 2026-01-02 03:04:05 +0000 UTC
}

// A detached signature leaves the file untouched and is written beside it
// as FILE.swt.sig; Require finds it there.
func ExampleWithDetached() {
	dir, _ := os.MkdirTemp("", "sign-example")
	defer os.RemoveAll(dir)
	path := exampleFile(dir)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	if err := sign.Sign(context.Background(), path, priv, sign.WithDetached()); err != nil {
		log.Fatal(err)
	}
	_, err := os.Stat(sign.DetachedPath(path))
	fmt.Println("detached signature written:", err == nil)

	trusted, _ := sign.NewKeyRing(pub)
	f, err := decode.Open(path, decode.WithPolicy(sign.Require(trusted)))
	if err != nil {
		log.Fatal(err)
	}
	f.Close()
	fmt.Println("opened under the policy")
	// Output:
	// detached signature written: true
	// opened under the policy
}

// Load under a policy: Open fails unless a trusted key signed the file, and
// no tensor byte is returned before its digest matched.
func ExampleRequire() {
	dir, _ := os.MkdirTemp("", "sign-example")
	defer os.RemoveAll(dir)
	path := exampleFile(dir)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	trusted, _ := sign.NewKeyRing(pub)

	// The file is not signed: the policy refuses it.
	_, err := decode.Open(path, decode.WithPolicy(sign.Require(trusted)), decode.WithVerify(decode.VerifyLazy))
	fmt.Println(errors.Is(err, format.ErrNoSignature))
	// Output: true
}
