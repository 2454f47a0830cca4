package bson

import (
	"fmt"

	"github.com/safeweights/safeweights/convert"
)

// Limits bound the work and memory of a read. A zero field takes its
// default; a negative one is an error.
type Limits struct {
	// MaxDepth bounds the nesting of documents, lists and followed backrefs
	// (default 512). A deeper file gives convert.ErrLimit, never a stack
	// overflow.
	MaxDepth int
	// MaxValues bounds the values visited, counting again those reached
	// once more through a backref (default 1<<22). It bounds both the time
	// of a read and the size of the structure tree (about 200 bytes a value).
	MaxValues int
	// MaxTensors bounds the number of arrays extracted (default 1<<20).
	MaxTensors int
	// MaxDims bounds the number of dimensions of an array (default 32).
	MaxDims int
	// MaxAliases bounds the paths recorded for arrays reached by more than
	// one path (default 1<<20): aliases written, and the paths remembered
	// for replay when a shared entry is reached again. Backrefs can form a
	// DAG with exponentially many paths; this keeps the output, and the
	// work of a read, in proportion to the input.
	MaxAliases int
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 512, MaxValues: 1 << 22, MaxTensors: 1 << 20, MaxDims: 32, MaxAliases: 1 << 20}
}

func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	for _, f := range []struct {
		v   *int
		def int
		n   string
	}{{&l.MaxDepth, d.MaxDepth, "MaxDepth"}, {&l.MaxValues, d.MaxValues, "MaxValues"}, {&l.MaxTensors, d.MaxTensors, "MaxTensors"}, {&l.MaxDims, d.MaxDims, "MaxDims"}, {&l.MaxAliases, d.MaxAliases, "MaxAliases"}} {
		if *f.v < 0 {
			return l, fmt.Errorf("bson: negative limit %s", f.n)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return l, nil
}

// options are what a read takes from its convert.Options.
type options struct {
	convert.Options
	Limits Limits
}
