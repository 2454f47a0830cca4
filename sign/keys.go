package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// ErrKey reports a key file that is malformed, holds no key, or holds a key
// that is not Ed25519.
var ErrKey = errors.New("sign: invalid key")

// ErrWeakKey reports an Ed25519 public key that no signer can own: a point
// of small order (its order divides 8, so a forged signature with R the
// identity and S = 0 verifies for every message) or a non-canonical encoding
// (y >= p, or x = 0 with the sign bit set), which has a second, canonical
// spelling and so a second key id. Such keys are refused when parsed,
// loaded or trusted (spec/SIGNATURES.md section 3). errors.Is(err, ErrKey)
// holds for it too.
var ErrWeakKey = fmt.Errorf("%w: small-order or non-canonically encoded public key", ErrKey)

// CheckPublicKey reports whether pub is a usable Ed25519 public key: 32
// bytes, the canonical encoding of a point on the curve, not of small order.
func CheckPublicKey(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrKey, len(pub))
	}
	var a edwards25519.Point
	if _, err := a.SetBytes(pub); err != nil {
		return fmt.Errorf("%w: not a point on the curve", ErrKey)
	}
	// SetBytes accepts non-canonical encodings; the canonical one is what
	// Bytes gives back.
	if !bytes.Equal(a.Bytes(), pub) {
		return fmt.Errorf("%w: not the canonical encoding of its point", ErrWeakKey)
	}
	if new(edwards25519.Point).MultByCofactor(&a).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("%w: a point of small order", ErrWeakKey)
	}
	return nil
}

// ErrPassphrase reports a wrong passphrase for an encrypted private key (or
// an encrypted key file whose bytes were changed: the two cannot be told apart).
var ErrPassphrase = errors.New("sign: wrong passphrase or corrupted encrypted key")

// PEM block types (spec/SIGNATURES.md section 5).
const (
	pemPublic    = "PUBLIC KEY"                        // PKIX, RFC 8410
	pemPrivate   = "PRIVATE KEY"                       // PKCS #8, RFC 8410
	pemEncrypted = "SAFEWEIGHTS ENCRYPTED PRIVATE KEY" // section 5.3
)

// Limits of key files and key rings, so a hostile trust directory cannot make
// a verifier read without bound.
const (
	// MaxKeyFileSize bounds one key file in bytes.
	MaxKeyFileSize = 64 << 10
	// MaxKeyRingKeys bounds the keys of a KeyRing loaded from disk.
	MaxKeyRingKeys = 1024
	// MaxKeyRingFiles bounds the directory entries LoadKeyRing looks at.
	MaxKeyRingFiles = 4096
)

// KeyID identifies a public key in a signature entry: the SHA-256 of the
// key's PKIX DER encoding (spec/SIGNATURES.md section 4).
type KeyID [32]byte

// String is the key id in lowercase hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 bytes of the key id in hex, for display.
func (id KeyID) Short() string { return hex.EncodeToString(id[:8]) }

// KeyIDOf returns the key id of pub. It panics if pub is not 32 bytes long,
// which no parsed key is.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("sign: invalid Ed25519 public key length")
	}
	return sha256.Sum256(der)
}

// MarshalPublicKey returns pub as a PKIX "PUBLIC KEY" PEM block, the form
// `openssl pkey -pubout` writes.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrKey, len(pub))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// MarshalPrivateKey returns priv as an unencrypted PKCS #8 "PRIVATE KEY" PEM
// block, the form `openssl genpkey -algorithm ed25519` writes.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrKey, len(priv))
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// Work factors of the passphrase-protected key format: scrypt with
// N = 2^logN, r = 8, p = 1.
const (
	// DefaultWorkFactor is the logN that MarshalEncryptedPrivateKey uses by
	// default: 256 MiB of memory and about a second on a current machine.
	DefaultWorkFactor = 18
	// MinWorkFactor and MaxWorkFactor bound the logN a key file may record;
	// the maximum keeps a hostile key file from asking for more than 1 GiB.
	MinWorkFactor = 10
	MaxWorkFactor = 20
)

var encMagic = [8]byte{'s', 'w', 't', 'k', 'e', 'y', '1', '\n'}

const (
	encSaltSize = 16
	encHeader   = len(encMagic) + 1 + encSaltSize
	encSize     = encHeader + ed25519.SeedSize + chacha20poly1305.Overhead
)

// MarshalEncryptedPrivateKey returns priv encrypted under passphrase, as a
// "SAFEWEIGHTS ENCRYPTED PRIVATE KEY" PEM block (spec/SIGNATURES.md section
// 5.3): scrypt derives a key from the passphrase and a random salt, and
// ChaCha20-Poly1305 seals the 32-byte Ed25519 seed. workFactor is scrypt's
// logN; 0 means DefaultWorkFactor.
func MarshalEncryptedPrivateKey(priv ed25519.PrivateKey, passphrase []byte, workFactor int) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrKey, len(priv))
	}
	if workFactor == 0 {
		workFactor = DefaultWorkFactor
	}
	if workFactor < MinWorkFactor || workFactor > MaxWorkFactor {
		return nil, fmt.Errorf("sign: work factor %d outside [%d, %d]", workFactor, MinWorkFactor, MaxWorkFactor)
	}
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("sign: empty passphrase")
	}
	b := make([]byte, encHeader, encSize)
	copy(b, encMagic[:])
	b[len(encMagic)] = byte(workFactor)
	if _, err := io.ReadFull(rand.Reader, b[len(encMagic)+1:encHeader]); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	aead, err := encAEAD(passphrase, b[len(encMagic)+1:encHeader], workFactor)
	if err != nil {
		return nil, err
	}
	// The key is unique to this salt, so a fixed nonce never repeats.
	var nonce [chacha20poly1305.NonceSize]byte
	b = aead.Seal(b, nonce[:], priv.Seed(), b[:encHeader])
	return pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: b}), nil
}

func encAEAD(passphrase, salt []byte, logN int) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	k, err := scrypt.Key(passphrase, salt, 1<<logN, 8, 1, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("sign: scrypt: %w", err)
	}
	return chacha20poly1305.New(k)
}

func decryptPrivateKey(b []byte, passphrase []byte) (ed25519.PrivateKey, error) {
	if len(b) != encSize || [8]byte(b[:8]) != encMagic {
		return nil, fmt.Errorf("%w: encrypted key of %d bytes or unknown version", ErrKey, len(b))
	}
	logN := int(b[len(encMagic)])
	if logN < MinWorkFactor || logN > MaxWorkFactor {
		return nil, fmt.Errorf("%w: work factor %d outside [%d, %d]", ErrKey, logN, MinWorkFactor, MaxWorkFactor)
	}
	aead, err := encAEAD(passphrase, b[len(encMagic)+1:encHeader], logN)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	seed, err := aead.Open(nil, nonce[:], b[encHeader:], b[:encHeader])
	if err != nil {
		return nil, ErrPassphrase
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePrivateKey parses the first PEM block of data: an unencrypted PKCS #8
// Ed25519 key, or a passphrase-protected key, for which passphrase is called
// (it may be nil when no encrypted key is expected).
func ParsePrivateKey(data []byte, passphrase func() ([]byte, error)) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKey)
	}
	switch blk.Type {
	case pemPrivate:
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: %T is not an Ed25519 key", ErrKey, k)
		}
		return priv, nil
	case pemEncrypted:
		if passphrase == nil {
			return nil, fmt.Errorf("%w: key is encrypted and no passphrase was given", ErrPassphrase)
		}
		p, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("sign: passphrase: %w", err)
		}
		return decryptPrivateKey(blk.Bytes, p)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: encrypted PKCS #8 is not supported; decrypt with `openssl pkey` or use safeweights keygen", ErrKey)
	}
	return nil, fmt.Errorf("%w: PEM type %q", ErrKey, blk.Type)
}

// ParsePublicKey parses a PKIX "PUBLIC KEY" PEM block holding an Ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKey)
	}
	return parsePublicBlock(blk)
}

func parsePublicBlock(blk *pem.Block) (ed25519.PublicKey, error) {
	if blk.Type != pemPublic {
		return nil, fmt.Errorf("%w: PEM type %q, want %q", ErrKey, blk.Type, pemPublic)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 key", ErrKey, k)
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// A KeyRing is a set of trusted Ed25519 public keys, found by key id.
// The zero KeyRing and a nil *KeyRing trust nothing.
type KeyRing struct {
	keys map[KeyID]ed25519.PublicKey
}

// NewKeyRing returns a key ring trusting keys.
func NewKeyRing(keys ...ed25519.PublicKey) (*KeyRing, error) {
	kr := &KeyRing{}
	for _, k := range keys {
		if err := kr.Add(k); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// Add trusts pub.
func (kr *KeyRing) Add(pub ed25519.PublicKey) error {
	if err := CheckPublicKey(pub); err != nil {
		return err
	}
	if kr.keys == nil {
		kr.keys = make(map[KeyID]ed25519.PublicKey)
	}
	kr.keys[KeyIDOf(pub)] = slices.Clone(pub)
	return nil
}

// Len is the number of trusted keys.
func (kr *KeyRing) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// Lookup returns the trusted key with key id id.
func (kr *KeyRing) Lookup(id KeyID) (ed25519.PublicKey, bool) {
	if kr == nil {
		return nil, false
	}
	k, ok := kr.keys[id]
	return k, ok
}

// IDs returns the key ids of the ring in ascending order.
func (kr *KeyRing) IDs() []KeyID {
	if kr == nil {
		return nil
	}
	ids := make([]KeyID, 0, len(kr.keys))
	for id := range kr.keys {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b KeyID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// LoadKeyRing reads trusted public keys from path: a file of one or more
// "PUBLIC KEY" PEM blocks, or a directory whose *.pem and *.pub files are
// such files (other names, subdirectories and dot files are ignored). Any
// key file that does not parse, or holds a key that is not Ed25519, fails
// the whole load: a trust store is never half read. Sizes and counts are
// bounded by MaxKeyFileSize, MaxKeyRingFiles and MaxKeyRingKeys.
func LoadKeyRing(path string) (*KeyRing, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	kr := &KeyRing{}
	if !st.IsDir() {
		if err := kr.loadFile(path); err != nil {
			return nil, err
		}
		return kr, nil
	}
	d, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	defer d.Close()
	ents, err := d.ReadDir(MaxKeyRingFiles + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if len(ents) > MaxKeyRingFiles {
		return nil, fmt.Errorf("%w: %s holds more than %d entries", ErrKey, path, MaxKeyRingFiles)
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || (filepath.Ext(n) != ".pem" && filepath.Ext(n) != ".pub") {
			continue
		}
		p := filepath.Join(path, n)
		if st, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		} else if st.IsDir() {
			continue
		}
		if err := kr.loadFile(p); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

func (kr *KeyRing) loadFile(path string) error {
	fh, _, err := safeopen.Open(path) // a FIFO in a trust store must not block
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxKeyFileSize+1))
	if err != nil {
		return fmt.Errorf("sign: %s: %w", path, err)
	}
	if len(data) > MaxKeyFileSize {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrKey, path, MaxKeyFileSize)
	}
	n := 0
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				return fmt.Errorf("%w: %s: bytes that are not a PEM block", ErrKey, path)
			}
			break
		}
		pub, err := parsePublicBlock(blk)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := kr.Add(pub); err != nil {
			return err
		}
		if kr.Len() > MaxKeyRingKeys {
			return fmt.Errorf("%w: more than %d trusted keys", ErrKey, MaxKeyRingKeys)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: %s holds no public key", ErrKey, path)
	}
	return nil
}
