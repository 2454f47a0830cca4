package httpsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/source"
)

// ErrBadResponse is the cause of a read whose response breaks the range
// protocol: a Content-Range that does not parse or does not match the range
// asked for, a Content-Length that disagrees with it, an encoded or
// multipart body. errors.Is(err, ErrBadResponse) tests for it.
var ErrBadResponse = errors.New("httpsrc: invalid range response")

// ErrNoRanges is the cause of a read past the start of an object whose
// server ignores Range and answers 200 with the whole object: reading it
// would mean downloading everything before the range.
var ErrNoRanges = errors.New("httpsrc: server does not serve byte ranges")

// maxETag bounds the ETag kept as the object's version.
const maxETag = 1024

// Option configures a Backend.
type Option func(*Backend) error

// WithClient sets the HTTP client (default http.DefaultClient). Its
// Timeout, if set, bounds each request; source.WithAttemptTimeout does the
// same without a client of one's own.
func WithClient(c *http.Client) Option {
	return func(b *Backend) error {
		if c == nil {
			return errors.New("httpsrc: nil client")
		}
		b.client = c
		return nil
	}
}

// WithHeader adds a header to every request, such as an API key. Range,
// If-Match and Accept-Encoding are set by the backend and cannot be set here.
func WithHeader(key, value string) Option {
	return func(b *Backend) error {
		switch http.CanonicalHeaderKey(key) {
		case "Range", "If-Match", "Accept-Encoding":
			return fmt.Errorf("httpsrc: header %s is set by the backend", key)
		}
		b.header.Add(key, value)
		return nil
	}
}

// WithBearerToken sends "Authorization: Bearer token" with every request.
// net/http drops it on a redirect to another host.
func WithBearerToken(token string) Option {
	return func(b *Backend) error {
		if token == "" || strings.ContainsAny(token, "\r\n") {
			return errors.New("httpsrc: empty or multi-line bearer token")
		}
		b.header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// Backend reads an object over HTTP(S) with range requests. It implements
// source.Backend; Open wraps it in the shared remote layer.
type Backend struct {
	url    string
	name   string
	client *http.Client
	header http.Header
	ropts  []source.RemoteOption
}

// New returns a Backend for the http or https URL u.
func New(u string, opts ...Option) (*Backend, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("httpsrc: %w", err)
	}
	if pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" {
		return nil, fmt.Errorf("httpsrc: %q is not an http or https URL", Redact(u))
	}
	b := &Backend{url: u, name: Redact(u), client: http.DefaultClient, header: http.Header{}}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Open opens the .swt object at the http or https URL u: a source.Source
// built by source.NewRemote over a Backend (two requests in the common
// case, pinned to the first response's ETag, retried, read in parallel
// parts).
func Open(ctx context.Context, u string, opts ...Option) (source.Source, error) {
	b, err := New(u, opts...)
	if err != nil {
		return nil, err
	}
	return source.NewRemote(ctx, b, b.ropts...)
}

// WithRemoteOptions passes options to the remote layer Open builds
// (source.WithConcurrency, source.WithAttempts, ...). New ignores them.
func WithRemoteOptions(opts ...source.RemoteOption) Option {
	return func(b *Backend) error {
		b.ropts = append(b.ropts, opts...)
		return nil
	}
}

// Redact returns u without its user information and query, which may hold
// credentials (a presigned URL's signature), for messages.
func Redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	pu.User = nil
	if pu.RawQuery != "" {
		pu.RawQuery = "…"
	}
	pu.Fragment = ""
	return pu.String()
}

// Name is the URL without credentials or query.
func (b *Backend) Name() string { return b.name }

// ReadRange implements source.Backend.
func (b *Backend) ReadRange(ctx context.Context, p []byte, off int64, version string) (int, source.Info, error) {
	none := source.Info{Size: -1}
	if len(p) == 0 {
		return 0, none, errors.New("httpsrc: empty range")
	}
	if off < 0 || off > (1<<63-1)-int64(len(p)) {
		return 0, none, fmt.Errorf("httpsrc: range at %d of %d bytes overflows", off, len(p))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return 0, none, err
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	last := off + int64(len(p)) - 1
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(last, 10))
	// Explicit, so net/http does not ask for gzip and decode it under us:
	// the range is of the stored bytes.
	req.Header.Set("Accept-Encoding", "identity")
	if version != "" && !strings.HasPrefix(version, "W/") {
		// A weak ETag never matches If-Match (RFC 9110 13.1.1); it is
		// compared with each response's instead.
		req.Header.Set("If-Match", version)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		// The URL's query may hold credentials (a presigned URL): name
		// it redacted, as Name does.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = b.name
		}
		if ctx.Err() != nil {
			return 0, none, err
		}
		return 0, none, &source.TransientError{Err: err}
	}
	defer resp.Body.Close()
	return readResponse(resp, p, off, version)
}

// readResponse reads the answer to a request for bytes [off, off+len(p))
// into p. It never reads more than len(p) bytes of the body.
func readResponse(resp *http.Response, p []byte, off int64, version string) (int, source.Info, error) {
	none := source.Info{Size: -1}
	switch c := resp.StatusCode; {
	case c == http.StatusPartialContent, c == http.StatusOK:
	case c == http.StatusPreconditionFailed:
		return 0, none, source.ErrChanged
	case c == http.StatusRequestedRangeNotSatisfiable:
		first, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || first >= 0 || total < 0 || off < total {
			return 0, none, &source.StatusError{Code: c}
		}
		return 0, source.Info{Size: total, Version: etag(resp)}, io.EOF
	case c == http.StatusTooManyRequests, c == http.StatusRequestTimeout, c >= 500 && c <= 599:
		return 0, none, &source.TransientError{Err: &source.StatusError{Code: c}}
	default:
		return 0, none, &source.StatusError{Code: c}
	}
	tag := etag(resp)
	if len(tag) > maxETag {
		return 0, none, fmt.Errorf("%w: ETag of %d bytes", ErrBadResponse, len(tag))
	}
	if version != "" && tag != "" && tag != version {
		return 0, none, fmt.Errorf("%w: ETag %q, was %q", source.ErrChanged, tag, version)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return 0, none, fmt.Errorf("%w: Content-Encoding %q", ErrBadResponse, ce)
	}
	var total, count int64
	if resp.StatusCode == http.StatusOK {
		// The server ignored Range and sends the whole object.
		if off != 0 {
			return 0, none, ErrNoRanges
		}
		total = resp.ContentLength
		if total < 0 {
			return 0, none, fmt.Errorf("%w: 200 without Content-Length", ErrNoRanges)
		}
		count = min(total, int64(len(p)))
	} else {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); strings.HasPrefix(mt, "multipart/") {
			return 0, none, fmt.Errorf("%w: multipart body for one range", ErrBadResponse)
		}
		first, last, t, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return 0, none, err
		}
		asked := off + int64(len(p)) - 1
		switch {
		case first < 0 || t < 0:
			return 0, none, fmt.Errorf("%w: Content-Range without a range or a size", ErrBadResponse)
		case first != off || last > asked:
			return 0, none, fmt.Errorf("%w: bytes %d-%d for a request of %d-%d", ErrBadResponse, first, last, off, asked)
		case last < asked && last != t-1:
			return 0, none, fmt.Errorf("%w: bytes %d-%d of %d for a request of %d-%d", ErrBadResponse, first, last, t, off, asked)
		}
		total, count = t, last-first+1
		if resp.ContentLength >= 0 && resp.ContentLength != count {
			return 0, none, fmt.Errorf("%w: Content-Length %d for %d bytes", ErrBadResponse, resp.ContentLength, count)
		}
	}
	info := source.Info{Size: total, Version: tag}
	n, err := io.ReadFull(resp.Body, p[:count])
	if err != nil {
		// A reset connection, a body cut short: a retry may cure it.
		return n, info, &source.TransientError{Err: err}
	}
	if count < int64(len(p)) {
		return n, info, io.EOF
	}
	return n, info, nil
}

func etag(resp *http.Response) string { return resp.Header.Get("ETag") }

// maxDigits is the most decimal digits of an int64.
const maxDigits = 19

// parseContentRange parses "bytes first-last/total", "bytes first-last/*"
// (total -1) or "bytes */total" (first and last -1), strictly: ASCII
// digits only, no signs or spaces inside, no overflow, first <= last <
// total.
func parseContentRange(s string) (first, last, total int64, err error) {
	bad := func(why string) (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("%w: Content-Range %q: %s", ErrBadResponse, trunc(s), why)
	}
	unit, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return bad("not in bytes")
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no size")
	}
	total = -1
	if size != "*" {
		if total, ok = parseNum(size); !ok {
			return bad("bad size")
		}
	}
	if rng == "*" {
		if total < 0 {
			return bad("no range and no size")
		}
		return -1, -1, total, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("bad range")
	}
	if first, ok = parseNum(a); !ok {
		return bad("bad first byte")
	}
	if last, ok = parseNum(b); !ok {
		return bad("bad last byte")
	}
	if last < first || total >= 0 && last >= total {
		return bad("range outside the object")
	}
	return first, last, total, nil
}

// parseNum parses a non-negative decimal int64 of ASCII digits.
func parseNum(s string) (int64, bool) {
	if s == "" || len(s) > maxDigits {
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

func trunc(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
