package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/safeweights/safeweights/sign"
	"golang.org/x/term"
)

// maxPassphraseFile bounds a passphrase file.
const maxPassphraseFile = 64 << 10

func readPassphrase(path string) ([]byte, error) {
	b, err := readSmallFile(path, maxPassphraseFile)
	if errors.Is(err, errTooLarge) {
		return nil, usageErrorf("passphrase file %s is over %d bytes", clean(path), maxPassphraseFile)
	}
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n") // one trailing newline, as editors add
	if len(b) == 0 {
		return nil, usageErrorf("passphrase file %s is empty", clean(path))
	}
	return b, nil
}

// writeNew creates path with data, refusing to replace an existing file.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return usageErrorf("%s already exists", clean(path)).withHint("keygen never overwrites a key; choose another name or remove the old key")
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func init() {
	var out, passFile string
	var workFactor int
	c := &command{
		name:    "keygen",
		args:    "-o, --output KEY [--passphrase-file FILE] [--work-factor N]",
		summary: "generate an Ed25519 signing key (KEY) and its public key (KEY.pub)",
		help: `Keygen writes a new Ed25519 private key to KEY (mode 0600) and its public key
to KEY.pub, both PEM: the private key as PKCS #8 (as 'openssl genpkey
-algorithm ed25519' writes it) or, with --passphrase-file, encrypted with a
key derived from the passphrase by scrypt. It never overwrites a file.
Give KEY.pub to whoever verifies your files.`,
		example: `  safeweights keygen -o alice.key
  safeweights keygen -o alice.key --passphrase-file pass.txt
  safeweights verify --trusted alice.key.pub model.swt`,
		flags: func(fs *flag.FlagSet) {
			outputFlag(fs, &out, "private key `file`; the public key goes to FILE.pub")
			fs.StringVar(&passFile, "passphrase-file", "", "encrypt the private key with the passphrase in `file`")
			fs.IntVar(&workFactor, "work-factor", 0, fmt.Sprintf("scrypt log2(N) for an encrypted key, %d to %d (0: %d)", sign.MinWorkFactor, sign.MaxWorkFactor, sign.DefaultWorkFactor))
		},
	}
	c.run = func(e *env, args []string) error {
		_, done, err := parseOrHelp(e, c, newFlags(c), args, 0, 0)
		if done {
			return err
		}
		if out == "" || out == "-" {
			return usageErrorf("keygen: -o KEY is required").withHint("usage: safeweights keygen " + c.args)
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		var privPEM []byte
		if passFile != "" {
			pass, err := readPassphrase(passFile)
			if err != nil {
				return err
			}
			if privPEM, err = sign.MarshalEncryptedPrivateKey(priv, pass, workFactor); err != nil {
				return err
			}
		} else if privPEM, err = sign.MarshalPrivateKey(priv); err != nil {
			return err
		}
		pubPEM, err := sign.MarshalPublicKey(pub)
		if err != nil {
			return err
		}
		if _, err := os.Stat(out + ".pub"); err == nil {
			return usageErrorf("%s already exists", clean(out+".pub")).withHint("keygen never overwrites a key; choose another name or remove the old key")
		}
		if err := writeNew(out, privPEM, 0o600); err != nil {
			return err
		}
		if err := writeNew(out+".pub", pubPEM, 0o644); err != nil {
			os.Remove(out)
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s and %s\nkey id %s\n", clean(out), clean(out+".pub"), sign.KeyIDOf(pub))
		return nil
	}
	register(c)
}

func init() {
	var keyPath, comment, passFile string
	var detached bool
	c := &command{
		name:    "sign",
		args:    "FILE --key KEY [--comment TEXT] [--detached] [--passphrase-file FILE]",
		summary: "sign a .swt file with an Ed25519 key",
		help: `Sign checks every digest of FILE, then adds a signature by KEY to the
file's signature block (replacing an earlier signature by the same key),
without rewriting tensor data. With --detached the file is left as it is and
the signature goes to FILE.sig. The comment and the time are signed too.

KEY is a PEM private key from 'safeweights keygen' or 'openssl genpkey
-algorithm ed25519'; an encrypted key needs --passphrase-file.`,
		example: `  safeweights sign model.swt --key alice.key --comment "release 1.2"
  safeweights sign model.swt --key alice.key --detached
  safeweights sign model.swt --key alice.key --passphrase-file pass.txt`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&keyPath, "key", "", "private key `file` (PEM)")
			fs.StringVar(&comment, "comment", "", "signed `text`: who signs and why")
			fs.BoolVar(&detached, "detached", false, "write the signature to FILE.sig, leaving FILE unchanged")
			fs.StringVar(&passFile, "passphrase-file", "", "passphrase of an encrypted key, read from `file`")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		if keyPath == "" {
			return usageErrorf("sign: --key KEY is required").withHint("create a key with 'safeweights keygen -o KEY'")
		}
		if pos[0] == "-" {
			return usageErrorf("sign: FILE must be a file").withHint("a signature is written into the file, or next to it with --detached")
		}
		priv, err := loadPrivateKey(keyPath, passFile)
		if err != nil {
			return err
		}
		if isShardIndex(pos[0]) { // shards.go
			return signIndex(e, pos[0], priv, comment)
		}
		// Every digest is checked before the signature is written: the bar
		// counts the stored bytes checked.
		b := e.newBar("sign", 0)
		signOpts := []sign.SignOption{sign.WithComment(comment), sign.WithProgress(b.set)}
		if detached {
			signOpts = append(signOpts, sign.WithDetached())
		}
		err = sign.Sign(context.Background(), pos[0], priv, signOpts...)
		b.finish()
		if err != nil {
			return err
		}
		id := sign.KeyIDOf(priv.Public().(ed25519.PublicKey))
		if detached {
			fmt.Fprintf(e.stdout, "signed %s with key %s; signature in %s\n", clean(pos[0]), id.Short(), clean(sign.DetachedPath(pos[0])))
		} else {
			fmt.Fprintf(e.stdout, "signed %s with key %s\n", clean(pos[0]), id.Short())
		}
		return nil
	}
	register(c)
}

func loadPrivateKey(path, passFile string) (ed25519.PrivateKey, error) {
	data, err := readSmallFile(path, sign.MaxKeyFileSize)
	if errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%s: %w: over %d bytes", clean(path), sign.ErrKey, sign.MaxKeyFileSize)
	}
	if err != nil {
		return nil, err
	}
	askedNoFile := false
	priv, err := sign.ParsePrivateKey(data, func() ([]byte, error) {
		if passFile == "" {
			if pass, ok, err := promptPassphrase(path); ok {
				return pass, err
			}
			askedNoFile = true
			return nil, errors.New("the key is encrypted")
		}
		return readPassphrase(passFile)
	})
	if err != nil {
		if askedNoFile {
			return nil, usageErrorf("%s is encrypted", clean(path)).withHint("give its passphrase with --passphrase-file FILE, or run on a terminal to be asked")
		}
		return nil, fmt.Errorf("%s: %w", clean(path), err)
	}
	return priv, nil
}

// promptPassphrase asks for the passphrase of the key at path when standard
// input and standard error are terminals (ok false otherwise), without echo.
func promptPassphrase(path string) (pass []byte, ok bool, err error) {
	in, out := int(os.Stdin.Fd()), int(os.Stderr.Fd())
	if !term.IsTerminal(in) || !term.IsTerminal(out) {
		return nil, false, nil
	}
	fmt.Fprintf(os.Stderr, "passphrase for %s: ", clean(path))
	pass, err = term.ReadPassword(in)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, true, err
	}
	if len(pass) == 0 {
		return nil, true, usageErrorf("empty passphrase")
	}
	return pass, true, nil
}
