package source

import (
	"context"
	"errors"
	"io"
)

// RemoteOption configures NewRemote.
type RemoteOption func(*remoteConfig)

type remoteConfig struct {
	partSize    int64
	concurrency int
	prefix      int64
}

// WithPartSize sets the size of each range request a large read is split
// into.
func WithPartSize(n int64) RemoteOption { return func(c *remoteConfig) { c.partSize = n } }

// WithConcurrency sets how many range requests of one read run at once.
func WithConcurrency(n int) RemoteOption { return func(c *remoteConfig) { c.concurrency = n } }

// remote is a Source over a Backend, pinned to the version of the object
// its first response named.
type remote struct {
	b       Backend
	cfg     remoteConfig
	size    int64
	version string
}

// NewRemote opens the object behind b: one range request of the object's
// first bytes learns its size and version, and every later read is pinned to
// that version.
func NewRemote(ctx context.Context, b Backend, opts ...RemoteOption) (Source, error) {
	cfg := remoteConfig{partSize: 8 << 20, concurrency: 8, prefix: 64 << 10}
	for _, o := range opts {
		o(&cfg)
	}
	buf := make([]byte, cfg.prefix)
	_, info, err := b.ReadRange(ctx, buf, 0, "")
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Name: b.Name(), Op: "open", Off: 0, Len: cfg.prefix, Err: err}
	}
	if info.Size < 0 {
		return nil, &Error{Name: b.Name(), Op: "open", Err: errors.New("no object size in the response")}
	}
	return &remote{b: b, cfg: cfg, size: info.Size, version: info.Version}, nil
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
	n, _, err := r.b.ReadRange(ctx, want, off, r.version)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, &Error{Name: r.b.Name(), Op: "read", Off: off, Len: int64(len(want)), Err: err}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *remote) Size() int64  { return r.size }
func (r *remote) Name() string { return r.b.Name() }
func (r *remote) Close() error { return nil }
