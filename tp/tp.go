package tp

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/safeweights/safeweights/decode"
)

// Replicated is the dimension a Layout returns for a tensor every rank holds
// whole.
const Replicated = -1

// A Layout returns the dimension along which a tensor is split, or
// Replicated.
type Layout func(name string, shape []int64) int

// Rows splits every tensor of rank 1 or more along dimension 0.
func Rows(name string, shape []int64) int {
	if len(shape) == 0 {
		return Replicated
	}
	return 0
}

// Columns splits every tensor of rank 2 or more along its last dimension;
// vectors (biases, norms) are replicated.
func Columns(name string, shape []int64) int {
	if len(shape) < 2 {
		return Replicated
	}
	return len(shape) - 1
}

// ByName looks each tensor up in dims (a dimension, or Replicated; negative
// dimensions below Replicated count from the end: -2 is the last) and uses
// def for tensors not listed.
func ByName(dims map[string]int, def Layout) Layout {
	return func(name string, shape []int64) int {
		if d, ok := dims[name]; ok {
			if d < Replicated {
				return len(shape) + d + 1
			}
			return d
		}
		return def(name, shape)
	}
}

// A Source is a set of named tensors: a *decode.File, or a sharded model.
type Source interface {
	Names() []string
	Tensor(name string) (*decode.Tensor, error)
}

// ErrPlan reports a plan that cannot be made: a bad rank or world size, a
// dimension out of range, or with WithDivisible a dimension the world size
// does not divide.
var ErrPlan = errors.New("tp: cannot plan")

type planError string

func (e planError) Error() string        { return "tp: " + string(e) }
func (e planError) Is(target error) bool { return target == ErrPlan }

// Part is one tensor of a rank's plan.
type Part struct {
	Name  string
	Dim   int // the split dimension, or Replicated
	Shape []int64
	Slice decode.Slice
}

// Plan is what rank Rank of World reads.
type Plan struct {
	Rank, World int
	Parts       []Part // in the order of Source.Names
	reads       int
}

// Bytes is the total size of the rank's slices.
func (p *Plan) Bytes(src Source) (int64, error) {
	var n int64
	for _, part := range p.Parts {
		t, err := src.Tensor(part.Name)
		if err != nil {
			return 0, err
		}
		l, err := t.SliceLength(part.Slice)
		if err != nil {
			return 0, err
		}
		n += l
	}
	return n, nil
}

// An Option configures NewPlan.
type Option func(*config)

type config struct {
	divisible bool
	reads     int
}

// WithDivisible refuses to split a dimension that the world size does not
// divide, as Megatron-LM and vLLM do.
func WithDivisible() Option { return func(c *config) { c.divisible = true } }

// WithReads sets how many chunk reads each slice read keeps in flight
// (decode.SliceOptions.Reads): more hide a remote source's latency.
func WithReads(n int) Option { return func(c *config) { c.reads = n } }

// Split returns rank's range of a dimension of length n split over world
// ranks: numpy.array_split's partition.
func Split(n int64, rank, world int) (start, stop int64) {
	w, r := int64(world), int64(rank)
	q, m := n/w, n%w
	start = r*q + min(r, m)
	stop = start + q
	if r < m {
		stop++
	}
	return start, stop
}

// SliceFor returns the slice of a tensor of the given shape that rank holds
// when it is split along dim.
func SliceFor(shape []int64, dim, rank, world int) (decode.Slice, error) {
	if world < 1 || rank < 0 || rank >= world {
		return nil, planError(fmt.Sprintf("rank %d of a world of %d", rank, world))
	}
	s := decode.FullSlice(shape)
	if dim == Replicated {
		return s, nil
	}
	if dim < 0 || dim >= len(shape) {
		return nil, planError(fmt.Sprintf("dimension %d of a tensor of rank %d", dim, len(shape)))
	}
	a, b := Split(shape[dim], rank, world)
	s[dim] = decode.Range{Start: a, Stop: b}
	return s, nil
}

// NewPlan plans rank's slices of every tensor of src under layout.
func NewPlan(src Source, rank, world int, layout Layout, opts ...Option) (*Plan, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if world < 1 || rank < 0 || rank >= world {
		return nil, planError(fmt.Sprintf("rank %d of a world of %d", rank, world))
	}
	p := &Plan{Rank: rank, World: world, reads: c.reads}
	for _, name := range src.Names() {
		t, err := src.Tensor(name)
		if err != nil {
			return nil, err
		}
		dim := layout(name, t.Shape)
		if c.divisible && dim != Replicated && dim >= 0 && dim < len(t.Shape) && t.Shape[dim]%int64(world) != 0 {
			return nil, planError(fmt.Sprintf("tensor %q: dimension %d of %d is not divisible by %d", name, dim, t.Shape[dim], world))
		}
		s, err := SliceFor(t.Shape, dim, rank, world)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		p.Parts = append(p.Parts, Part{Name: name, Dim: dim, Shape: slices.Clone(t.Shape), Slice: s})
	}
	return p, nil
}

// Read reads every slice of the plan from src into new buffers, keyed by
// tensor name.
func (p *Plan) Read(ctx context.Context, src Source) (map[string][]byte, error) {
	out := make(map[string][]byte, len(p.Parts))
	err := p.ReadInto(ctx, src, func(part Part, n int64) ([]byte, error) {
		b := make([]byte, n)
		out[part.Name] = b
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadInto reads every slice of the plan into buffers that buf supplies
// (pinned staging memory for a GPU, say): buf is called once per part with
// the slice's size in bytes and must return a buffer of exactly that size.
// ctx is checked between tensors.
func (p *Plan) ReadInto(ctx context.Context, src Source, buf func(part Part, n int64) ([]byte, error)) error {
	for _, part := range p.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := src.Tensor(part.Name)
		if err != nil {
			return err
		}
		n, err := t.SliceLength(part.Slice)
		if err != nil {
			return err
		}
		dst, err := buf(part, n)
		if err != nil {
			return err
		}
		if err := t.ReadSliceWith(part.Slice, dst, decode.SliceOptions{Reads: p.reads}); err != nil {
			return err
		}
	}
	return nil
}
