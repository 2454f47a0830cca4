package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
)

func init() {
	var (
		jsonOut    bool
		trusted    string
		requireAll bool
	)
	c := &command{
		name:    "verify",
		args:    "FILE [--trusted DIR|FILE] [--json]",
		summary: "check every digest, and the signatures against trusted keys",
		help: `Verify checks the header, every chunk digest and all padding of a .swt file.
With --trusted it also checks the signatures (embedded, and FILE.sig when it
exists) against the trusted public keys, and succeeds only if a trusted key
signed the file. Without --trusted, signatures are not checked: the result
says the file is intact, not who made it.

Exit status: 0 verified; 1 a digest, the header or the signature check
failed (or no trusted key signed the file); 2 usage; 3 I/O error.
FILE "-" reads standard input (at most 1 GiB).`,
		example: `  safeweights verify model.swt
  safeweights verify --trusted alice.pub model.swt
  safeweights verify --trusted ~/.config/safeweights/trusted/ --json model.swt`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
			fs.StringVar(&trusted, "trusted", "", "trusted public keys: a PEM `file` or a directory of *.pub/*.pem files")
			fs.BoolVar(&requireAll, "require-all", false, "require a signature by every trusted key")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		if isShardIndex(pos[0]) { // shards.go
			return verifyIndex(e, pos[0], trusted, jsonOut)
		}
		var kr *sign.KeyRing
		if trusted != "" {
			if kr, err = sign.LoadKeyRing(trusted); err != nil {
				return err
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
			b := e.newSpinner("verify")
			var opts []sign.VerifyOption
			if requireAll {
				opts = append(opts, sign.WithRequireAll())
			}
			if pos[0] != "-" {
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
				return verifyFailed(e, jsonOut, pos[0], err)
			}
			res.HeaderVerified, res.DataVerified = r.HeaderVerified, r.DataVerified
			for _, s := range r.Signers {
				res.Signers = append(res.Signers, signerInfo{KeyID: s.KeyID.String(), Trusted: s.Trusted, Detached: s.Detached, Comment: s.Comment, Timestamp: s.Timestamp.UTC().Format("2006-01-02T15:04:05Z")})
			}
		}
		res.OK = true
		if jsonOut {
			return writeJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "ok: %s: %d tensors, %s, every %s digest verified\n", clean(pos[0]), res.Tensors, humanBytes(res.Bytes), res.DigestAlgorithm)
		if kr == nil {
			if res.Signatures > 0 {
				fmt.Fprintf(e.stdout, "signatures: %d present, not checked (use --trusted)\n", res.Signatures)
			}
			return nil
		}
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
	HeaderVerified  bool         `json:"header_signature_verified"`
	DataVerified    bool         `json:"data_verified"`
	Signers         []signerInfo `json:"signers,omitempty"`
}

type signerInfo struct {
	KeyID     string `json:"key_id"`
	Trusted   bool   `json:"trusted"`
	Detached  bool   `json:"detached,omitempty"`
	Comment   string `json:"comment,omitempty"`
	Timestamp string `json:"timestamp"`
}

// verifyFailed reports a failed verification. With --json the result goes to
// stdout (ok false, the error and its kind) and the error to stderr too.
func verifyFailed(e *env, jsonOut bool, path string, err error) error {
	if !jsonOut {
		return err
	}
	res := verifyResult{Path: path, Error: err.Error()}
	if k := kindName(err); k != "" {
		res.Kind = k
	}
	if werr := writeJSON(e.stdout, res); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}
