// Package httpsrc reads a .swt file from an HTTP(S) server (a model hub, a
// CDN, any server of static files) with range requests.
//
// A Backend makes one GET per range, "Range: bytes=a-b", and holds the
// answer to it strictly: a 206 must name exactly the range asked for (or
// its part up to the end of the object) in a Content-Range whose every
// number is checked, and its body is never read past the caller's buffer;
// a 200 (a server that ignores Range) serves only a read at offset 0, and
// is refused (ErrNoRanges) past it; 412 means the object changed
// (source.ErrChanged), 408, 429 and 5xx are transient (retried by the remote
// layer), other statuses are final (*source.StatusError). Requests carry
// If-Match with the ETag of the first response, and "Accept-Encoding:
// identity" so that no proxy compresses the bytes under the range.
//
// Open wraps a Backend in source.NewRemote: two requests to open, retries,
// parallel parts (docs/REMOTE.md). Nothing the server sends is trusted:
// decode hashes every byte where it lands (spec/SPEC.md section 5.1).
package httpsrc
