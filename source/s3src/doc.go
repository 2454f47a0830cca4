// Package s3src reads .swt files from an S3-compatible object store (AWS
// S3, SeaweedFS, MinIO, Ceph, R2, ...) by byte ranges, as a source.Source
// for decode.NewReaderContext:
//
//	src, err := s3src.Open(ctx, "s3://models/llama/model.swt")
//	f, err := decode.NewReaderContext(ctx, src, src.Size(),
//		decode.WithPolicy(sign.Require(trusted)))
//
// Open builds an S3 client from the standard AWS configuration chain:
// credentials, region and endpoint from the environment (AWS_ACCESS_KEY_ID,
// AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_PROFILE, ...), the
// shared config and credentials files, SSO, web identity, and container or
// instance roles. A custom endpoint is addressed path-style
// (http://host:port/bucket/key). WithClient, WithConfig, WithLoadOptions and
// WithS3Options replace or adjust that client; WithAnonymous reads a public
// bucket without credentials.
//
// The object is pinned to the ETag of the first response: every later
// range is a GetObject with If-Match, so an object replaced while it is read
// fails with an error wrapping source.ErrChanged, never a mix of two
// versions. decode still hashes every byte where it lands, so the store
// need not be trusted, only bounded: each response's Content-Range is held
// to exactly the bytes asked for (ErrResponse otherwise), and no response
// writes past the caller's buffer.
//
// The SDK's own retries are off; source.NewRemote retries what is
// transient (5xx, throttling, resets, short bodies: *source.TransientError).
// Refusals (NoSuchKey, NoSuchBucket, AccessDenied, a wrong key) wrap a
// *source.StatusError and the SDK's smithy.APIError, whose ErrorCode names
// the S3 error. Only programs that import this package link the SDK.
//
// See docs/REMOTE.md.
package s3src
