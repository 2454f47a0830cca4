// Package remote opens a model file from a reference: a local path, or an
// http:// or https:// URL read by byte ranges (source/httpsrc over the
// remote layer of package source). OpenFile returns a decode.File, so a
// program that takes a path takes a URL with one call; decode verifies the
// bytes of a remote file exactly as it does a local one (docs/REMOTE.md).
//
// s3:// references are refused with ErrScheme unless the S3 backend is
// built in.
package remote
