package s3src

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/safeweights/safeweights/source"
)

// ErrURI is the cause of an error for a URI that is not s3://BUCKET/KEY.
var ErrURI = errors.New("s3src: invalid s3 URI")

// ErrNoRegion reports that the AWS configuration names no region and no
// endpoint, so no request can be addressed: set AWS_REGION (or a region in
// the shared config), or AWS_ENDPOINT_URL for a store that is not AWS.
var ErrNoRegion = errors.New("s3src: no AWS region configured (set AWS_REGION, or AWS_ENDPOINT_URL for a store that is not AWS)")

// An Option configures Open.
type Option func(*options)

type options struct {
	client    *s3.Client
	cfg       *aws.Config
	load      []func(*config.LoadOptions) error
	s3        []func(*s3.Options)
	anonymous bool
	remote    []source.RemoteOption
}

// WithClient reads through client instead of one built from the AWS
// configuration; the other client options are then ignored. Its retries
// are still turned off for this package's requests.
func WithClient(client *s3.Client) Option { return func(o *options) { o.client = client } }

// WithConfig builds the client from cfg instead of loading the default
// configuration chain.
func WithConfig(cfg aws.Config) Option { return func(o *options) { o.cfg = &cfg } }

// WithLoadOptions are passed to config.LoadDefaultConfig (a profile, a
// region, an HTTP client, ...).
func WithLoadOptions(fns ...func(*config.LoadOptions) error) Option {
	return func(o *options) { o.load = append(o.load, fns...) }
}

// WithS3Options are applied to the client's options after this package's
// defaults.
func WithS3Options(fns ...func(*s3.Options)) Option {
	return func(o *options) { o.s3 = append(o.s3, fns...) }
}

// WithAnonymous sends unsigned requests, for a public bucket: no
// credentials are looked up.
func WithAnonymous() Option { return func(o *options) { o.anonymous = true } }

// WithRemoteOptions are passed to source.NewRemote (part size,
// concurrency).
func WithRemoteOptions(opts ...source.RemoteOption) Option {
	return func(o *options) { o.remote = append(o.remote, opts...) }
}

// Open opens the object named by uri, s3://BUCKET/KEY, as a Source pinned
// to the version (ETag) its first response names: a later read of a
// replaced object fails with source.ErrChanged instead of mixing versions.
//
// Unless WithClient or WithConfig say otherwise, credentials, region and
// endpoint come from the standard AWS chain (environment, shared config
// and credentials files, SSO, web identity, container and instance roles),
// including AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3. A custom endpoint
// (a local store such as SeaweedFS or MinIO) is addressed path-style, and
// gets region us-east-1 when none is configured.
func Open(ctx context.Context, uri string, opts ...Option) (source.Source, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	client, err := o.newClient(ctx)
	if err != nil {
		return nil, &source.Error{Name: uri, Op: "open", Err: err}
	}
	return source.NewRemote(ctx, NewBackend(client, bucket, key), o.remote...)
}

// NewClient is the client Open builds from the AWS configuration chain,
// for callers that read many objects (pass it to WithClient) or use
// NewBackend: retries off, path-style for a custom endpoint.
func NewClient(ctx context.Context, opts ...Option) (*s3.Client, error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	return o.newClient(ctx)
}

func (o *options) newClient(ctx context.Context) (*s3.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	var cfg aws.Config
	if o.cfg != nil {
		cfg = *o.cfg
	} else {
		var err error
		// The SDK logs to stderr by default (a warning when instance
		// metadata is unreachable, say): a library must not write there.
		// Errors still come back as errors; WithLoadOptions may set a
		// logger of its own.
		load := append([]func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}, o.load...)
		if cfg, err = config.LoadDefaultConfig(ctx, load...); err != nil {
			return nil, fmt.Errorf("s3src: loading the AWS configuration: %w", err)
		}
	}
	fns := []func(*s3.Options){func(so *s3.Options) {
		// source.NewRemote retries; see perRequest.
		so.Retryer = aws.NopRetryer{}
		so.RetryMaxAttempts = 0
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if so.BaseEndpoint != nil {
			// A custom endpoint is rarely a virtual-host-style one:
			// SeaweedFS, MinIO and Ceph answer at one host.
			so.UsePathStyle = true
			if so.Region == "" {
				so.Region = "us-east-1"
			}
		}
		if o.anonymous {
			so.Credentials = aws.AnonymousCredentials{}
		}
	}}
	c := s3.NewFromConfig(cfg, append(fns, o.s3...)...)
	if so := c.Options(); so.Region == "" && so.BaseEndpoint == nil {
		return nil, ErrNoRegion
	}
	return c, nil
}

// ParseURI splits s3://BUCKET/KEY. The bucket follows S3's naming rules
// (3 to 63 lower-case letters, digits, dots and hyphens, beginning and
// ending with a letter or digit, no two dots in a row); the key is the
// rest, taken literally (no percent-decoding, as the AWS CLI does): 1 to
// 1024 bytes of UTF-8 without control characters, not ending in "/".
func ParseURI(uri string) (bucket, key string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w %q: %s", ErrURI, uri, why)
	}
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return bad("want s3://BUCKET/KEY")
	}
	bucket, key, ok = strings.Cut(rest, "/")
	if !ok || key == "" {
		return bad("no object key")
	}
	if why := checkBucket(bucket); why != "" {
		return bad(why)
	}
	if len(key) > 1024 {
		return bad("key longer than 1024 bytes")
	}
	if !utf8.ValidString(key) {
		return bad("key is not UTF-8")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("control character in the key")
		}
	}
	if strings.HasSuffix(key, "/") {
		return bad("key names a folder, not an object")
	}
	return bucket, key, nil
}

func checkBucket(b string) string {
	if len(b) < 3 || len(b) > 63 {
		return "bucket name not 3 to 63 characters"
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(b); i++ {
		if c := b[i]; !alnum(c) && c != '.' && c != '-' {
			return "bucket name has a character other than a-z, 0-9, '.' and '-'"
		}
	}
	if !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return "bucket name must begin and end with a letter or digit"
	}
	if strings.Contains(b, "..") {
		return "bucket name has two dots in a row"
	}
	return ""
}
