package bson

import (
	"errors"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// workBound is the most work units (values visited plus alias paths
// replayed) a read may spend: each value of the file is walked at most
// once per mode (model, optimiser state, gradient), every value takes at
// least one byte, and replays are bounded by MaxAliases.
func workBound(data []byte, lim Limits) int {
	return 4*len(data) + 2*lim.MaxAliases
}

// dag is a file whose root reaches entry `levels` of _backrefs, each entry
// a tuple of `fan` backrefs to the entry below, down to entry 1, leaf: a
// DAG with fan^(levels-1) paths to the leaf in a few kilobytes.
func dag(levels, fan int, leaf any) []byte {
	entries := A{leaf}
	for l := 2; l <= levels; l++ {
		items := make([]any, fan)
		for i := range items {
			items[i] = br(l - 1)
		}
		entries = append(entries, strct(dt(path("Main", "Block")), tup(items...)))
	}
	return encode(D{{"model", br(levels)}, {"_backrefs", entries}})
}

func readWork(t *testing.T, data []byte, opts options) (*convert.Model, int, error) {
	t.Helper()
	w, err := newWalker(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.run()
	return m, w.work, err
}

func TestWalkIsLinear(t *testing.T) {
	// 8^15 paths to a scalar: walked once, the rest replayed (nothing).
	data := dag(16, 8, strct(dt(path("Main", "Leaf")), 1.5))
	lim, _ := Limits{}.withDefaults()
	m, work, err := readWork(t, data, options{})
	if err != nil {
		t.Fatal(err)
	}
	if work > workBound(data, lim) {
		t.Errorf("work %d for %d bytes", work, len(data))
	}
	if len(m.Tensors) != 0 {
		t.Errorf("%d tensors", len(m.Tensors))
	}

	// A small DAG to an array: every path is an alias.
	data = dag(4, 3, f32arr(1, 2))
	m, work, err = readWork(t, data, options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 || len(m.Tensors[0].Aliases) != 27-1 {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	if want := "model.field1.3.field1.3.field1.3"; m.Tensors[0].Aliases[25] != want {
		t.Errorf("last alias %q, want %q", m.Tensors[0].Aliases[25], want)
	}
	if work > workBound(data, lim) {
		t.Errorf("work %d for %d bytes", work, len(data))
	}

	// 8^15 paths to an array: the aliases hit MaxAliases, after work in
	// proportion to the file and the limit.
	data = dag(16, 8, f32arr(1, 2))
	opts := options{Limits: Limits{MaxAliases: 10000}}
	_, work, err = readWork(t, data, opts)
	if !errors.Is(err, convert.ErrLimit) {
		t.Fatalf("error %v, want ErrLimit", err)
	}
	lim, _ = opts.Limits.withDefaults()
	if work > workBound(data, lim) {
		t.Errorf("work %d for %d bytes and %d aliases", work, len(data), lim.MaxAliases)
	}
}
