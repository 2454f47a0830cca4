package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/httpsrc"
	"github.com/safeweights/safeweights/source/remote"
)

// tokenEnv names the variable whose value is sent as a bearer token with
// every HTTPS request (docs/CLI.md, "Remote files").
const tokenEnv = "SAFEWEIGHTS_HTTP_TOKEN"

// isURL reports whether a FILE argument is a URL rather than a path.
func isURL(ref string) bool { return remote.IsURL(ref) }

// httpOptions are the HTTP options for the URL ref: the token of tokenEnv,
// for https only.
func httpOptions(ref string) remote.Option {
	var hopts []httpsrc.Option
	if tok := os.Getenv(tokenEnv); tok != "" {
		// Never in clear text: a token sent over http is a token given away.
		if u, err := url.Parse(ref); err == nil && strings.EqualFold(u.Scheme, "https") {
			hopts = append(hopts, httpsrc.WithBearerToken(tok))
		}
	}
	return remote.WithHTTP(hopts...)
}

// openRemote opens the .swt file at the URL ref. The bytes are read by
// range requests and checked by decode like a local file's.
func openRemote(ref string, opts ...decode.Option) (*decode.File, error) {
	return remote.OpenFile(context.Background(), ref, httpOptions(ref), remote.WithDecode(opts...))
}

// shardOpener opens a shard index and its shards from paths or URLs: the
// shards of an index at a URL are read from beside it.
func shardOpener(ctx context.Context, ref string) (io.ReaderAt, int64, error) {
	if !isURL(ref) {
		return shard.LocalOpener(ctx, ref)
	}
	return remote.Opener(httpOptions(ref))(ctx, ref)
}

// isRemoteIndex reports whether the URL ref names a shard index, by its
// extension (spec/SHARDS.md): telling by content would cost a request
// before every open.
func isRemoteIndex(ref string) bool {
	u, err := url.Parse(ref)
	return err == nil && strings.HasSuffix(u.Path, shard.Ext)
}

// summarizeRemote digests every tensor of the .swt file at the URL ref,
// for diff, with its chunk digests checked where the bytes land.
func summarizeRemote(ref string) (*auto.Summary, error) {
	f, err := openRemote(ref, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return auto.SummarizeFile(context.Background(), f, ref)
}

// exportRemote writes the .swt file at the URL in to the safetensors file
// out, for convert. Under VerifyLazy every tensor is read once and hashed
// where it landed before it is written.
func exportRemote(ctx context.Context, in, out string, opts ...convert.Option) error {
	if auto.OutputFormat(out) != auto.Safetensors {
		return usageErrorf("convert: a URL source is a .swt file; OUT must end in .safetensors").
			withHint("a .swt file on a server is already in the output format: read it by its URL")
	}
	f, err := openRemote(in, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		return err
	}
	defer f.Close()
	return safetensors.Export(ctx, f, out, opts...)
}

// maxDetached bounds a detached signature fetched from a server: a block
// of the default signature limit (spec/SIGNATURES.md section 7).
const maxDetached = 24 + format.DefaultMaxSignatures*(52+format.MaxCommentLength+format.MaxSignatureLength)

// remoteDetached fetches the detached signature beside the file at the URL
// ref (its path with ".sig" appended), or returns nil if the server has
// none (404). The block is parsed and checked by sign.Verify like a local
// one.
func remoteDetached(ref string) ([]byte, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	u.Path = sign.DetachedPath(u.Path)
	u.RawPath = ""
	sigRef := u.String()
	src, err := remote.Open(context.Background(), sigRef, httpOptions(sigRef))
	var st *source.StatusError
	if errors.As(err, &st) && st.Code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("detached signature: %w", err)
	}
	defer src.Close()
	if src.Size() > maxDetached {
		return nil, format.Errorf(format.ErrSignatureBlock, "V3", 0, "detached signature", "larger than the limit allows")
	}
	b := make([]byte, src.Size())
	if _, err := src.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("detached signature: %w", err)
	}
	return b, nil
}

// requirePolicy is sign.Require(kr) for the file ref: for a URL, with the
// detached signature fetched from beside it, since the policy looks for
// one beside a local path only.
func requirePolicy(kr *sign.KeyRing, ref string) (*sign.Policy, error) {
	if !isURL(ref) {
		return sign.Require(kr), nil
	}
	det, err := remoteDetached(ref)
	if err != nil {
		return nil, err
	}
	return sign.Require(kr, sign.WithDetachedSignature(det)), nil
}
