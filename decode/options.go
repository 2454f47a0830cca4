package decode

import (
	"fmt"
	"io"

	"github.com/safeweights/safeweights/format"
)

// VerifyMode says when Open checks chunk digests.
type VerifyMode int

const (
	// VerifyNone checks digests only when Verify is called. Tensor bytes
	// are returned unchecked, as safetensors does.
	VerifyNone VerifyMode = iota
	// VerifyLazy checks a tensor's digests the first time its bytes are
	// requested; no unchecked byte is ever returned.
	VerifyLazy
	// VerifyEager checks every digest and all padding before Open returns.
	VerifyEager
)

// A Policy is consulted by Open after the header is verified and before any
// tensor is exposed; an error from Check fails Open. The sign package
// provides the signature policy.
type Policy interface {
	Check(f *File) error
}

// A Policy that also implements MinVerifier raises the verify mode of the
// files it is applied to: a signature policy uses it so that no tensor byte
// is returned before its digests are checked.
type MinVerifier interface {
	MinVerify() VerifyMode
}

type config struct {
	limits    format.Limits
	verify    VerifyMode
	minVerify VerifyMode // raised by policies; applied after all options
	policies  []Policy
	noMap     bool
	checked   bool // no views: every read is a checked copy
	closer    io.Closer
}

// An Option configures Open, NewReader and Inspect.
type Option func(*config) error

// WithLimits sets the limits (format.Limits; zero fields keep their defaults).
func WithLimits(l format.Limits) Option {
	return func(c *config) error {
		l = l.WithDefaults()
		if err := l.Validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithVerify sets when digests are checked. Default VerifyNone.
func WithVerify(m VerifyMode) Option {
	return func(c *config) error {
		if m < VerifyNone || m > VerifyEager {
			return fmt.Errorf("decode: unknown verify mode %d", m)
		}
		c.verify = m
		return nil
	}
}

// WithPolicy adds a policy that Open enforces before returning the file.
func WithPolicy(p Policy) Option {
	return func(c *config) error {
		if p == nil {
			return fmt.Errorf("decode: nil policy")
		}
		c.policies = append(c.policies, p)
		if mv, ok := p.(MinVerifier); ok && mv.MinVerify() > c.verify {
			c.minVerify = max(c.minVerify, mv.MinVerify())
		}
		if cr, ok := p.(CheckedReader); ok && cr.CheckedReads() {
			c.checked = true
			c.minVerify = max(c.minVerify, VerifyLazy)
		}
		return nil
	}
}

// WithCloser makes Close of a File from NewReader close c too: the source
// the File reads, when the caller hands its ownership to the File (as
// source/remote.OpenFile does). Open ignores it.
func WithCloser(c io.Closer) Option {
	return func(cfg *config) error {
		if c == nil {
			return fmt.Errorf("decode: nil closer")
		}
		cfg.closer = c
		return nil
	}
}

// WithoutMmap makes Open read with pread instead of mapping the file.
func WithoutMmap() Option {
	return func(c *config) error { c.noMap = true; return nil }
}

// WithCheckedReads makes every read of tensor bytes a copy that is hashed
// where it landed, on every call, also on a mapped file: Bytes and Stored
// return no views of the mapping, which another writer of the file could
// change after their check. Use it for files the process does not own
// (spec/SPEC.md section 5.1). It implies VerifyLazy.
func WithCheckedReads() Option {
	return func(c *config) error {
		c.checked = true
		c.minVerify = max(c.minVerify, VerifyLazy)
		return nil
	}
}

// A Policy that also implements CheckedReader and returns true makes the
// files it is applied to use checked reads (WithCheckedReads): the
// signature policy does, so that no byte of a signed file is handed out
// that was not hashed where the caller receives it.
type CheckedReader interface {
	CheckedReads() bool
}

func newConfig(opts []Option) (config, error) {
	c := config{limits: format.DefaultLimits()}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	c.verify = max(c.verify, c.minVerify)
	return c, nil
}

// VerifyMode is the verify mode the file was opened with, after policies
// raised it.
func (f *File) VerifyMode() VerifyMode { return f.cfg.verify }

// CheckedReads reports whether every read is a checked copy (no views).
func (f *File) CheckedReads() bool { return f.cfg.checked }

// Limits are the limits the file was opened with; the sign package holds a
// detached signature block to them too.
func (f *File) Limits() format.Limits { return f.cfg.limits }
