package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

func init() {
	var (
		jsonOut    bool
		trusted    string
		requireAll bool
		integrity  bool
	)
	c := &command{
		name:    "verify",
		args:    "FILE [--trusted DIR|FILE] [--integrity-only] [--require-all] [--json]",
		summary: "check every digest, and the signatures against trusted keys",
		help: `Verify checks the header, every chunk digest and all padding of a .swt file.
It also checks the signatures (embedded, and FILE.sig when it exists)
against trusted public keys, and succeeds only if a trusted key signed the
file. The keys are --trusted, else the trust store: $SAFEWEIGHTS_TRUSTED,
else the directory "safeweights/trusted" under the user's configuration
directory ($XDG_CONFIG_HOME, ~/.config; see docs/CLI.md). With no keys at
all verify fails: a file is authenticated or the command says no. With
--integrity-only signatures are not checked and the output says the file is
intact but not authenticated.

Exit status: 0 verified; 1 a digest, the header or the signature check
failed, no trusted key signed the file, or there are no trusted keys; 2
usage; 3 I/O error.
FILE "-" reads standard input (at most 1 GiB). FILE may be an http(s) URL or s3://BUCKET/KEY:
it is read by range requests, its FILE.sig fetched from beside it.`,
		example: `  safeweights verify --trusted alice.pub model.swt
  safeweights verify --trusted alice.pub https://hub.example/acme/model.swt
  SAFEWEIGHTS_TRUSTED=~/keys safeweights verify model.swt
  safeweights verify --integrity-only model.swt
  safeweights verify --trusted ~/.config/safeweights/trusted/ --json model.swt`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
			fs.StringVar(&trusted, "trusted", "", "trusted public keys: a PEM `file` or a directory of *.pub/*.pem files")
			fs.BoolVar(&requireAll, "require-all", false, "require a signature by every trusted key")
			fs.BoolVar(&integrity, "integrity-only", false, "check digests only; do not authenticate (the output says so)")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		if integrity && trusted != "" {
			return usageErrorf("verify: --integrity-only and --trusted exclude each other")
		}
		if !integrity && trusted == "" {
			if trusted, err = defaultTrustStore(); err != nil {
				return verifyFailed(e, jsonOut, pos[0], err)
			}
		}
		if isShardIndex(pos[0]) { // shards.go
			return verifyIndex(e, pos[0], trusted, jsonOut)
		}
		var kr *sign.KeyRing
		if trusted != "" {
			if kr, err = sign.LoadKeyRing(trusted); err != nil {
				return verifyFailed(e, jsonOut, pos[0], err)
			}
		}
		f, err := openSWT(e, pos[0], false)
		if err != nil {
			return verifyFailed(e, jsonOut, pos[0], err)
		}
		defer f.Close()
		res := &verifyResult{Path: pos[0], Tensors: f.NumTensors(), Bytes: f.Size(), DigestAlgorithm: f.DigestAlgorithm().String()}
		_, entries := f.SignatureBlock()
		res.Signatures = len(entries)
		if kr == nil {
			b := e.newBar("verify", f.Size())
			err = f.Verify(context.Background(), decode.VerifyOptions{Progress: b.set})
			b.finish()
			if err != nil {
				return verifyFailed(e, jsonOut, pos[0], err)
			}
			res.DataVerified = true
		} else {
			b := e.newBar("verify", f.Size())
			opts := []sign.VerifyOption{sign.WithVerifyProgress(b.set)}
			if requireAll {
				opts = append(opts, sign.WithRequireAll())
			}
			if isURL(pos[0]) { // remote.go
				det, err := remoteDetached(pos[0])
				if err != nil {
					b.finish()
					return verifyFailed(e, jsonOut, pos[0], err)
				}
				if det != nil {
					opts = append(opts, sign.WithDetachedSignature(det))
				}
			} else if pos[0] != "-" {
				if _, serr := os.Stat(sign.DetachedPath(pos[0])); serr == nil {
					det, err := sign.ReadDetached(pos[0])
					opts = append(opts, sign.WithDetachedSignature(det))
					if err != nil {
						b.finish()
						return verifyFailed(e, jsonOut, pos[0], err)
					}
				}
			}
			r, err := sign.Verify(context.Background(), f, kr, opts...)
			b.finish()
			if err != nil {
				// Say who signed the header even when the data is
				// tampered: check the signatures over the header alone.
				ho := append(append([]sign.VerifyOption{}, opts...), sign.WithUnsafeSkipDataDigests())
				if hr, herr := sign.Verify(context.Background(), f, kr, ho...); herr == nil {
					res.Signers = signers(hr.Signers)
					res.HeaderVerified = hr.HeaderVerified
				}
				return verifyFailedWith(e, jsonOut, res, err)
			}
			res.HeaderVerified, res.DataVerified = r.HeaderVerified, r.DataVerified
			res.Authenticated = true
			res.Signers = signers(r.Signers)
		}
		res.OK = true
		if jsonOut {
			return writeJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "ok: %s: %d tensors, %s, every %s digest verified\n", clean(pos[0]), res.Tensors, humanBytes(res.Bytes), res.DigestAlgorithm)
		if kr == nil {
			fmt.Fprintf(e.stdout, "not authenticated (--integrity-only): %d signatures present, not checked\n", res.Signatures)
			return nil
		}
		fmt.Fprintln(e.stdout, "authenticated: signed by a trusted key")
		for _, s := range res.Signers {
			state := "untrusted key, ignored"
			if s.Trusted {
				state = "trusted, verified"
			}
			where := ""
			if s.Detached {
				where = " (detached)"
			}
			fmt.Fprintf(e.stdout, "signed by %s%s: %s", s.KeyID[:16], where, state)
			if s.Trusted && s.Comment != "" {
				fmt.Fprintf(e.stdout, ", %q", s.Comment)
			}
			fmt.Fprintln(e.stdout)
		}
		return nil
	}
	register(c)
}

type verifyResult struct {
	Path            string       `json:"path"`
	OK              bool         `json:"ok"`
	Error           string       `json:"error,omitempty"`
	Kind            string       `json:"kind,omitempty"`
	Tensors         int          `json:"tensors,omitempty"`
	Bytes           int64        `json:"bytes,omitempty"`
	DigestAlgorithm string       `json:"digest_algorithm,omitempty"`
	Signatures      int          `json:"signatures"`
	Authenticated   bool         `json:"authenticated"`
	HeaderVerified  bool         `json:"header_signature_verified"`
	DataVerified    bool         `json:"data_verified"`
	Signers         []signerInfo `json:"signers,omitempty"`
}

type signerInfo struct {
	KeyID    string `json:"key_id"`
	Trusted  bool   `json:"trusted"`
	Detached bool   `json:"detached,omitempty"`
	Comment  string `json:"comment,omitempty"`
	// Timestamp is RFC 3339, present only for years 0 to 9999;
	// TimestampUnix is the signed integer as stored, always.
	Timestamp     string `json:"timestamp,omitempty"`
	TimestampUnix int64  `json:"timestamp_unix"`
}

func signers(ss []sign.Signer) []signerInfo {
	out := make([]signerInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, signerInfo{KeyID: s.KeyID.String(), Trusted: s.Trusted, Detached: s.Detached, Comment: s.Comment,
			Timestamp: rfc3339(s.Timestamp.Unix()), TimestampUnix: s.Timestamp.Unix()})
	}
	return out
}

// rfc3339 formats the Unix time sec, or returns "" when its year is outside
// 0 to 9999, which RFC 3339 cannot write.
func rfc3339(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	if y := t.Year(); y < 0 || y > 9999 || t.Unix() != sec {
		return ""
	}
	return t.Format(time.RFC3339)
}

// defaultTrustStore returns the trust store used without --trusted:
// $SAFEWEIGHTS_TRUSTED, else safeweights/trusted under the user's
// configuration directory. It fails (no-signature, exit 1) when there is
// none, so verify never reports a file as good without authenticating it.
func defaultTrustStore() (string, error) {
	if p := os.Getenv("SAFEWEIGHTS_TRUSTED"); p != "" {
		return p, nil
	}
	where := "$SAFEWEIGHTS_TRUSTED is unset and the configuration directory is unknown"
	if dir, err := os.UserConfigDir(); err == nil {
		p := filepath.Join(dir, "safeweights", "trusted")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		where = "no --trusted, $SAFEWEIGHTS_TRUSTED unset, no trust store at " + p
	}
	return "", &cliError{code: exitInvalid,
		err:   format.Errorf(format.ErrNoSignature, "V1", -1, "trusted keys", where),
		hints: []string{"give --trusted KEYS, set SAFEWEIGHTS_TRUSTED, or add public keys to the trust store; --integrity-only checks digests without authenticating"}}
}

// verifyFailed reports a failed verification. With --json the result goes to
// stdout (ok false, the error and its kind) and the error to stderr too.
func verifyFailed(e *env, jsonOut bool, path string, err error) error {
	return verifyFailedWith(e, jsonOut, &verifyResult{Path: path}, err)
}

// verifyFailedWith is verifyFailed with what was learnt before the failure
// (the signers of the header).
func verifyFailedWith(e *env, jsonOut bool, res *verifyResult, err error) error {
	if !jsonOut {
		return err
	}
	res.OK, res.Authenticated, res.DataVerified = false, false, false
	res.Error = err.Error()
	if k := kindName(err); k != "" {
		res.Kind = k
	}
	if werr := writeJSON(e.stdout, res); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}
