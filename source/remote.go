package source

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/safeweights/safeweights/format"
)

// RemoteOption configures NewRemote. An invalid value makes NewRemote fail.
type RemoteOption func(*remoteConfig)

type remoteConfig struct {
	partSize       int64
	concurrency    int
	openRead       int64
	prefetchLimit  int64
	attempts       int
	attemptTimeout time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	err            error
}

// Defaults of the remote options.
const (
	DefaultPartSize       = 8 << 20
	DefaultConcurrency    = 8
	DefaultAttempts       = 5
	DefaultBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultAttemptTimeout = 60 * time.Second
	// DefaultPrefetchLimit bounds the tail (header and signature block)
	// fetched at open: the default header limit and a full signature block
	// of the default signature limit.
	DefaultPrefetchLimit = format.DefaultMaxHeaderSize + 8 + 24 + format.DefaultMaxSignatures*(52+format.MaxCommentLength+format.MaxSignatureLength)
)

// openRead is the speculative first read: the preamble and, with the
// default alignment, all the padding before the first tensor.
const openRead = format.DefaultAlignment

func (c *remoteConfig) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("source: "+format, args...)
	}
}

// WithPartSize sets the size of each range request a large read is split
// into (default 8 MiB, at least 4 KiB).
func WithPartSize(n int64) RemoteOption {
	return func(c *remoteConfig) {
		if n < 4<<10 {
			c.fail("part size %d under 4 KiB", n)
		}
		c.partSize = n
	}
}

// WithConcurrency sets how many range requests of one read run at once
// (default 8, 1 to 256).
func WithConcurrency(n int) RemoteOption {
	return func(c *remoteConfig) {
		if n < 1 || n > 256 {
			c.fail("concurrency %d outside [1, 256]", n)
		}
		c.concurrency = n
	}
}

// WithAttempts sets how many times one range request is tried before its
// error is returned (default 5, 1 to 100). Only transient errors are retried.
func WithAttempts(n int) RemoteOption {
	return func(c *remoteConfig) {
		if n < 1 || n > 100 {
			c.fail("attempts %d outside [1, 100]", n)
		}
		c.attempts = n
	}
}

// WithBackoff sets the wait before the first retry and its cap: the n-th
// retry waits a random time in [0, min(max, base*2^n)) ("full jitter").
// Defaults 100 ms and 5 s.
func WithBackoff(base, max time.Duration) RemoteOption {
	return func(c *remoteConfig) {
		if base < 0 || max < base {
			c.fail("backoff %v, %v: want 0 <= base <= max", base, max)
		}
		c.backoff, c.maxBackoff = base, max
	}
}

// WithAttemptTimeout bounds one attempt of one range request (default 60 s;
// 0 means no bound but ctx's). An attempt that runs out is retried.
func WithAttemptTimeout(d time.Duration) RemoteOption {
	return func(c *remoteConfig) {
		if d < 0 {
			c.fail("negative attempt timeout %v", d)
		}
		c.attemptTimeout = d
	}
}

// WithPrefetchLimit bounds the end of the object that NewRemote fetches in
// its second request (default DefaultPrefetchLimit). A tail larger than
// this is not prefetched: decode then reads it with requests of its own,
// and refuses it if it is over decode's limits.
func WithPrefetchLimit(n int64) RemoteOption {
	return func(c *remoteConfig) {
		if n < 0 {
			c.fail("negative prefetch limit %d", n)
		}
		c.prefetchLimit = n
	}
}

// remote is a Source over a Backend, pinned to the version of the object
// its first response named.
type remote struct {
	b       Backend
	cfg     remoteConfig
	size    int64
	version string

	mu    sync.Mutex
	cache []*span // ranges fetched at open, until decode has read them
}

// span is a range fetched at open. It is dropped once every byte of it has
// been served once: decode copies what it keeps (the header, the signature
// block), so the cache does not hold a second copy for the File's life.
type span struct {
	off    int64
	b      []byte
	served int64
	keep   bool // the first 4 KiB: too small to drop, and decode's reads of a file that small overlap
}

// NewRemote opens the object behind b in at most two requests in the common
// case, and never asks for tensor data:
//
//  1. the first 4 KiB (the preamble and, with the default alignment, the
//     padding before the first tensor), which also tells the object's size
//     and version;
//  2. the end of the object, from the end of the data region the preamble
//     names (the padding, the header and the signature block), if the
//     preamble is well formed and the tail within WithPrefetchLimit.
//
// A file aligned to more than 4 KiB costs a third request, for the rest of
// the padding before its first tensor. The fetched bytes are served to the
// reads decode.NewReaderContext makes; they are not trusted, decode checks
// them like any others (the header digest, R10; the signature block, R28).
//
// Every later request is pinned to the version of the first response
// (If-Match on its ETag): an object that changes makes reads fail with an
// error wrapping ErrChanged, never return a mix of two versions. Transient
// errors are retried with exponential backoff and jitter; reads larger than
// the part size are split into parts read in parallel, each straight into
// its place in the caller's buffer.
func NewRemote(ctx context.Context, b Backend, opts ...RemoteOption) (Source, error) {
	cfg := remoteConfig{
		partSize:       DefaultPartSize,
		concurrency:    DefaultConcurrency,
		openRead:       openRead,
		prefetchLimit:  DefaultPrefetchLimit,
		attempts:       DefaultAttempts,
		attemptTimeout: DefaultAttemptTimeout,
		backoff:        DefaultBackoff,
		maxBackoff:     DefaultMaxBackoff,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	r := &remote{b: b, cfg: cfg, size: -1}
	head := make([]byte, cfg.openRead)
	n, err := r.readPart(ctx, head, 0)
	if err != nil {
		return nil, &Error{Name: b.Name(), Op: "open", Off: 0, Len: cfg.openRead, Err: err}
	}
	head = head[:n]
	r.cache = append(r.cache, &span{off: 0, b: head, keep: true})
	for _, s := range r.plan(head) {
		buf := make([]byte, s.len)
		if _, err := r.readPart(ctx, buf, s.off); err != nil {
			return nil, &Error{Name: b.Name(), Op: "open", Off: s.off, Len: s.len, Err: err}
		}
		r.cache = append(r.cache, &span{off: s.off, b: buf})
	}
	return r, nil
}

type byteRange struct{ off, len int64 }

// plan returns the ranges to prefetch after the first read, from the
// preamble in head: the padding before the data region that head lacks, and
// the tail from the end of the data region. The preamble is untrusted, so
// every number is checked against the object's size and the prefetch limit;
// a preamble that fails a check plans nothing, and decode reports it.
func (r *remote) plan(head []byte) []byteRange {
	if len(head) < format.PreambleSize || [8]byte(head[:8]) != format.Magic {
		return nil
	}
	have := int64(len(head))
	dataOff := binary.LittleEndian.Uint64(head[24:])
	dataLen := binary.LittleEndian.Uint64(head[32:])
	size := uint64(r.size)
	if dataOff > size || dataLen > size-dataOff {
		return nil
	}
	var out []byteRange
	if int64(dataOff) > have && dataOff <= format.MaxAlignment {
		out = append(out, byteRange{have, int64(dataOff) - have})
	}
	end := max(int64(dataOff+dataLen), have)
	if tail := r.size - end; tail > 0 && tail <= r.cfg.prefetchLimit {
		out = append(out, byteRange{end, tail})
	}
	return out
}

func (r *remote) ReadAt(p []byte, off int64) (int, error) {
	return r.ReadAtContext(context.Background(), p, off)
}

func (r *remote) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 || off > r.size {
		return 0, &Error{Name: r.b.Name(), Op: "read", Off: off, Len: int64(len(p)), Err: errors.New("offset out of range")}
	}
	want := p
	if rem := r.size - off; int64(len(p)) > rem {
		want = p[:rem]
	}
	if len(want) == 0 {
		if len(p) > 0 {
			return 0, io.EOF
		}
		return 0, nil
	}
	if r.fromCache(want, off) {
		return eof(len(want), len(p))
	}
	if err := r.fetch(ctx, want, off); err != nil {
		return 0, err
	}
	return eof(len(want), len(p))
}

func eof(n, want int) (int, error) {
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// fromCache copies [off, off+len(p)) from a prefetched span that holds all
// of it, and reports whether it did.
func (r *remote) fromCache(p []byte, off int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.cache {
		if off < s.off || off-s.off > int64(len(s.b)) || int64(len(p)) > int64(len(s.b))-(off-s.off) {
			continue
		}
		copy(p, s.b[off-s.off:])
		if s.served += int64(len(p)); s.served >= int64(len(s.b)) && !s.keep {
			r.cache = append(r.cache[:i], r.cache[i+1:]...)
		}
		return true
	}
	return false
}

// fetch reads all of p at off, in parts of the part size run on up to
// concurrency goroutines, each written straight into its slice of p.
func (r *remote) fetch(ctx context.Context, p []byte, off int64) error {
	ps := r.cfg.partSize
	if int64(len(p)) <= ps {
		if _, err := r.readPart(ctx, p, off); err != nil {
			return &Error{Name: r.b.Name(), Op: "read", Off: off, Len: int64(len(p)), Err: err}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := (int64(len(p)) + ps - 1) / ps
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		sem      = make(chan struct{}, r.cfg.concurrency)
	)
	for i := int64(0); i < parts; i++ {
		lo := i * ps
		part := p[lo:min(lo+ps, int64(len(p)))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := r.readPart(ctx, part, off+lo); err != nil {
				errOnce.Do(func() {
					firstErr = &Error{Name: r.b.Name(), Op: "read", Off: off + lo, Len: int64(len(part)), Err: err}
					cancel()
				})
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return &Error{Name: r.b.Name(), Op: "read", Off: off, Len: int64(len(p)), Err: err}
	}
	return nil
}

// errShort is the cause of a retry when a response ended early.
var errShort = errors.New("response body shorter than the range")

// readPart reads p at off with one range request per attempt, resuming
// after the bytes an attempt delivered, until p is full or the object ends
// (r.size < 0: the first read, which learns the size). It returns the
// bytes read: len(p), or fewer only at the end of the object.
func (r *remote) readPart(ctx context.Context, p []byte, off int64) (int, error) {
	done := 0
	for attempt := 1; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if r.cfg.attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, r.cfg.attemptTimeout)
		}
		n, info, err := r.b.ReadRange(actx, p[done:], off+int64(done), r.version)
		cancel()
		if n < 0 || n > len(p)-done {
			return done, fmt.Errorf("backend returned %d bytes for a range of %d", n, len(p)-done)
		}
		if r.size < 0 && err != nil && !errors.Is(err, io.EOF) {
			// The first read pins nothing yet: bytes of a failed attempt
			// may be of another version than the retry's, so start over.
			n = 0
		}
		done += n
		if err == nil || errors.Is(err, io.EOF) {
			if cerr := r.check(info); cerr != nil {
				return done, cerr
			}
			if done == len(p) || off+int64(done) == r.size {
				return done, nil
			}
			err = &TransientError{Err: errShort}
		}
		if errors.Is(err, ErrChanged) {
			return done, err
		}
		if cerr := ctx.Err(); cerr != nil {
			return done, cerr
		}
		var te *TransientError
		transient := errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) // one attempt ran out
		if !transient || attempt >= r.cfg.attempts {
			return done, err
		}
		if werr := r.wait(ctx, attempt); werr != nil {
			return done, werr
		}
	}
}

// check holds a response to the object first seen: the same size and, when
// both name one, the same version.
func (r *remote) check(info Info) error {
	if r.size < 0 {
		if info.Size < 0 {
			return errors.New("no object size in the response")
		}
		r.size, r.version = info.Size, info.Version
		return nil
	}
	if info.Size != r.size {
		return fmt.Errorf("%w: size %d, was %d", ErrChanged, info.Size, r.size)
	}
	if r.version != "" && info.Version != "" && info.Version != r.version {
		return fmt.Errorf("%w: version %q, was %q", ErrChanged, info.Version, r.version)
	}
	return nil
}

// wait sleeps before retry n (1-based): full jitter over an exponential
// bound.
func (r *remote) wait(ctx context.Context, n int) error {
	bound := r.cfg.maxBackoff
	if n < 32 && r.cfg.backoff<<(n-1) < bound && r.cfg.backoff<<(n-1) > 0 {
		bound = r.cfg.backoff << (n - 1)
	}
	if bound <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(rand.N(bound))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *remote) Size() int64  { return r.size }
func (r *remote) Name() string { return r.b.Name() }
func (r *remote) Close() error { return nil }

// ReadParallelism is the concurrency of the remote layer: decode keeps this
// many reads in flight where it reads in parallel (decode.ReadParallelism).
func (r *remote) ReadParallelism() int { return r.cfg.concurrency }

// ReadSize is the part size: decode groups chunk reads up to it
// (decode.ReadSizer), so that a request fetches a part, not one chunk.
func (r *remote) ReadSize() int64 { return r.cfg.partSize }
