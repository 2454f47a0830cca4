package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/httpsrc"
	"github.com/safeweights/safeweights/source/s3src"
)

// ErrScheme is the cause of a reference whose scheme no source here reads
// (ftp://, gs://, ...).
// errors.Is(err, ErrScheme) tests for it.
var ErrScheme = errors.New("remote: unsupported scheme")

// Option configures Open and OpenFile.
type Option func(*config)

type config struct {
	http   []httpsrc.Option
	s3     []s3src.Option
	remote []source.RemoteOption
	decode []decode.Option
}

// WithHTTP passes options to the HTTP backend (a client, headers, a token).
func WithHTTP(opts ...httpsrc.Option) Option {
	return func(c *config) { c.http = append(c.http, opts...) }
}

// WithS3 passes options to the S3 backend (a client, a configuration,
// anonymous access). By default its client comes from the standard AWS
// environment and configuration chain, AWS_ENDPOINT_URL included.
func WithS3(opts ...s3src.Option) Option {
	return func(c *config) { c.s3 = append(c.s3, opts...) }
}

// WithRemote passes options to the remote layer of every remote backend
// (part size, concurrency, retries).
func WithRemote(opts ...source.RemoteOption) Option {
	return func(c *config) { c.remote = append(c.remote, opts...) }
}

// WithDecode passes options to decode, for OpenFile.
func WithDecode(opts ...decode.Option) Option {
	return func(c *config) { c.decode = append(c.decode, opts...) }
}

// IsURL reports whether ref names a remote object (scheme://...) rather
// than a local path.
func IsURL(ref string) bool {
	scheme, _, ok := strings.Cut(ref, "://")
	if !ok || scheme == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// Open opens ref as a Source: an http:// or https:// URL through httpsrc,
// an s3://bucket/key object through s3src, anything that is not a URL as a
// local path (source.OpenFile, which
// refuses non-regular files).
func Open(ctx context.Context, ref string, opts ...Option) (source.Source, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return c.open(ctx, ref)
}

func (c *config) open(ctx context.Context, ref string) (source.Source, error) {
	if !IsURL(ref) {
		return source.OpenFile(ref)
	}
	scheme, _, _ := strings.Cut(ref, "://")
	switch strings.ToLower(scheme) {
	case "http", "https":
		return httpsrc.Open(ctx, ref, append(c.http, httpsrc.WithRemoteOptions(c.remote...))...)
	case "s3":
		return s3src.Open(ctx, ref, append(c.s3, s3src.WithRemoteOptions(c.remote...))...)
	}
	return nil, fmt.Errorf("%w: %s://", ErrScheme, strings.ToLower(scheme))
}

// OpenFile opens the .swt file ref names as a decode.File. A local path is
// opened by decode.OpenContext (mapped, unless WithDecode(decode.WithoutMmap()));
// a URL is read through its Source by decode.NewReaderContext, which checks
// everything the source delivers like bytes of a local file; Close of the
// File closes the Source.
func OpenFile(ctx context.Context, ref string, opts ...Option) (*decode.File, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if !IsURL(ref) {
		return decode.OpenContext(ctx, ref, c.decode...)
	}
	src, err := c.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	f, err := decode.NewReaderContext(ctx, src, src.Size(), append(c.decode, decode.WithCloser(src))...)
	if err != nil {
		src.Close()
		return nil, err
	}
	return f, nil
}

// Opener returns an opener for sharded models (shard.Open, shard.ReadIndex:
// the function type shard.Opener): each ref, the index or a shard, is
// opened by Open, so an index at a URL reads its shards from beside it
// (shard.Resolve resolves a shard's ref against the index URL). The
// returned reader is a source.Source, which the model closes.
func Opener(opts ...Option) func(ctx context.Context, ref string) (io.ReaderAt, int64, error) {
	return func(ctx context.Context, ref string) (io.ReaderAt, int64, error) {
		src, err := Open(ctx, ref, opts...)
		if err != nil {
			return nil, 0, err
		}
		return src, src.Size(), nil
	}
}
