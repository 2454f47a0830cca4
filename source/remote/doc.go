// Package remote opens a model file from a reference: a local path, an
// http:// or https:// URL read by byte ranges (source/httpsrc over the
// remote layer of package source), or an s3://bucket/key object in an
// S3-compatible store (source/s3src, which links the AWS SDK: a program
// that needs HTTP only imports source/httpsrc instead). OpenFile returns a decode.File, so a
// program that takes a path takes a URL with one call; decode verifies the
// bytes of a remote file exactly as it does a local one (docs/REMOTE.md).
//
// Other schemes are refused with ErrScheme.
package remote
