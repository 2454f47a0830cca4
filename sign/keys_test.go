package sign_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/sign"
)

func TestKeyID(t *testing.T) {
	pub := key(1).Public().(ed25519.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8410: 12 bytes of SubjectPublicKeyInfo prefix, then the key.
	if len(der) != 44 || !bytes.Equal(der[12:], pub) {
		t.Fatalf("unexpected PKIX DER %x", der)
	}
	if sign.KeyIDOf(pub) != sign.KeyID(sha256.Sum256(der)) {
		t.Fatal("key id is not SHA-256 of the PKIX DER")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	priv := key(7)
	pemPriv, err := sign.MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sign.ParsePrivateKey(pemPriv, nil)
	if err != nil || !got.Equal(priv) {
		t.Fatal(err)
	}
	pemPub, err := sign.MarshalPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.ParsePublicKey(pemPub)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatal(err)
	}
	if _, err := sign.ParsePublicKey(pemPriv); !errors.Is(err, sign.ErrKey) {
		t.Fatal("private key accepted as public", err)
	}
	if _, err := sign.ParsePrivateKey([]byte("nothing"), nil); !errors.Is(err, sign.ErrKey) {
		t.Fatal(err)
	}
}

func TestEncryptedKey(t *testing.T) {
	priv := key(8)
	pass := []byte("correct horse")
	enc, err := sign.MarshalEncryptedPrivateKey(priv, pass, sign.MinWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sign.ParsePrivateKey(enc, func() ([]byte, error) { return pass, nil })
	if err != nil || !got.Equal(priv) {
		t.Fatal(err)
	}
	if _, err := sign.ParsePrivateKey(enc, func() ([]byte, error) { return []byte("wrong"), nil }); !errors.Is(err, sign.ErrPassphrase) {
		t.Fatal(err)
	}
	if _, err := sign.ParsePrivateKey(enc, nil); !errors.Is(err, sign.ErrPassphrase) {
		t.Fatal(err)
	}
	if bytes.Contains(enc, priv.Seed()) {
		t.Fatal("seed in the clear")
	}
	if _, err := sign.MarshalEncryptedPrivateKey(priv, pass, sign.MaxWorkFactor+1); err == nil {
		t.Fatal("work factor over the maximum accepted")
	}
}

func TestLoadKeyRing(t *testing.T) {
	dir := t.TempDir()
	for i, k := range []byte{1, 2, 3} {
		p, _ := sign.MarshalPublicKey(key(k).Public().(ed25519.PublicKey))
		name := []string{"a.pem", "b.pub", "c.pem"}[i]
		if err := os.WriteFile(filepath.Join(dir, name), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "README"), []byte("ignored"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden.pem"), []byte("ignored"), 0o644)
	kr, err := sign.LoadKeyRing(dir)
	if err != nil || kr.Len() != 3 {
		t.Fatal(kr.Len(), err)
	}
	// A file of several keys.
	var all []byte
	for _, k := range []byte{4, 5} {
		p, _ := sign.MarshalPublicKey(key(k).Public().(ed25519.PublicKey))
		all = append(all, p...)
	}
	f := filepath.Join(t.TempDir(), "keys.pem")
	os.WriteFile(f, all, 0o644)
	kr, err = sign.LoadKeyRing(f)
	if err != nil || kr.Len() != 2 {
		t.Fatal(err)
	}
	if _, ok := kr.Lookup(sign.KeyIDOf(key(5).Public().(ed25519.PublicKey))); !ok {
		t.Fatal("key 5 missing")
	}
	// Anything unparsable fails the whole load.
	os.WriteFile(f, append(all, "junk"...), 0o644)
	if _, err := sign.LoadKeyRing(f); !errors.Is(err, sign.ErrKey) {
		t.Fatal(err)
	}
	priv, _ := sign.MarshalPrivateKey(key(1))
	os.WriteFile(filepath.Join(dir, "d.pem"), priv, 0o644)
	if _, err := sign.LoadKeyRing(dir); !errors.Is(err, sign.ErrKey) {
		t.Fatal("private key in trust dir accepted", err)
	}
	os.WriteFile(f, make([]byte, sign.MaxKeyFileSize+1), 0o644)
	if _, err := sign.LoadKeyRing(f); !errors.Is(err, sign.ErrKey) {
		t.Fatal(err)
	}
	os.WriteFile(f, nil, 0o644)
	if _, err := sign.LoadKeyRing(f); !errors.Is(err, sign.ErrKey) {
		t.Fatal(err)
	}
}

// TestOpenSSL checks both directions with the system's openssl: its keys
// load here and sign files, and our keys and signatures work there.
func TestOpenSSL(t *testing.T) {
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(ossl, args...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		return out
	}
	// openssl -> safeweights.
	kf := filepath.Join(dir, "k.pem")
	run("genpkey", "-algorithm", "ed25519", "-out", kf)
	pubPEM := run("pkey", "-in", kf, "-pubout")
	privPEM, _ := os.ReadFile(kf)
	priv, err := sign.ParsePrivateKey(privPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.ParsePublicKey(pubPEM)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatal("openssl public key differs", err)
	}
	// The key id is what `openssl pkey -pubin -outform DER | sha256sum` gives.
	der := run("pkey", "-in", kf, "-pubout", "-outform", "DER")
	if sign.KeyIDOf(pub) != sign.KeyID(sha256.Sum256(der)) {
		t.Fatal("key id differs from SHA-256 of openssl's PKIX DER")
	}
	path := smallFile(t, dir, 1)
	signFile(t, path, priv, "openssl key", false)
	kr, _ := sign.NewKeyRing(pub)
	if _, err := verifyBytes(readFile(t, path), kr); err != nil {
		t.Fatal(err)
	}

	// safeweights -> openssl.
	_, ours, _ := ed25519.GenerateKey(rand.Reader)
	op, _ := sign.MarshalPrivateKey(ours)
	ourKey := filepath.Join(dir, "ours.pem")
	os.WriteFile(ourKey, op, 0o600)
	want, _ := sign.MarshalPublicKey(ours.Public().(ed25519.PublicKey))
	if got := run("pkey", "-in", ourKey, "-pubout"); !bytes.Equal(got, want) {
		t.Fatalf("openssl derives %s, we wrote %s", got, want)
	}
	ourPub := filepath.Join(dir, "ours.pub")
	os.WriteFile(ourPub, want, 0o644)
	msg := filepath.Join(dir, "msg")
	sigf := filepath.Join(dir, "sig")
	os.WriteFile(msg, []byte("safeweights signature interop"), 0o644)
	os.WriteFile(sigf, ed25519.Sign(ours, []byte("safeweights signature interop")), 0o644)
	run("pkeyutl", "-verify", "-pubin", "-inkey", ourPub, "-rawin", "-in", msg, "-sigfile", sigf)
	// And an openssl signature verifies here.
	osig := run("pkeyutl", "-sign", "-inkey", ourKey, "-rawin", "-in", msg)
	if !ed25519.Verify(ours.Public().(ed25519.PublicKey), []byte("safeweights signature interop"), osig) {
		t.Fatal("openssl signature does not verify")
	}
}

// TestWeakKeysRefused checks that the keys that admit forgeries are refused
// when parsed or trusted, and that the forgery is real: crypto/ed25519 alone
// accepts R = identity, S = 0 under the identity key for any message.
func TestWeakKeysRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	forged := append(slices.Clone(identity), make([]byte, 32)...)
	if !ed25519.Verify(identity, []byte("any message"), forged) {
		t.Fatal("crypto/ed25519 rejects the identity-key forgery; the check guards nothing")
	}
	// yPlusP returns the encoding of y = p + d (d may be negative).
	yPlusP := func(d int) []byte {
		b := bytes.Repeat([]byte{0xff}, 32)
		b[0] = byte(0xed + d)
		b[31] = 0x7f
		return b
	}
	signBit := slices.Clone(identity)
	signBit[31] |= 0x80
	for name, k := range map[string][]byte{
		"identity":          identity,
		"order-2 (y = -1)":  yPlusP(-1),
		"order-4 (y = p)":   yPlusP(0),
		"identity y = p+1":  yPlusP(1),
		"identity sign bit": signBit,
	} {
		if err := sign.CheckPublicKey(k); !errors.Is(err, sign.ErrWeakKey) {
			t.Errorf("%s: CheckPublicKey gave %v, want ErrWeakKey", name, err)
		}
		if _, err := sign.NewKeyRing(k); !errors.Is(err, sign.ErrWeakKey) || !errors.Is(err, sign.ErrKey) {
			t.Errorf("%s: NewKeyRing gave %v, want ErrWeakKey", name, err)
		}
		der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(k))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sign.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); !errors.Is(err, sign.ErrWeakKey) {
			t.Errorf("%s: ParsePublicKey gave %v, want ErrWeakKey", name, err)
		}
	}
	if err := sign.CheckPublicKey(key(1).Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("a real key: %v", err)
	}
}
