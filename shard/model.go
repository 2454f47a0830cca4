package shard

import (
	"context"
	"errors"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// An Opener opens the index or a shard at ref (a path or a URL) and returns
// it as a reader with its size. If the reader is an io.Closer, the Model
// closes it. Remote sources plug in here.
type Opener func(ctx context.Context, ref string) (io.ReaderAt, int64, error)

// LocalOpener opens ref as a local regular file; anything else (a FIFO, a
// device, a directory) is refused without blocking (format.ErrNotRegular).
func LocalOpener(ctx context.Context, ref string) (io.ReaderAt, int64, error) {
	fh, st, err := safeopen.Open(ref)
	if err != nil {
		return nil, 0, err
	}
	return fh, st.Size(), nil
}

// Resolve returns the location of a shard ref relative to the index at
// indexRef (X5): indexRef up to and including its last '/' (or its local
// directory), then ref.
func Resolve(indexRef, ref string) string {
	if i := strings.LastIndexByte(indexRef, '/'); i >= 0 {
		return indexRef[:i+1] + ref
	}
	if filepath.Separator != '/' {
		return filepath.Join(filepath.Dir(indexRef), ref)
	}
	return ref
}

// An Option configures Open.
type Option func(*config) error

type config struct {
	limits  Limits
	modelID string
	unsafe  bool
	dopts   []decode.Option
}

// WithModelID makes Open reject an index of any other model (X7).
func WithModelID(id string) Option {
	return func(c *config) error { c.modelID = id; return nil }
}

// WithLimits sets the index limits.
func WithLimits(l Limits) Option {
	return func(c *config) error { c.limits = l; return nil }
}

// WithDecodeOptions are passed to decode.NewReader for every shard. Shards
// are always read with at least decode.VerifyLazy unless the signature
// check was skipped.
func WithDecodeOptions(opts ...decode.Option) Option {
	return func(c *config) error { c.dopts = append(c.dopts, opts...); return nil }
}

// UnsafeSkipSignature opens an index without verifying its signatures:
// shards are still checked against it, but nothing says who wrote it.
func UnsafeSkipSignature() Option {
	return func(c *config) error { c.unsafe = true; return nil }
}

// Model is an opened sharded model: one namespace of tensors over lazily
// opened shards. It is safe for concurrent use.
type Model struct {
	ref      string
	file     *File
	verified *Verified
	open     Opener
	cfg      config
	byName   map[string]int
	names    []string
	shards   []*lazyShard
}

type lazyShard struct {
	mu     sync.Mutex
	f      *decode.File
	closer io.Closer
	err    error
}

// ReadIndex reads and parses the index at ref through open, bounded by the
// limits, without verifying it.
func ReadIndex(ctx context.Context, ref string, open Opener, lim Limits) (*File, error) {
	lim = lim.withDefaults()
	ra, size, err := open(ctx, ref)
	if err != nil {
		return nil, &format.FormatError{Kind: format.ErrIO, Rule: "X10", Offset: -1, Field: "index " + ref, Err: err}
	}
	if c, ok := ra.(io.Closer); ok {
		defer c.Close()
	}
	if size > lim.MaxIndexSize {
		return nil, errf(format.ErrLimit, "X2", "index", fmt.Sprintf("%d bytes over the limit of %d", size, lim.MaxIndexSize))
	}
	if size < 0 {
		return nil, errf(format.ErrIO, "X10", "index", "negative size")
	}
	data := make([]byte, size)
	if n, err := ra.ReadAt(data, 0); n != len(data) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &format.FormatError{Kind: format.ErrIO, Rule: "X10", Offset: int64(n), Field: "index " + ref, Err: err}
	}
	return ParseFile(data, lim)
}

// Open reads the index at ref through open, verifies its signatures
// against trusted (X7), and returns the model. No shard is opened yet.
func Open(ctx context.Context, ref string, open Opener, trusted *sign.KeyRing, opts ...Option) (*Model, error) {
	var c config
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	f, err := ReadIndex(ctx, ref, open, c.limits)
	if err != nil {
		return nil, err
	}
	m := &Model{ref: ref, file: f, open: open, cfg: c, byName: map[string]int{}}
	if !c.unsafe {
		if m.verified, err = f.Verify(trusted); err != nil {
			return nil, err
		}
	}
	if c.modelID != "" && f.Index.ModelID != c.modelID {
		return nil, errf(format.ErrNoSignature, "X7", "model_id", fmt.Sprintf("index of %q, not %q", f.Index.ModelID, c.modelID))
	}
	for i, s := range f.Index.Shards {
		for _, n := range s.Tensors {
			m.byName[n] = i
			m.names = append(m.names, n)
		}
		m.shards = append(m.shards, &lazyShard{})
	}
	slices.Sort(m.names)
	return m, nil
}

// Index is the index file.
func (m *Model) Index() *File { return m.file }

// ModelID is the index's model id.
func (m *Model) ModelID() string { return m.file.Index.ModelID }

// Verified is what the signature check established, or nil when it was
// skipped.
func (m *Model) Verified() *Verified { return m.verified }

// Names returns every tensor name, sorted.
func (m *Model) Names() []string { return slices.Clone(m.names) }

// NumShards is the number of shards.
func (m *Model) NumShards() int { return len(m.shards) }

// ShardOf returns the index of the shard holding name.
func (m *Model) ShardOf(name string) (int, bool) {
	i, ok := m.byName[name]
	return i, ok
}

// Tensor returns the tensor named name from its shard, opening and
// checking the shard first if this is its first use.
func (m *Model) Tensor(name string) (*decode.Tensor, error) {
	return m.TensorContext(context.Background(), name)
}

// TensorContext is Tensor with a context for opening the shard.
func (m *Model) TensorContext(ctx context.Context, name string) (*decode.Tensor, error) {
	i, ok := m.byName[name]
	if !ok {
		return nil, &format.FormatError{Kind: format.ErrNotFound, Offset: -1, Field: fmt.Sprintf("tensor %q", name)}
	}
	f, err := m.Shard(ctx, i)
	if err != nil {
		return nil, err
	}
	return f.Tensor(name)
}

// Shard opens (once) and returns shard i, checked against the index (X8,
// X9).
func (m *Model) Shard(ctx context.Context, i int) (*decode.File, error) {
	if i < 0 || i >= len(m.shards) {
		return nil, fmt.Errorf("shard: no shard %d of %d", i, len(m.shards))
	}
	ls := m.shards[i]
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.f != nil || ls.err != nil {
		return ls.f, ls.err
	}
	ls.f, ls.closer, ls.err = m.openShard(ctx, &m.file.Index.Shards[i])
	// A cancelled or failed read may succeed later; a shard that was read
	// and rejected stays rejected.
	if ls.err != nil && (ctx.Err() != nil || errors.Is(ls.err, format.ErrIO)) {
		err := ls.err
		ls.err = nil
		return nil, err
	}
	return ls.f, ls.err
}

func (m *Model) openShard(ctx context.Context, s *Shard) (*decode.File, io.Closer, error) {
	where := Resolve(m.ref, s.Ref)
	ra, size, err := m.open(ctx, where)
	if err != nil {
		return nil, nil, &format.FormatError{Kind: format.ErrIO, Rule: "X10", Offset: -1, Field: "shard " + s.Ref, Err: err}
	}
	closer, _ := ra.(io.Closer)
	opts := slices.Clone(m.cfg.dopts)
	opts = append(opts, decode.WithPolicy(&shardPolicy{s: s, raise: !m.cfg.unsafe}))
	f, err := decode.NewReader(ra, size, opts...)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		var fe *format.FormatError
		if errors.As(err, &fe) {
			// Name the shard, keep the kind.
			return nil, nil, fmt.Errorf("shard %s: %w", s.Ref, err)
		}
		return nil, nil, err
	}
	return f, closer, nil
}

// shardPolicy checks a shard against its index entry before decode exposes
// any tensor (X8, X9), and raises the verify mode of a signed model's
// shards so that no unchecked byte is returned.
type shardPolicy struct {
	s     *Shard
	raise bool
}

func (p *shardPolicy) Check(f *decode.File) error {
	pre := f.Preamble()
	if pre.DigestAlgorithm != p.s.DigestAlgorithm || pre.HeaderDigest != p.s.HeaderDigest {
		return &format.FormatError{Kind: format.ErrDigest, Rule: "X8", Offset: 56, Field: "shard " + p.s.Ref,
			Reason: "its header digest is not the one the index lists"}
	}
	if !slices.Equal(f.Names(), p.s.Tensors) {
		return errf(format.ErrHeader, "X9", "shard "+p.s.Ref, "its tensors are not the ones the index lists")
	}
	return nil
}

func (p *shardPolicy) MinVerify() decode.VerifyMode {
	if p.raise {
		return decode.VerifyLazy
	}
	return decode.VerifyNone
}

// Verify opens every shard and checks all of its digests and padding.
func (m *Model) Verify(ctx context.Context, opts decode.VerifyOptions) error {
	for i := range m.shards {
		f, err := m.Shard(ctx, i)
		if err != nil {
			return err
		}
		o := opts
		o.Tensors = nil
		if err := f.Verify(ctx, o); err != nil {
			return fmt.Errorf("shard %s: %w", m.file.Index.Shards[i].Ref, err)
		}
	}
	return nil
}

// Close closes every shard opened so far.
func (m *Model) Close() error {
	var first error
	for _, ls := range m.shards {
		ls.mu.Lock()
		if ls.f != nil {
			if err := ls.f.Close(); err != nil && first == nil {
				first = err
			}
			if ls.closer != nil {
				if err := ls.closer.Close(); err != nil && first == nil {
					first = err
				}
			}
			ls.f, ls.closer = nil, nil
		}
		ls.err = errors.New("shard: model closed")
		ls.mu.Unlock()
	}
	return first
}

// Describe returns the index entry of the opened shard f, named ref.
func Describe(ref string, f *decode.File) Shard {
	pre := f.Preamble()
	return Shard{Ref: ref, DigestAlgorithm: pre.DigestAlgorithm, HeaderDigest: pre.HeaderDigest, Tensors: f.Names()}
}

// Build returns an unsigned index of model modelID over the local shard
// files at paths, which must all be in one directory (where the index will
// be written).
func Build(modelID string, paths []string) (*File, error) {
	var ix Index
	ix.ModelID = modelID
	dir := ""
	for i, p := range paths {
		d := filepath.Dir(p)
		if i == 0 {
			dir = d
		} else if d != dir {
			return nil, fmt.Errorf("shard: %s is not in %s, the directory of the other shards", p, dir)
		}
		f, err := decode.Inspect(p)
		if err != nil {
			return nil, err
		}
		ix.Shards = append(ix.Shards, Describe(filepath.Base(p), f))
		f.Close()
	}
	return New(ix)
}

// WriteFile writes f to path through a synced temporary file and a rename.
func WriteFile(path string, f *File) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(f.Marshal())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	return nil
}
