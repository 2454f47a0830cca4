package s3src

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/safeweights/safeweights/source"
)

// ErrResponse is the cause of an error when the store's answer does not
// match the request: a Content-Range for other bytes than were asked for, a
// length that disagrees with it, no ETag on a pinned read. A broken or
// hostile server; a retry is not expected to help.
var ErrResponse = errors.New("s3src: response does not match the request")

// Backend is one object of an S3-compatible store, read by byte ranges:
// a source.Backend for source.NewRemote. Its methods are safe for
// concurrent use.
type Backend struct {
	client *s3.Client
	bucket string
	key    string
	name   string
}

// NewBackend is the object key in bucket, read through client. The client
// may be shared; every request this package makes turns the SDK's own
// retries off (source.NewRemote retries what is transient).
func NewBackend(client *s3.Client, bucket, key string) *Backend {
	return &Backend{client: client, bucket: bucket, key: key, name: "s3://" + bucket + "/" + key}
}

// Name is the object's s3:// URI.
func (b *Backend) Name() string { return b.name }

// perRequest is applied to every GetObject of this package, also on a
// caller's client: no SDK retries (the remote layer retries, once, with its
// own budget; two layers would multiply the attempts), and no response
// checksum of its own (a range has none; decode checks every byte against
// the file's digests).
func perRequest(o *s3.Options) {
	o.Retryer = aws.NopRetryer{}
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

// ReadRange reads bytes [off, off+len(p)) of the object into p, as
// source.Backend documents: GetObject with Range, and If-Match when version
// (an ETag) is set. The response's Content-Range must name exactly the
// bytes asked for, cut at the end of the object; its ETag is Info.Version.
func (b *Backend) ReadRange(ctx context.Context, p []byte, off int64, version string) (int, source.Info, error) {
	if off < 0 {
		return 0, source.Info{}, fmt.Errorf("s3src: negative offset %d", off)
	}
	// An empty read still asks the store for the object's size and
	// version: one byte, into scratch, never into p.
	var scratch [1]byte
	dst := p
	if len(dst) == 0 {
		dst = scratch[:]
	}
	want := int64(len(dst))
	if off > math.MaxInt64-want {
		return 0, source.Info{}, fmt.Errorf("s3src: range at %d of %d bytes overflows", off, want)
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.key),
		Range:  aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+want-1, 10)),
	}
	if version != "" {
		in.IfMatch = aws.String(version)
	}
	out, err := b.client.GetObject(ctx, in, perRequest)
	if err != nil {
		return b.failed(ctx, err, off)
	}
	defer out.Body.Close()

	etag := aws.ToString(out.ETag)
	if version != "" {
		if etag == "" {
			return 0, source.Info{}, fmt.Errorf("%w: no ETag on a read pinned to %s", ErrResponse, version)
		}
		if etag != version {
			// The store ignored If-Match.
			return 0, source.Info{}, fmt.Errorf("s3src: ETag %s, want %s: %w", etag, version, source.ErrChanged)
		}
	}
	status := 0
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		status = raw.StatusCode
	}
	first, last, size, err := checkRange(status, aws.ToString(out.ContentRange), out.ContentLength, off, want)
	if err != nil {
		return 0, source.Info{}, err
	}
	info := source.Info{Size: size, Version: etag}
	if last < first {
		// An empty object answered in full (a 200 to a range).
		return 0, info, io.EOF
	}
	n := int(last - first + 1)
	if len(p) == 0 {
		return 0, info, nil
	}
	// n <= want == len(p): the response never writes past p.
	if m, err := io.ReadFull(out.Body, p[:n]); err != nil {
		return m, info, bodyError(ctx, err, m, n)
	}
	if int64(n) < want {
		return n, info, io.EOF
	}
	return n, info, nil
}

// checkRange checks a response to the request for want bytes at off and
// gives the range it carries, [first, last], and the object's size. status
// is the HTTP status (0 when unknown). A 206 must carry a Content-Range of
// exactly [off, min(off+want, size)-1]; a 200 (a store that ignores Range)
// is taken only for a read at 0, with a Content-Length that is the size.
func checkRange(status int, contentRange string, contentLength *int64, off, want int64) (first, last, size int64, err error) {
	switch {
	case contentRange != "":
		if status != 0 && status != http.StatusPartialContent {
			return 0, 0, 0, fmt.Errorf("%w: Content-Range %q with status %d", ErrResponse, contentRange, status)
		}
		first, last, size, err = parseContentRange(contentRange)
		if err != nil {
			return 0, 0, 0, err
		}
	case status == http.StatusOK && off == 0:
		if contentLength == nil || *contentLength < 0 {
			return 0, 0, 0, fmt.Errorf("%w: a whole-object answer without a length", ErrResponse)
		}
		size = *contentLength
		// The body is the whole object; only its first bytes are read.
		return 0, min(want, size) - 1, size, nil
	default:
		return 0, 0, 0, fmt.Errorf("%w: no Content-Range (status %d)", ErrResponse, status)
	}
	// The end is at most off+want-1 < MaxInt64, so no sum below overflows.
	wantLast := min(off+want, size) - 1
	if first != off || last != wantLast {
		return 0, 0, 0, fmt.Errorf("%w: Content-Range %q for bytes %d-%d", ErrResponse, contentRange, off, off+want-1)
	}
	if contentLength != nil && *contentLength != last-first+1 {
		return 0, 0, 0, fmt.Errorf("%w: Content-Length %d for Content-Range %q", ErrResponse, *contentLength, contentRange)
	}
	return first, last, size, nil
}

// parseContentRange parses "bytes FIRST-LAST/SIZE" (RFC 9110 section
// 14.4) strictly: decimal digits only, no sign or space, each number in
// int64 and without leading zeros, FIRST <= LAST < SIZE. An unknown size ("*") is refused: the
// remote layer needs it.
func parseContentRange(s string) (first, last, size int64, err error) {
	bad := func(why string) (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("%w: Content-Range %q: %s", ErrResponse, s, why)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return bad("not a byte range")
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no size")
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("no range")
	}
	if first, ok = parseDecimal(a); !ok {
		return bad("bad first byte")
	}
	if last, ok = parseDecimal(b); !ok {
		return bad("bad last byte")
	}
	if size, ok = parseDecimal(total); !ok {
		return bad("bad or unknown size")
	}
	if first > last || last >= size {
		return bad("range outside the object")
	}
	return first, last, size, nil
}

// parseDecimal parses a non-negative decimal int64 of digits only, without
// leading zeros.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 19 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// httpError is what the SDK's response errors have in common.
type httpError interface {
	HTTPStatusCode() int
	HTTPResponse() *smithyhttp.Response
}

var classifier = retry.IsErrorRetryables(retry.DefaultRetryables)

// failed turns a failed GetObject into ReadRange's results: a read at or
// past the end (416 with the size) is io.EOF, 412 is source.ErrChanged,
// what a retry may cure is a *source.TransientError, and every other
// status (NoSuchKey, NoSuchBucket, AccessDenied, a wrong key) wraps a
// *source.StatusError and the SDK's error (a smithy.APIError with the S3
// error code).
func (b *Backend) failed(ctx context.Context, err error, off int64) (int, source.Info, error) {
	if ctx.Err() != nil {
		return 0, source.Info{}, err
	}
	status := 0
	var he httpError
	if errors.As(err, &he) {
		status = he.HTTPStatusCode()
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed":
		return 0, source.Info{}, fmt.Errorf("%w: %w", source.ErrChanged, err)
	case status == http.StatusRequestedRangeNotSatisfiable:
		// "bytes */SIZE": the read starts at or past the end.
		var resp *smithyhttp.Response
		if he != nil {
			resp = he.HTTPResponse()
		}
		if resp != nil {
			if total, ok := strings.CutPrefix(resp.Header.Get("Content-Range"), "bytes */"); ok {
				if size, ok := parseDecimal(total); ok && off >= size {
					return 0, source.Info{Size: size, Version: resp.Header.Get("ETag")}, io.EOF
				}
			}
		}
		return 0, source.Info{}, fmt.Errorf("%w: %w", &source.StatusError{Code: status}, err)
	case status >= 500 || status == http.StatusTooManyRequests || classifier.IsErrorRetryable(err) == aws.TrueTernary:
		if status != 0 {
			err = fmt.Errorf("%w: %w", &source.StatusError{Code: status}, err)
		}
		return 0, source.Info{}, &source.TransientError{Err: err}
	case status != 0:
		return 0, source.Info{}, fmt.Errorf("%w: %w", &source.StatusError{Code: status}, err)
	}
	return 0, source.Info{}, err
}

// bodyError is a response body that ended or broke after m of n bytes:
// transient, unless ctx ended it.
func bodyError(ctx context.Context, err error, m, n int) error {
	if ctx.Err() != nil {
		return err
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &source.TransientError{Err: fmt.Errorf("s3src: body ended after %d of %d bytes: %w", m, n, err)}
}
